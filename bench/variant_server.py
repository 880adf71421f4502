"""`secretsd serve` with a bench-only baseline patched in, for A/B measurements.

The product has no switch that turns encryption or authorization off, and must never get one.
To measure what they cost, the benchmark starts this launcher instead of `python -m secretsd`;
it patches secretsd's classes in memory and then runs the ordinary `secretsd` command line:

    BENCH_SECRETSD_VARIANT=plaintext python -m bench.variant_server serve --port 0 ...

Variants (several may be joined with "+", e.g. "plaintext+no-authz"):

- ``plaintext``: `Keyring.seal` stores the value itself where the sealed value goes (the
  envelope keeps its format: key ARN, material version, an empty wrapped key) and
  `Keyring.open_with_key` hands it back. No data key, no AES-GCM, no key material unwrapping on
  the write or the read path. The key's state is still checked, as the real code does.
- ``no-authz``: `Authorizer.check`/`require` allow without building a request or evaluating
  anything, identity policies are never loaded, and the Secrets Manager service's own
  `_allow`/`_allow_missing` (which build the condition keys for the check) do nothing.
  Authentication (SigV4, the access key lookup) is unchanged.
- ``no-audit``: `RemoteAuditSink.record` (and the inline `AuditWriter.record`) accepts every
  call without redacting, sending, building, chaining or committing its CloudTrail record (the
  node's audit writer process then idles). /metrics and everything else are unchanged.
- ``audit-build``: the workers summarise and send their calls and the writer process builds the
  records as in secretsd, but never chains or commits them (`AuditWriter._write` returns their
  lines): secretsd against it is what the commit costs, and it against ``no-audit`` what the
  rest costs.

Worker processes: uvicorn starts them with multiprocessing's "spawn", and a spawned child first
imports the parent's `-m` module again, as ``__mp_main__``, before it runs the worker; so the
patches are applied at import, from the environment variable, in the supervisor, in every
worker and in the audit writer process alike, without touching secretsd. Each process that applied them writes one line
(`APPLIED_LINE`) to stderr, which the benchmark counts before it trusts a measurement.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

VARIANT_ENV = "BENCH_SECRETSD_VARIANT"
APPLIED_LINE = "bench variant_server: applied {variant} in pid {pid}"
VARIANTS = ("plaintext", "no-authz", "no-audit", "audit-build")


class VariantError(ValueError):
    pass


def parse_variant(text: str) -> tuple[str, ...]:
    """ "plaintext+no-authz" -> ("plaintext", "no-authz"); unknown or empty names are refused."""
    names = tuple(x.strip() for x in text.split("+"))
    if not text.strip() or any(name not in VARIANTS for name in names):
        raise VariantError(f"variants are {', '.join(VARIANTS)} (joined with '+'); got {text!r}")
    if len(set(names)) != len(names):
        raise VariantError(f"a variant is named twice: {text!r}")
    return names


def _patch_plaintext() -> None:
    from secretsd.crypto.envelope import Envelope
    from secretsd.errors import ServiceError
    from secretsd.kms.keyring import Keyring, SealedValue
    from secretsd.store.records import KeyRecord

    def state_error(code: str, key: KeyRecord) -> ServiceError:
        return ServiceError(
            code, f"Access to KMS is not allowed. The KMS key {key.arn} is not usable."
        )

    def seal(
        self: Keyring,
        key: KeyRecord,
        plaintext: bytes,
        context: Mapping[str, str],
        load: object = None,
    ) -> SealedValue:
        if key.key_state != "Enabled":
            raise state_error("EncryptionFailure", key)
        envelope = Envelope(key.arn, b"", bytes(plaintext), key.material_version)
        return SealedValue(envelope.to_bytes(), key.arn)

    def open_with_key(
        self: Keyring,
        env: Envelope,
        key: KeyRecord | None,
        context: Mapping[str, str],
        load: object = None,
    ) -> bytes:
        if key is None or key.arn != env.key_arn:
            raise ServiceError("DecryptionFailure", "bench plaintext: wrong key")
        if key.key_state != "Enabled":
            raise state_error("DecryptionFailure", key)
        return env.sealed_value

    _replace(Keyring, "seal", seal)
    _replace(Keyring, "open_with_key", open_with_key)


def _patch_no_authz() -> None:
    from secretsd.policy import Decision
    from secretsd.service.authorization import Authorizer
    from secretsd.service.secrets import SecretsService

    allowed = Decision(
        allowed=True,
        reason="allowed",
        policy_type=None,
        decided_by=None,
        identity_allowed=True,
        resource_allowed=True,
    )

    def decide(self: Authorizer, *args: Any, **kwargs: Any) -> Decision:
        return allowed

    def no_policies(self: Authorizer, *args: Any, **kwargs: Any) -> tuple[()]:
        return ()

    def nothing(self: SecretsService, *args: Any, **kwargs: Any) -> None:
        return None

    _replace(Authorizer, "check", decide)
    _replace(Authorizer, "require", decide)
    _replace(Authorizer, "identity_policies", no_policies)
    _replace(SecretsService, "_allow", nothing)
    _replace(SecretsService, "_allow_missing", nothing)


def _patch_no_audit() -> None:
    from secretsd.audit.record import CallFacts
    from secretsd.audit.remote import RemoteAuditSink
    from secretsd.audit.writer import AuditWriter

    async def record(self: object, facts: CallFacts) -> bool:
        return True

    _replace(AuditWriter, "record", record)
    _replace(RemoteAuditSink, "record", record)


def _patch_audit_build() -> None:
    from secretsd.audit.record import CallSummary, api_call_record, summary_record
    from secretsd.audit.writer import AuditWriter

    def write(self: AuditWriter, batch: Any) -> list[bytes]:
        cache = self._cache
        redactors = self._redactors
        return [
            summary_record(f, cache).line
            if isinstance(f, CallSummary)
            else api_call_record(f, redactors.get(f.service), cache).line
            for f, _ in batch
        ]

    _replace(AuditWriter, "_write", write)


def _replace(cls: type, name: str, function: Callable[..., Any]) -> None:
    # A renamed method would otherwise leave the real code running under a baseline's name.
    if not callable(getattr(cls, name, None)):
        raise VariantError(
            f"{cls.__qualname__}.{name} no longer exists: update bench/variant_server.py"
        )
    setattr(cls, name, function)


_PATCHES: dict[str, Callable[[], None]] = {
    "plaintext": _patch_plaintext,
    "no-authz": _patch_no_authz,
    "no-audit": _patch_no_audit,
    "audit-build": _patch_audit_build,
}


def apply(names: tuple[str, ...]) -> None:
    for name in names:
        _PATCHES[name]()
    print(
        APPLIED_LINE.format(variant="+".join(names), pid=os.getpid()), file=sys.stderr, flush=True
    )


def main() -> int:
    from secretsd.cli.main import main as secretsd_main

    secretsd_main(prog_name="secretsd")
    return 0


# Only when run as the launcher (`__main__`) or re-imported by a spawned worker
# (`__mp_main__`): importing this module elsewhere, e.g. for VARIANT_ENV, changes nothing.
if __name__ in ("__main__", "__mp_main__"):
    try:
        apply(parse_variant(os.environ.get(VARIANT_ENV, "")))
    except VariantError as exc:
        print(f"bench variant_server: {exc}", file=sys.stderr)
        sys.exit(2)

if __name__ == "__main__":
    sys.exit(main())
