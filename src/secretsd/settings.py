"""One frozen Settings object; the only place that reads the process environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

ENV_PREFIX = "SECRETSD_"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("secretsd-data")
    # Empty means the embedded default: SQLite in the data dir.
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8566
    workers: int = 1
    # How often the server looks for secrets whose recovery window has ended.
    purge_interval_seconds: float = 60.0
    # Shifts the server's clock; for operators' drills and end-to-end tests only.
    clock_offset_seconds: float = 0.0
    # Requests larger than this are refused before being parsed.
    max_body_bytes: int = 1_048_576
    log_level: str = "info"
    # How long an access key's unsealed secret stays cached in a worker (seconds).
    credential_cache_seconds: float = 30.0
    # How long a worker keeps an unwrapped data key in memory (never on disk); 0 disables it.
    data_key_cache_seconds: float = 60.0
    # How long a worker may answer repeated reads from memory while the database is unchanged
    # (SQLite only; any committed write anywhere invalidates it). 0 disables it.
    value_cache_seconds: float = 30.0
    # PostgreSQL only: how often a worker re-reads the IAM change counter to drop cached
    # principals and policies (SQLite notices every commit for free). 0 reads it on every call;
    # larger values trade a round trip per request for IAM changes taking up to this long to
    # reach other nodes, as in AWS IAM's own eventual consistency.
    policy_poll_seconds: float = 0.0
    # PostgreSQL only: how many requests a worker runs at once in its handler threads, each with
    # a database connection of its own (ADR 0007). Size the database's max_connections for
    # nodes x workers x (2 x this + 4): each thread may also open one for root key lookups.
    database_threads: int = 16
    # Argon2id parameters used when a passphrase protector is set (recorded with it, so later
    # unseals use the same ones). RFC 9106's second recommendation; tests lower them.
    kdf_iterations: int = 3
    kdf_memory_kib: int = 65536
    kdf_lanes: int = 4
    # Root key rotation waits this long after switching versions before re-wrapping, so a seal
    # that read the previous version just before the switch has committed.
    root_key_grace_seconds: float = 2.0
    # Web console sessions end after this long without a page view, and this long after sign-in.
    console_idle_seconds: int = 3600
    console_session_seconds: int = 43200
    # Regions served by other secretsd deployments: `REGION=URL[,REGION=URL...]`
    # (docs/replication.md), signed with the credentials in this AWS-style file (one section per
    # region, or `default`).
    replication_peers: str = ""
    replication_credentials: str = ""
    # The audit trail (docs/operations.md); there is no switch to turn it off.
    # Refuse a call (500 InternalServiceError) whose audit record cannot be committed; each call
    # then waits for its record's commit (batched with the worker's other calls).
    audit_fail_closed: bool = False
    # Without fail-closed, records are committed in batches at least this often.
    audit_flush_seconds: float = 0.05
    # How often each chain's head is signed (a digest), at most.
    audit_digest_seconds: float = 60.0
    # Exporters: a JSON lines file, and syslog (/dev/log, udp://host:514 or tcp://host:514).
    audit_log_path: str = ""
    audit_syslog_address: str = ""
    # "process": `serve` runs one audit writer process beside its workers, which chains and
    # commits their records on another core (audit/writer_process.py); "inline": each worker
    # chains and commits its own, on its event loop; "auto": process when the server may run on
    # at least two cores more than it has workers.
    audit_writer: str = "auto"
    # Set by `serve`: where its audit writer process listens (empty: the worker writes inline).
    audit_writer_socket: str = ""
    # /metrics: served unless disabled; with a token, scrapes must send "Bearer <token>".
    metrics_enabled: bool = True
    metrics_token: str = ""
    # Set by `serve` for several workers: prometheus-client's multiprocess directory.
    metrics_multiprocess_dir: str = ""
    # TLS: PEM certificate chain and private key; both empty serves plain HTTP. SIGHUP re-reads
    # them for new connections (docs/operations.md).
    tls_cert: str = ""
    tls_key: str = ""
    # "text" (one human-readable line per record) or "json" (one JSON object per line).
    log_format: str = "text"
    # AWS's request rate quotas per calling account and region (docs/operations.md); off by
    # default. `throttle_rates`: "Operation=rate,..." overrides the quota that operation is in.
    # Each worker process keeps its own buckets at rate / workers.
    throttle: bool = False
    throttle_rates: str = ""
    # The Secrets Manager Agent compatible listener (docs/operations.md): off when negative, 0
    # picks a free port. It calls this server with the credentials of `agent_profile` in
    # `agent_credentials_file`, so those credentials' policies decide what it may read.
    agent_port: int = -1
    agent_host: str = "127.0.0.1"
    agent_credentials_file: str = ""
    agent_profile: str = "default"
    agent_region: str = "us-east-1"
    agent_ttl_seconds: int = 300
    agent_cache_size: int = 1000
    # Environment variables holding the token requests must carry (first one set wins; a value
    # `file://PATH` names a file holding it), as the Agent's ssrf_env_variables.
    agent_token_variables: str = "AWS_TOKEN,AWS_SESSION_TOKEN,AWS_CONTAINER_AUTHORIZATION_TOKEN"
    # CA bundle the listener verifies this server's certificate with, when serving TLS.
    agent_ca_bundle: str = ""

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'secretsd.db').resolve()}"

    @property
    def audit_database_url(self) -> str:
        """Where the audit trail lives: on SQLite a file of its own next to the database (its
        constant appends then never invalidate the workers' caches, which follow the main
        file's commits, nor queue behind secret writes); on PostgreSQL the same database."""
        url = self.effective_database_url
        if not url.startswith("sqlite:///"):
            return url
        return url[: -len(".db")] + "-audit.db" if url.endswith(".db") else url + "-audit"

    @property
    def root_key_path(self) -> Path:
        return self.data_dir / "root.key"

    @property
    def admin_credentials_path(self) -> Path:
        return self.data_dir / "admin.credentials"

    def to_env(self) -> dict[str, str]:
        """Environment for worker processes, which rebuild the same Settings with from_env."""
        return {ENV_PREFIX + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls()
        changes: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            default = getattr(settings, f.name)
            if isinstance(default, Path):
                changes[f.name] = Path(raw)
            elif isinstance(default, bool):
                changes[f.name] = raw.lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                changes[f.name] = int(raw)
            elif isinstance(default, float):
                changes[f.name] = float(raw)
            else:
                changes[f.name] = raw
        return replace(settings, **changes)  # type: ignore[arg-type]
