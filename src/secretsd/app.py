"""Composition root: builds the ASGI app from Settings. Nothing else wires components together."""

from __future__ import annotations

from secretsd.api import iam as iam_api
from secretsd.api import kms as kms_api
from secretsd.api import sts as sts_api
from secretsd.api.secretsmanager import HANDLERS
from secretsd.auth.principals import PrincipalDirectory, seal_secret
from secretsd.clock import SystemClock
from secretsd.crypto.rootkey import load_or_create_root_key
from secretsd.kms.keyring import Keyring
from secretsd.kms.service import KmsService
from secretsd.protocol.asgi import ApiApp, Route
from secretsd.protocol.model import load_service_model
from secretsd.protocol.query import QueryRoute, QueryService
from secretsd.protocol.validate import Validator
from secretsd.scheduler.purge import purge_loop
from secretsd.service.authorization import Authorizer, GenerationWatch
from secretsd.service.iam import IamService
from secretsd.service.pagination import TokenCodec
from secretsd.service.secrets import SecretsService
from secretsd.service.sts import StsService
from secretsd.settings import Settings
from secretsd.store.database import Database


def build_app(settings: Settings) -> ApiApp:
    clock = SystemClock(settings.clock_offset_seconds)
    root_key = load_or_create_root_key(settings.root_key_path)
    db = Database(settings.effective_database_url)
    keyring = Keyring(root_key, clock, settings.data_key_cache_seconds)
    watch = GenerationWatch(db, settings.policy_poll_seconds)
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
    return ApiApp(
        service=service,
        handlers=HANDLERS,
        validator=Validator(load_service_model("secretsmanager")),
        principals=PrincipalDirectory(
            db, root_key, settings.credential_cache_seconds, watch.current
        ),
        max_body_bytes=settings.max_body_bytes,
        now=clock.now_datetime,
        background=purge_loop(service, settings.purge_interval_seconds, kms),
        routes=[
            Route(
                "TrentService.",
                "kms",
                kms,
                kms_api.HANDLERS,
                Validator(load_service_model("kms")),
            )
        ],
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


def app_from_environment() -> ApiApp:
    """Entry point for uvicorn worker processes: settings arrive through SECRETSD_* variables."""
    return build_app(Settings.from_env())
