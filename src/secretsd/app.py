"""Composition root: builds the ASGI app from Settings. Nothing else wires components together."""

from __future__ import annotations

import asyncio

from secretsd.api import cloudtrail as cloudtrail_api
from secretsd.api import functions as functions_api
from secretsd.api import iam as iam_api
from secretsd.api import kms as kms_api
from secretsd.api import logs as logs_api
from secretsd.api import sts as sts_api
from secretsd.api.peering import peering_route
from secretsd.api.replication import with_replication
from secretsd.api.rotation import with_rotation
from secretsd.api.secretsmanager import HANDLERS
from secretsd.audit.chain import RootKeySigners
from secretsd.audit.exporters import configured_exporters
from secretsd.audit.redact import Redactor
from secretsd.audit.remote import RemoteAuditSink
from secretsd.audit.writer import AuditOptions, AuditWriter
from secretsd.auth.principals import PrincipalDirectory, seal_secret
from secretsd.clock import SystemClock
from secretsd.console.app import PREFIX as CONSOLE_PREFIX
from secretsd.console.app import ConsoleApp
from secretsd.console.calls import ApiOperations
from secretsd.crypto import protectors
from secretsd.crypto.protectors import PassphraseProtector, Protector, ProtectorMismatch
from secretsd.crypto.rootkey import RootKeyring
from secretsd.kms.keyring import Keyring
from secretsd.kms.root_keys import open_keyring, protector_params, read_state
from secretsd.kms.service import KmsService
from secretsd.logs import configure_logging
from secretsd.offload import Offloader
from secretsd.process_memory import limit_malloc_arenas
from secretsd.protocol.asgi import ApiApp, Route
from secretsd.protocol.metrics import Metrics
from secretsd.protocol.model import load_service_model
from secretsd.protocol.query import QueryRoute, QueryService
from secretsd.protocol.rest import RestProtocol, RestRoute
from secretsd.protocol.sealed import AsgiApp, SealedGate, UnsealRefused
from secretsd.protocol.throttle import Throttle, quotas
from secretsd.protocol.validate import Validator
from secretsd.runtime.environment import FunctionSpec
from secretsd.runtime.pool import EnvironmentPool
from secretsd.scheduler.purge import purge_loop
from secretsd.service.authorization import Authorizer, GenerationWatch
from secretsd.service.builtin_rotators import builtin_rotators
from secretsd.service.cloudtrail import CloudTrailService
from secretsd.service.console_sessions import ConsoleSessions
from secretsd.service.cross_account import CrossAccountService
from secretsd.service.functions import LambdaService
from secretsd.service.iam import IamService
from secretsd.service.logs import LogsService
from secretsd.service.pagination import TokenCodec
from secretsd.service.peers import parse_peers
from secretsd.service.replication import ReplicationService, replication_loop
from secretsd.service.rotation import RotationService, RotatorRouter, rotation_loop
from secretsd.service.rotation_outcomes import RotationOutcomes
from secretsd.service.secrets import SecretsService
from secretsd.service.sts import StsService
from secretsd.settings import Settings
from secretsd.store.audit_repository import open_audit_database, open_trail_database
from secretsd.store.database import Database
from secretsd.store.metrics_repository import StoreCounts, store_counts
from secretsd.store.notifications import IAM_CHANNEL, ChangeListener


def build_app(settings: Settings, root_key: RootKeyring | None = None) -> ApiApp:
    """`root_key`: the unsealed root key versions; opened here (key file or external KMS
    protector) when not given."""
    # Before any of the process's threads (handlers, flushers, listeners) is started.
    limit_malloc_arenas()
    clock = SystemClock(settings.clock_offset_seconds)
    # Group commit (SQLite): every route awaits its own commits' fsync before it answers.
    db = Database(settings.effective_database_url, group_commit=True)
    if root_key is None:
        root_key = live_root_keys(settings, db)
    # PostgreSQL: handlers and background loops wait on the network; they run in threads so
    # that those waits overlap and never stall the event loop. SQLite reads are page-cache work
    # a thread hand-off would only slow down: everything runs on the loop (ADR 0007).
    offload = Offloader(settings.database_threads) if db.dialect == "postgres" else None
    keyring = Keyring(root_key, clock, settings.data_key_cache_seconds)
    listener = (
        ChangeListener(settings.effective_database_url, IAM_CHANNEL)
        if db.dialect == "postgres"
        else None
    )
    watch = GenerationWatch(db, settings.policy_poll_seconds, listener)
    authorizer = Authorizer(db, clock, watch)
    kms = KmsService(db, keyring, clock, authorizer)

    def seal(access_key_id: str, secret_access_key: str) -> bytes:
        return seal_secret(root_key, access_key_id, secret_access_key)

    iam = IamService(db, clock, authorizer, seal)
    sts = StsService(db, clock, authorizer, seal)
    service = SecretsService(
        db,
        keyring,
        clock,
        TokenCodec(root_key),
        authorizer,
        settings.value_cache_seconds,
    )
    sm_model = load_service_model("secretsmanager")
    kms_model = load_service_model("kms")
    sm_validator = Validator(sm_model)
    kms_validator = Validator(kms_model)
    principals = PrincipalDirectory(db, root_key, settings.credential_cache_seconds, watch.current)
    peers = parse_peers(settings.replication_peers, settings.replication_credentials)
    replication = ReplicationService(db, keyring, clock, service, peers)
    cross_account = CrossAccountService(db, keyring, clock, service)

    def write_log(spec: FunctionSpec, stream: str, events: list[tuple[int, str]]) -> None:
        functions.write_log(spec, stream, events)

    # Each worker runs the invocations it receives, in environments of its own.
    pool = EnvironmentPool(now_ms=clock.now_ms, log_sink=write_log)
    # The FunctionInvoker (service/invocation.py) that rotation invokes functions through.
    functions = LambdaService(db, clock, authorizer, sts, pool, local_endpoint(settings))
    # Built-in rotators by function name in front of Lambda.
    rotation = RotationService(
        db, clock, service, authorizer, RotatorRouter(builtin_rotators(service), functions)
    )
    # The console calls the same handlers as the wire API, replication's and rotation's layers
    # included.
    sm_handlers = with_rotation(with_replication(HANDLERS, replication, cross_account), rotation)
    tokens = TokenCodec(root_key)
    audit_url = settings.audit_database_url
    shared_audit_db = audit_url == settings.effective_database_url
    # LookupEvents reads through the worker's connection where the trail is in the main
    # database (PostgreSQL), through one of its own where it has a file of its own (SQLite).
    audit_reader = db if shared_audit_db else open_audit_database(audit_url, audit_url)
    cloudtrail = CloudTrailService(audit_reader, clock, authorizer, tokens)
    iam_model = load_service_model("iam")
    sts_model = load_service_model("sts")
    cloudtrail_model = load_service_model("cloudtrail")
    lambda_model = load_service_model("lambda")
    logs_model = load_service_model("logs")

    def counts() -> StoreCounts:
        with db.transaction() as tx:
            return store_counts(tx, clock.now_ms())

    metrics = (
        Metrics(
            counts,
            token=settings.metrics_token,
            multiprocess_dir=settings.metrics_multiprocess_dir,
        )
        if settings.metrics_enabled
        else None
    )
    redactors = {
        "secretsmanager": Redactor(sm_model),
        "kms": Redactor(kms_model),
        "iam": Redactor(iam_model),
        "sts": Redactor(sts_model),
        "cloudtrail": Redactor(cloudtrail_model),
        "lambda": Redactor(lambda_model),
        "logs": Redactor(logs_model),
    }
    audit_options = AuditOptions(
        fail_closed=settings.audit_fail_closed,
        flush_seconds=settings.audit_flush_seconds,
        digest_seconds=settings.audit_digest_seconds,
    )
    on_written = metrics.audit_written if metrics is not None else None
    audit: AuditWriter | RemoteAuditSink
    if settings.audit_writer_socket:
        # The node's writer process chains and commits (it also publishes service events).
        signers = RootKeySigners(root_key)
        audit = RemoteAuditSink(
            settings.audit_writer_socket, redactors, audit_options, signers.current, on_written
        )
        stop_audit = audit.close
    else:
        inline = AuditWriter(
            open_trail_database(
                audit_url,
                settings.effective_database_url,
                db,
                fail_closed=settings.audit_fail_closed,
            ),
            db,
            clock,
            RootKeySigners(root_key).current,
            redactors,
            audit_options,
            configured_exporters(settings.audit_log_path, settings.audit_syslog_address),
            on_written=on_written,
            offload=offload,
        )

        async def stop_inline() -> None:
            inline.stop()

        audit, stop_audit = inline, stop_inline

    async def sync_writes() -> None:
        # The background tasks' last commits, fsync'd now rather than within 50 ms (SQLite).
        group = db.group_commit
        if group is not None:
            await asyncio.to_thread(group.close)

    console = ConsoleApp(
        ConsoleSessions(
            db,
            clock,
            principals,
            idle_seconds=settings.console_idle_seconds,
            absolute_seconds=settings.console_session_seconds,
        ),
        ApiOperations(service, sm_handlers, sm_validator, "secretsmanager", audit, clock.now_ms),
        ApiOperations(kms, kms_api.HANDLERS, kms_validator, "kms", audit, clock.now_ms),
        clock=clock,
        rotation_outcomes=RotationOutcomes(db, service),
        trail_api=ApiOperations(
            cloudtrail,
            cloudtrail_api.HANDLERS,
            Validator(cloudtrail_model),
            "cloudtrail",
            audit,
            clock.now_ms,
        ),
    )
    return ApiApp(
        service=service,
        handlers=sm_handlers,
        validator=sm_validator,
        principals=principals,
        max_body_bytes=settings.max_body_bytes,
        now=clock.now_datetime,
        background=[
            purge_loop(service, settings.purge_interval_seconds, kms, sts, offload),
            replication_loop(replication, db, clock, offload=offload),
            pool.reap_loop,
            rotation_loop(rotation, offload=offload),
            audit.run,
        ],
        on_shutdown=[
            functions.close,
            stop_audit,
            sync_writes,
            *([offload.close] if offload is not None else []),
        ],
        function_invoker=functions,
        audit=audit,
        metrics=metrics,
        offload=offload,
        routes=[
            Route(
                "TrentService.",
                "kms",
                kms,
                kms_api.HANDLERS,
                kms_validator,
            ),
            peering_route(replication),
            Route(
                logs_api.TARGET_PREFIX,
                "logs",
                LogsService(db, authorizer),
                logs_api.HANDLERS,
                Validator(logs_model),
            ),
            Route(
                cloudtrail_api.TARGET_PREFIX,
                "cloudtrail",
                cloudtrail,
                cloudtrail_api.HANDLERS,
                Validator(cloudtrail_model),
            ),
        ],
        rest_routes=[
            RestRoute(
                "/2015-03-31/",
                "lambda",
                RestProtocol(lambda_model, functions_api.OPERATIONS),
                functions,
                functions_api.HANDLERS,
                LAMBDA_MAX_BODY_BYTES,
            )
        ],
        mounts=[(CONSOLE_PREFIX, console)],
        throttle=(
            Throttle(quotas(settings.throttle_rates, settings.workers))
            if settings.throttle
            else None
        ),
        query_routes=[
            QueryRoute(
                "iam",
                QueryService.from_model(iam_model),
                iam,
                iam_api.HANDLERS,
            ),
            QueryRoute(
                "sts",
                QueryService.from_model(sts_model),
                sts,
                sts_api.HANDLERS,
            ),
        ],
    )


# AWS's limit for a CreateFunction request: a 50 MB zip, base64-encoded in JSON.
LAMBDA_MAX_BODY_BYTES = 69_905_067


def local_endpoint(settings: Settings) -> str:
    """How functions running on this machine reach secretsd (AWS_ENDPOINT_URL)."""
    host = settings.host
    if host in ("0.0.0.0", ""):  # noqa: S104 (a wildcard bind is reached on loopback)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def live_root_keys(
    settings: Settings, db: Database, protector: Protector | None = None
) -> RootKeyring:
    """Root keys for a serving process: they follow rotations made by other processes."""
    ring, _ = open_keyring(
        db,
        settings.root_key_path,
        protector=protector,
        live_database_url=settings.effective_database_url,
    )
    return ring


def passphrase_protector(settings: Settings, passphrase: str) -> PassphraseProtector:
    """The passphrase's protector, checked against the stored root keys (UnsealRefused if not)."""
    db = Database(settings.effective_database_url)
    try:
        state = read_state(db)
        if state.protector != protectors.PASSPHRASE:
            raise UnsealRefused(
                f"the root keys are protected by {state.protector}, not a passphrase"
            )
        protector = PassphraseProtector.from_params(passphrase, protector_params(state))
        try:
            open_keyring(db, settings.root_key_path, protector=protector)
        except ProtectorMismatch as exc:
            raise UnsealRefused("The passphrase does not unseal secretsd.") from exc
        return protector
    finally:
        db.close()


def build_server(settings: Settings, workers: int = 1) -> AsgiApp:
    """The app for one serving process: sealed behind a gate when a passphrase protects the
    root keys, built (lazily) once the right passphrase arrives."""
    db = Database(settings.effective_database_url)
    try:
        kind = read_state(db).protector
    finally:
        db.close()
    if kind != protectors.PASSPHRASE:
        return build_app(settings)

    def unseal(passphrase: str) -> AsgiApp:
        return worker_app(settings, passphrase_protector(settings, passphrase).wrapping_key)

    return SealedGate(unseal, {"workers": workers})


def worker_app(settings: Settings, wrapping_key: bytes) -> ApiApp:
    """Factory for the workers of a passphrase-protected server, which the supervisor unsealed
    before starting them (the derived key reaches them through multiprocessing's pipe, never
    the environment or a file)."""
    configure_logging(settings.log_level, settings.log_format)
    db = Database(settings.effective_database_url)
    try:
        state = read_state(db)
        protector = PassphraseProtector.from_wrapping_key(wrapping_key, protector_params(state))
        root_keys = live_root_keys(settings, db, protector)
    finally:
        db.close()
    return build_app(settings, root_keys)


def app_from_environment() -> AsgiApp:
    """Entry point for uvicorn worker processes: settings arrive through SECRETSD_* variables.
    (`serve` unseals passphrase-protected servers in the supervisor; a worker started some other
    way with a passphrase protector starts sealed on its own.)"""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return build_server(settings)
