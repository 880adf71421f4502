"""Intent-named queries over the IAM tables (migration 0004). Knows tables, not IAM's rules.

Every write method bumps the `iam` change counter in the same transaction, so that workers and
nodes caching principals and policies see the change (see `generation`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from secretsd.store.database import Row, Tx


@dataclass(frozen=True, slots=True)
class UserRecord:
    account_id: str
    name: str
    user_id: str
    path: str
    tags: tuple[tuple[str, str], ...]
    created_ms: int


@dataclass(frozen=True, slots=True)
class RoleRecord:
    account_id: str
    name: str
    role_id: str
    path: str
    trust_policy: str
    description: str | None
    max_session_seconds: int
    tags: tuple[tuple[str, str], ...]
    created_ms: int


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """Temporary credentials from STS (AssumeRole or GetSessionToken)."""

    access_key_id: str
    account_id: str
    secret_sealed: bytes
    token_digest: bytes
    kind: str  # "AssumedRole" (a role session) | "User" (GetSessionToken)
    principal_arn: str  # the role ARN, or the user ARN
    caller_arn: str  # arn:aws:sts::<acct>:assumed-role/<role>/<session>, or the user ARN
    owner_name: str  # the role name, or the user name
    userid: str  # "AROA...:<session>", or the user's AIDA... id
    tags: tuple[tuple[str, str], ...]
    created_ms: int
    expires_ms: int


@dataclass(frozen=True, slots=True)
class UserAccessKey:
    access_key_id: str
    account_id: str
    user_name: str | None  # None: the account's root user
    principal_arn: str
    secret_sealed: bytes
    status: str
    created_ms: int


def encode_tags(tags: Sequence[tuple[str, str]]) -> str | None:
    return json.dumps([list(t) for t in tags]) if tags else None


def decode_tags(tags_json: str | None) -> tuple[tuple[str, str], ...]:
    return () if tags_json is None else tuple((k, v) for k, v in json.loads(tags_json))


_USER_COLUMNS = "account_id, name, user_id, path, tags_json, created_ms"
_ROLE_COLUMNS = (
    "account_id, name, role_id, path, trust_policy, description, max_session_seconds, tags_json,"
    " created_ms"
)
_SESSION_COLUMNS = (
    "access_key_id, account_id, secret_sealed, token_digest, kind, principal_arn, caller_arn,"
    " owner_name, userid, tags_json, created_ms, expires_ms"
)
_KEY_COLUMNS = (
    "access_key_id, account_id, user_name, principal_arn, secret_sealed, status, created_ms"
)


def _user(row: Row) -> UserRecord:
    return UserRecord(
        row["account_id"],
        row["name"],
        row["user_id"],
        row["path"],
        decode_tags(row["tags_json"]),
        row["created_ms"],
    )


def _role(row: Row) -> RoleRecord:
    return RoleRecord(
        row["account_id"],
        row["name"],
        row["role_id"],
        row["path"],
        row["trust_policy"],
        row["description"],
        row["max_session_seconds"],
        decode_tags(row["tags_json"]),
        row["created_ms"],
    )


def _session(row: Row) -> SessionRecord:
    return SessionRecord(
        row["access_key_id"],
        row["account_id"],
        bytes(row["secret_sealed"]),
        bytes(row["token_digest"]),
        row["kind"],
        row["principal_arn"],
        row["caller_arn"],
        row["owner_name"],
        row["userid"],
        decode_tags(row["tags_json"]),
        row["created_ms"],
        row["expires_ms"],
    )


def _access_key(row: Row) -> UserAccessKey:
    return UserAccessKey(
        row["access_key_id"],
        row["account_id"],
        row["user_name"],
        row["principal_arn"],
        bytes(row["secret_sealed"]),
        row["status"],
        row["created_ms"],
    )


class IamRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    # -- change tracking ---------------------------------------------------------------------
    def generation(self) -> int:
        row = self.tx.one("SELECT value FROM change_counters WHERE name = 'iam'", ())
        return 0 if row is None else int(row["value"])

    def bump_generation(self) -> None:
        self.tx.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'iam'", ())

    # -- users -------------------------------------------------------------------------------
    def user(self, account_id: str, name: str) -> UserRecord | None:
        """By name, ignoring case as IAM does."""
        row = self.tx.one(
            f"SELECT {_USER_COLUMNS} FROM iam_users WHERE account_id = ? AND name_lower = ?",
            (account_id, name.lower()),
        )
        return None if row is None else _user(row)

    def insert_user(self, user: UserRecord) -> None:
        self.tx.execute(
            "INSERT INTO iam_users (account_id, name, name_lower, user_id, path, tags_json,"
            " created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                user.account_id,
                user.name,
                user.name.lower(),
                user.user_id,
                user.path,
                encode_tags(user.tags),
                user.created_ms,
            ),
        )
        self.bump_generation()

    # -- roles -------------------------------------------------------------------------------
    def role(self, account_id: str, name: str) -> RoleRecord | None:
        row = self.tx.one(
            f"SELECT {_ROLE_COLUMNS} FROM iam_roles WHERE account_id = ? AND name_lower = ?",
            (account_id, name.lower()),
        )
        return None if row is None else _role(row)

    # -- access keys -------------------------------------------------------------------------
    def access_key(self, access_key_id: str) -> UserAccessKey | None:
        row = self.tx.one(
            f"SELECT {_KEY_COLUMNS} FROM access_keys WHERE access_key_id = ?", (access_key_id,)
        )
        return None if row is None else _access_key(row)

    def insert_access_key(self, key: UserAccessKey) -> None:
        self.tx.execute(
            f"INSERT INTO access_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key.access_key_id,
                key.account_id,
                key.user_name,
                key.principal_arn,
                key.secret_sealed,
                key.status,
                key.created_ms,
            ),
        )
        self.bump_generation()

    # -- STS sessions ------------------------------------------------------------------------
    def session(self, access_key_id: str) -> SessionRecord | None:
        row = self.tx.one(
            f"SELECT {_SESSION_COLUMNS} FROM sts_sessions WHERE access_key_id = ?",
            (access_key_id,),
        )
        return None if row is None else _session(row)

    def insert_session(self, session: SessionRecord) -> None:
        # No generation bump: a new session changes nobody's cached permissions.
        self.tx.execute(
            f"INSERT INTO sts_sessions ({_SESSION_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session.access_key_id,
                session.account_id,
                session.secret_sealed,
                session.token_digest,
                session.kind,
                session.principal_arn,
                session.caller_arn,
                session.owner_name,
                session.userid,
                encode_tags(session.tags),
                session.created_ms,
                session.expires_ms,
            ),
        )

    def delete_expired_sessions(self, now_ms: int) -> int:
        return self.tx.rowcount("DELETE FROM sts_sessions WHERE expires_ms <= ?", (now_ms,))

    # -- policies ----------------------------------------------------------------------------
    def attach(self, account_id: str, owner_kind: str, owner_name: str, policy_arn: str) -> None:
        self.tx.execute(
            "INSERT INTO iam_attachments (account_id, owner_kind, owner_name, policy_arn)"
            " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (account_id, owner_kind, owner_name, policy_arn),
        )
        self.bump_generation()

    def identity_policies(
        self, account_id: str, owner_kind: str, owner_name: str
    ) -> tuple[list[tuple[str, str]], list[str]]:
        """What applies to a user or role: ([(source, document)], [attached managed ARNs]).

        A user's set includes the inline and attached policies of every group it is in. Customer
        managed documents are resolved here; AWS managed ARNs are returned for the caller to
        resolve from the code's catalogue (they are not in the database).
        """
        owners = [(owner_kind, owner_name)]
        if owner_kind == "user":
            owners += [
                ("group", r["group_name"])
                for r in self.tx.all(
                    "SELECT group_name FROM iam_group_members"
                    " WHERE account_id = ? AND user_name = ?",
                    (account_id, owner_name),
                )
            ]
        documents: list[tuple[str, str]] = []
        aws_managed: list[str] = []
        for kind, name in owners:
            for r in self.tx.all(
                "SELECT policy_name, document FROM iam_inline_policies"
                " WHERE account_id = ? AND owner_kind = ? AND owner_name = ?",
                (account_id, kind, name),
            ):
                documents.append((f"{kind}/{name}/{r['policy_name']}", r["document"]))
            for r in self.tx.all(
                "SELECT a.policy_arn, m.document FROM iam_attachments a"
                " LEFT JOIN iam_managed_policies m ON m.arn = a.policy_arn"
                " WHERE a.account_id = ? AND a.owner_kind = ? AND a.owner_name = ?",
                (account_id, kind, name),
            ):
                if r["document"] is not None:
                    documents.append((r["policy_arn"], r["document"]))
                else:
                    aws_managed.append(r["policy_arn"])
        return documents, aws_managed
