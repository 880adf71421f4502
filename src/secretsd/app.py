"""Composition root: builds the ASGI app from Settings. Nothing else wires components together."""

from __future__ import annotations

from secretsd.api import iam as iam_api
from secretsd.api import kms as kms_api
from secretsd.api import sts as sts_api
from secretsd.api.replication import with_replication
from secretsd.api.secretsmanager import HANDLERS
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
from secretsd.protocol.asgi import ApiApp, Route
from secretsd.protocol.model import load_service_model
from secretsd.protocol.query import QueryRoute, QueryService
from secretsd.protocol.sealed import AsgiApp, SealedGate, UnsealRefused
from secretsd.protocol.throttle import Throttle, quotas
from secretsd.protocol.validate import Validator
from secretsd.scheduler.purge import purge_loop
from secretsd.service.authorization import Authorizer, GenerationWatch
from secretsd.service.console_sessions import ConsoleSessions
from secretsd.service.iam import IamService
from secretsd.service.pagination import TokenCodec
from secretsd.service.replication import ReplicationService, replication_loop
from secretsd.service.secrets import SecretsService
from secretsd.service.sts import StsService
from secretsd.settings import Settings
from secretsd.store.database import Database
from secretsd.store.notifications import IAM_CHANNEL, ChangeListener


def build_app(settings: Settings, root_key: RootKeyring | None = None) -> ApiApp:
    """`root_key`: the unsealed root key versions; opened here (key file or external KMS
    protector) when not given."""
    clock = SystemClock(settings.clock_offset_seconds)
    db = Database(settings.effective_database_url)
    if root_key is None:
        root_key = live_root_keys(settings, db)
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
    sm_validator = Validator(load_service_model("secretsmanager"))
    kms_validator = Validator(load_service_model("kms"))
    principals = PrincipalDirectory(db, root_key, settings.credential_cache_seconds, watch.current)
    replication = ReplicationService(db, keyring, clock, service)
    # The console calls the same handlers as the wire API, replication's layer included.
    sm_handlers = with_replication(HANDLERS, replication)
    console = ConsoleApp(
        ConsoleSessions(
            db,
            clock,
            principals,
            idle_seconds=settings.console_idle_seconds,
            absolute_seconds=settings.console_session_seconds,
        ),
        ApiOperations(service, sm_handlers, sm_validator),
        ApiOperations(kms, kms_api.HANDLERS, kms_validator),
    )
    return ApiApp(
        service=service,
        handlers=sm_handlers,
        validator=sm_validator,
        principals=principals,
        max_body_bytes=settings.max_body_bytes,
        now=clock.now_datetime,
        background=[
            purge_loop(service, settings.purge_interval_seconds, kms, sts),
            replication_loop(replication, db, clock),
        ],
        routes=[
            Route(
                "TrentService.",
                "kms",
                kms,
                kms_api.HANDLERS,
                kms_validator,
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
                QueryService.from_model(load_service_model("iam")),
                iam,
                iam_api.HANDLERS,
            ),
            QueryRoute(
                "sts",
                QueryService.from_model(load_service_model("sts")),
                sts,
                sts_api.HANDLERS,
            ),
        ],
    )


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
