"""Tables (plain text and Markdown) and the issue's targets, from the phases' result dicts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The targets of the performance issue.
GET_RATIO_TARGET = 0.35
GET_P99_TARGET_MS = 20.0
GET_TARGET_CONNECTIONS = 64
PUT_TARGET_WPS = 1000.0
LIST_P99_TARGET_MS = 20.0
LIST_TARGET_SECRETS = 10_000
# The encryption and policy-check issues: at most 15% slower than the bench-only baseline.
COMPARE_MAX_SLOWDOWN = 0.15
# What each baseline leaves out, i.e. what the comparison against it measures.
VARIANT_MEASURES = {
    "plaintext": "encryption",
    "no-authz": "policy checks",
    "no-audit": "the audit trail",
}


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    passed: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else ("PASS" if self.passed else "FAIL")


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _rps(summary: dict[str, Any]) -> str:
    if summary["valid_runs"] == 0:
        return f"ERRORS ({summary['errors']})"
    text = _num(summary["rps"])
    if summary["valid_runs"] < summary["runs"]:
        text += f" ({summary['runs'] - summary['valid_runs']} runs failed)"
    return text


def _db_name(result: dict[str, Any]) -> str:
    return "PostgreSQL" if result["database"] == "postgresql" else "SQLite"


def _rounds(config: dict[str, Any]) -> str:
    n = config["rounds"]
    return f"{n} round" if n == 1 else f"{n} rounds"


def _busy(config: dict[str, Any]) -> str:
    busy = config.get("ceiling_busy_us", 0)
    return f" (control: ceiling burning {busy} us of CPU per request)" if busy else ""


def targets(result: dict[str, Any]) -> list[Target]:
    out = []
    get = result.get("get")
    row = get["summary"].get(str(GET_TARGET_CONNECTIONS)) if get else None
    if row is None:
        out.append(
            Target(f"GetSecretValue c={GET_TARGET_CONNECTIONS} >= 35% of ceiling", "-", None)
        )
        out.append(Target(f"GetSecretValue c={GET_TARGET_CONNECTIONS} p99 < 20 ms", "-", None))
    else:
        ratio = row["ratio"]
        out.append(
            Target(
                f"GetSecretValue c={GET_TARGET_CONNECTIONS} >= 35% of ceiling",
                _pct(ratio),
                ratio is not None and ratio >= GET_RATIO_TARGET,
            )
        )
        p99 = row["secretsd"]["p99_ms"]
        out.append(
            Target(
                f"GetSecretValue c={GET_TARGET_CONNECTIONS} p99 < 20 ms",
                f"{_ms(p99)} ms",
                p99 is not None and p99 < GET_P99_TARGET_MS,
            )
        )
    put = result.get("put")
    name = f"PutSecretValue c=16 >= 1,000 writes/s ({_db_name(result)})"
    if put is None:
        out.append(Target(name, "-", None))
    else:
        r = put["result"]
        out.append(
            Target(
                name,
                f"{_num(r['rps'])}/s" + ("" if r["valid"] else " with errors"),
                r["valid"] and r["rps"] >= PUT_TARGET_WPS,
            )
        )
    listing = result.get("list")
    if listing is None:
        out.append(Target("ListSecrets page p99 < 20 ms with 10,000 secrets", "-", None))
    else:
        p99 = max(s["p99_ms"] for s in listing["sequential"].values())
        enough = listing["stored"] >= LIST_TARGET_SECRETS
        out.append(
            Target(
                f"ListSecrets page p99 < 20 ms with {listing['stored']:,} secrets (1 client)",
                f"{_ms(p99)} ms",
                (p99 < LIST_P99_TARGET_MS) if enough else None,
            )
        )
    return out


def _signed_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def _measures(variant: str) -> str:
    parts = [VARIANT_MEASURES.get(name, name) for name in variant.split("+")]
    return " + ".join(parts)


def compare_targets(compare: dict[str, Any]) -> list[Target]:
    out = []
    for variant in compare["variants"]:
        for conns, row in compare["summary"].items():
            for metric, key in (("req/s", "slowdown_vs_"), ("server CPU/req", "cpu_slowdown_vs_")):
                value = row.get(key + variant)
                out.append(
                    Target(
                        f"{_measures(variant)}: GetSecretValue c={conns} at most"
                        f" {COMPARE_MAX_SLOWDOWN:.0%} slower than {variant} ({metric})",
                        _signed_pct(value),
                        None if value is None else value <= COMPARE_MAX_SLOWDOWN,
                    )
                )
    return out


def _spread(paired: Sequence[float]) -> str:
    if not paired:
        return "-"
    return f"{min(paired) * 100:+.0f}..{max(paired) * 100:+.0f}%"


def _compare_rows(compare: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [
        "connections",
        "server",
        "req/s",
        "p50 ms",
        "p99 ms",
        "secretsd slower by",
        "per round",
        "server CPU us/req",
        "secretsd CPU more by",
        "per round",
    ]
    rows = []
    real = compare["real"]
    for conns, row in compare["summary"].items():
        ours = row[real]
        rows.append(
            [
                conns,
                real,
                _rps(ours),
                _ms(ours["p50_ms"]),
                _ms(ours["p99_ms"]),
                "",
                "",
                _num(ours.get("cpu_us"), 1),
                "",
                "",
            ]
        )
        for variant in compare["variants"]:
            base = row[variant]
            rows.append(
                [
                    conns,
                    variant,
                    _rps(base),
                    _ms(base["p50_ms"]),
                    _ms(base["p99_ms"]),
                    _signed_pct(row[f"slowdown_vs_{variant}"]),
                    _spread(row[f"paired_slowdowns_vs_{variant}"]),
                    _num(base.get("cpu_us"), 1),
                    _signed_pct(row.get(f"cpu_slowdown_vs_{variant}")),
                    _spread(row.get(f"paired_cpu_slowdowns_vs_{variant}", [])),
                ]
            )
    return header, rows


def _compare_title(compare: dict[str, Any], config: dict[str, Any]) -> str:
    cache = "on" if compare["value_cache"] else "off (--no-value-cache)"
    return (
        f"GetSecretValue, secretsd vs bench-only baselines, value cache {cache}"
        f" (medians of {_rounds(config)} x {config['duration_s']:g} s, interleaved;"
        " 'slower by' = baseline req/s / secretsd req/s - 1; 'CPU more by' = secretsd's CPU"
        " time per request / the baseline's - 1, all server processes)"
    )


# -- tables ---------------------------------------------------------------------------------------


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def _get_rows(get: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [
        "connections",
        "secretsd req/s",
        "p50 ms",
        "p99 ms",
        "ceiling req/s",
        "p50 ms",
        "p99 ms",
        "secretsd/ceiling",
    ]
    rows = []
    for conns, row in get["summary"].items():
        ours, ceil = row["secretsd"], row["ceiling"]
        rows.append(
            [
                conns,
                _rps(ours),
                _ms(ours["p50_ms"]),
                _ms(ours["p99_ms"]),
                _rps(ceil),
                _ms(ceil["p50_ms"]),
                _ms(ceil["p99_ms"]),
                _pct(row["ratio"]),
            ]
        )
    return header, rows


def _list_rows(listing: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["page", "1 client p50 ms", "p99 ms", "c=16 req/s", "p50 ms", "p99 ms"]
    rows = []
    for name, label in (("first", "first"), ("deep", f"deep (page {listing['deep_page']})")):
        seq = listing["sequential"][name]
        conc = listing["concurrent_c16"][name]
        rps = _num(conc["rps"]) if conc["valid"] else f"ERRORS ({conc['errors']})"
        rows.append(
            [
                label,
                _ms(seq["p50_ms"]),
                _ms(seq["p99_ms"]),
                rps,
                _ms(conc["p50_ms"]),
                _ms(conc["p99_ms"]),
            ]
        )
    return header, rows


def _put_line(put: dict[str, Any]) -> str:
    r = put["result"]
    state = "no errors" if r["valid"] else f"{r['errors']} socket errors, {r['bad']} non-200"
    return (
        f"{_num(r['rps'])} writes/s over {r['duration_s']:.1f} s, p50 {_ms(r['p50_ms'])} ms,"
        f" p99 {_ms(r['p99_ms'])} ms; {put['writes']:,} writes answered 200, {state}"
        f" ({put['connections']} connections, round-robin over {put['secrets']} secrets)"
    )


def text(result: dict[str, Any], config: dict[str, Any]) -> str:
    parts = [f"== workers={result['workers']}, {_db_name(result)} =="]
    if "compare" in result:
        compare = result["compare"]
        header, rows = _compare_rows(compare)
        parts.append(f"\n{_compare_title(compare, config)}\n" + _text_table(header, rows))
        parts.append(
            "\nTargets (baselines)\n"
            + _text_table(
                ["target", "measured", "verdict"],
                [[t.name, t.measured, t.verdict] for t in compare_targets(compare)],
            )
        )
        if not _standard_phases(result):
            return "\n".join(parts)
    if "get" in result:
        header, rows = _get_rows(result["get"])
        parts.append(
            f"\nGetSecretValue vs ceiling{_busy(config)} (medians of {_rounds(config)} x"
            f" {config['duration_s']:g} s)\n" + _text_table(header, rows)
        )
    if "put" in result:
        parts.append("\nPutSecretValue: " + _put_line(result["put"]))
    if "list" in result:
        listing = result["list"]
        header, rows = _list_rows(listing)
        parts.append(
            f"\nListSecrets, MaxResults=100, {listing['stored']:,} secrets stored"
            f" (created at {_num(listing['creation']['rate'])} CreateSecret/s, c=16)\n"
            + _text_table(header, rows)
        )
    parts.append(
        "\nTargets\n"
        + _text_table(
            ["target", "measured", "verdict"],
            [[t.name, t.measured, t.verdict] for t in targets(result)],
        )
    )
    return "\n".join(parts)


def _standard_phases(result: dict[str, Any]) -> bool:
    return any(phase in result for phase in ("get", "put", "list"))


def markdown(result: dict[str, Any], config: dict[str, Any]) -> str:
    parts = [f"### workers={result['workers']}, {_db_name(result)}"]
    if "compare" in result:
        compare = result["compare"]
        header, rows = _compare_rows(compare)
        parts.append(f"{_compare_title(compare, config)}:\n\n" + _md_table(header, rows))
        parts.append(
            _md_table(
                ["target", "measured", "verdict"],
                [[t.name, t.measured, t.verdict] for t in compare_targets(compare)],
            )
        )
        if not _standard_phases(result):
            return "\n\n".join(parts) + "\n"
    if "get" in result:
        header, rows = _get_rows(result["get"])
        parts.append(
            f"GetSecretValue vs ceiling{_busy(config)}, medians of {_rounds(config)} x"
            f" {config['duration_s']:g} s:\n\n" + _md_table(header, rows)
        )
    if "put" in result:
        parts.append("PutSecretValue: " + _put_line(result["put"]) + ".")
    if "list" in result:
        listing = result["list"]
        header, rows = _list_rows(listing)
        parts.append(
            f"ListSecrets, MaxResults=100, {listing['stored']:,} secrets stored"
            f" (created through the API at {_num(listing['creation']['rate'])} CreateSecret/s):\n\n"
            + _md_table(header, rows)
        )
    parts.append(
        _md_table(
            ["target", "measured", "verdict"],
            [[t.name, t.measured, t.verdict] for t in targets(result)],
        )
    )
    return "\n\n".join(parts) + "\n"


def readme_table(results: Sequence[dict[str, Any]]) -> str:
    """One line per worker count, short enough for the README."""
    header = [
        "workers",
        "GetSecretValue c=64",
        "p99",
        "vs ceiling",
        "PutSecretValue c=16",
        "ListSecrets page p99",
    ]
    rows = []
    for result in results:
        get = result.get("get", {}).get("summary", {}).get(str(GET_TARGET_CONNECTIONS))
        put = result.get("put")
        listing = result.get("list")
        rows.append(
            [
                f"{result['workers']} ({_db_name(result)})",
                f"{_num(get['secretsd']['rps'])} req/s" if get else "-",
                f"{_ms(get['secretsd']['p99_ms'])} ms" if get else "-",
                _pct(get["ratio"]) if get else "-",
                f"{_num(put['result']['rps'])} writes/s" if put else "-",
                f"{_ms(max(s['p99_ms'] for s in listing['sequential'].values()))} ms"
                if listing
                else "-",
            ]
        )
    return _md_table(header, rows)
