"""Access keys -> the calling principal, with each key's unsealed secret cached briefly.

Long-term keys (AKIA...) belong to an IAM user or, for emergency access, to an account's root
user; temporary keys (ASIA...) are STS sessions with a token and an expiry. Cached entries stay
valid while the IAM change counter is unchanged (a key deactivated or deleted by any worker or
node is refused from the next request on) and for at most `ttl_seconds`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import MappingProxyType

from secretsd.auth.identity import Identity
from secretsd.crypto.rootkey import RootKeyring
from secretsd.store.database import Database
from secretsd.store.iam_repository import IamRepository, SessionRecord, UserAccessKey

_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"


@dataclass(frozen=True, slots=True)
class Principal:
    identity: Identity
    secret_access_key: str
    # SHA-256 of the session token, for temporary credentials only.
    token_digest: bytes | None = None

    @property
    def access_key_id(self) -> str:
        return self.identity.access_key_id

    @property
    def account_id(self) -> str:
        return self.identity.account_id


def new_access_key_id(prefix: str = "AKIA") -> str:
    return prefix + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    # 30 random bytes -> 40 base64 characters, the length AWS uses.
    return base64.b64encode(secrets.token_bytes(30)).decode()


def token_digest(session_token: str) -> bytes:
    return hashlib.sha256(session_token.encode()).digest()


def seal_secret(root_key: RootKeyring, access_key_id: str, secret_access_key: str) -> bytes:
    return root_key.seal(secret_access_key.encode(), access_key_id.encode())


def root_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


class PrincipalDirectory:
    def __init__(
        self,
        db: Database,
        root_key: RootKeyring,
        ttl_seconds: float,
        generation: Callable[[], int],
    ) -> None:
        self._db = db
        self._root_key = root_key
        self._ttl = ttl_seconds
        self._generation = generation
        self._cache: dict[str, tuple[float, int, Principal | None]] = {}

    def lookup(self, access_key_id: str) -> Principal | None:
        """The principal for a key id; None when the key is unknown, inactive or orphaned.

        Session expiry is not checked here: the caller tells an expired token apart.
        """
        now = time.monotonic()
        generation = self._generation()
        hit = self._cache.get(access_key_id)
        if hit is not None and hit[0] > now and hit[1] == generation:
            return hit[2]
        with self._db.transaction() as tx:
            iam = IamRepository(tx)
            if access_key_id.startswith("ASIA"):
                session = iam.session(access_key_id)
                principal = None if session is None else self._session_principal(session)
            else:
                key = iam.access_key(access_key_id)
                principal = None if key is None else self._key_principal(iam, key)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[access_key_id] = (now + self._ttl, generation, principal)
        return principal

    def _unseal(self, access_key_id: str, sealed: bytes) -> str:
        return self._root_key.open(sealed, access_key_id.encode()).decode()

    def _key_principal(self, iam: IamRepository, key: UserAccessKey) -> Principal | None:
        if key.status != "Active":
            return None
        secret = self._unseal(key.access_key_id, key.secret_sealed)
        if key.user_name is None:
            return Principal(_root_identity(key.account_id, key.access_key_id), secret)
        user = iam.user(key.account_id, key.user_name)
        if user is None:
            return None
        identity = Identity(
            account_id=key.account_id,
            arn=key.principal_arn,
            principal_arn=key.principal_arn,
            principal_type="User",
            userid=user.user_id,
            owner_kind="user",
            owner_name=user.name,
            access_key_id=key.access_key_id,
            tags=MappingProxyType(dict(user.tags)),
        )
        return Principal(identity, secret)

    def _session_principal(self, session: SessionRecord) -> Principal:
        if session.kind == "Root":
            identity = _root_identity(session.account_id, session.access_key_id)
        else:
            role = session.kind == "AssumedRole"
            identity = Identity(
                account_id=session.account_id,
                arn=session.caller_arn,
                principal_arn=session.principal_arn,
                principal_type="AssumedRole" if role else "User",
                userid=session.userid,
                owner_kind="role" if role else "user",
                owner_name=session.owner_name,
                access_key_id=session.access_key_id,
                tags=MappingProxyType(dict(session.tags)),
            )
        timed = replace(
            identity, session_expires_ms=session.expires_ms, session_issued_ms=session.created_ms
        )
        return Principal(
            timed, self._unseal(session.access_key_id, session.secret_sealed), session.token_digest
        )


def _root_identity(account_id: str, access_key_id: str) -> Identity:
    return Identity(
        account_id=account_id,
        arn=root_arn(account_id),
        principal_arn=root_arn(account_id),
        principal_type="Account",
        userid=account_id,
        owner_kind="root",
        owner_name="",
        access_key_id=access_key_id,
    )
