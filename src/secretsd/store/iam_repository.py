"""Intent-named queries over the IAM tables (migration 0004). Knows tables, not IAM's rules.

Every write method bumps the `iam` change counter in the same transaction, so that workers and
nodes caching principals and policies see the change (see `generation`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from secretsd.store.database import Row, Tx
from secretsd.store.notifications import IAM_CHANNEL


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
    kind: str  # "AssumedRole" (a role session) | "User" or "Root" (GetSessionToken)
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
        notify_iam_change(self.tx)

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

    def account_created_ms(self, account_id: str) -> int | None:
        row = self.tx.one("SELECT created_ms FROM accounts WHERE account_id = ?", (account_id,))
        return None if row is None else int(row["created_ms"])

    # -- users (management) ------------------------------------------------------------------
    def users(self, account_id: str, path_prefix: str = "/") -> list[UserRecord]:
        rows = self.tx.all(
            f"SELECT {_USER_COLUMNS} FROM iam_users WHERE account_id = ? ORDER BY name_lower",
            (account_id,),
        )
        return [_user(r) for r in rows if r["path"].startswith(path_prefix)]

    def set_user_tags(self, account_id: str, name: str, tags: Sequence[tuple[str, str]]) -> None:
        self.tx.execute(
            "UPDATE iam_users SET tags_json = ? WHERE account_id = ? AND name = ?",
            (encode_tags(tags), account_id, name),
        )
        self.bump_generation()

    def delete_user(self, account_id: str, name: str) -> None:
        self.tx.execute(
            "DELETE FROM iam_users WHERE account_id = ? AND name = ?", (account_id, name)
        )
        self.bump_generation()

    # -- groups ------------------------------------------------------------------------------
    def group(self, account_id: str, name: str) -> GroupRecord | None:
        row = self.tx.one(
            f"SELECT {_GROUP_COLUMNS} FROM iam_groups WHERE account_id = ? AND name_lower = ?",
            (account_id, name.lower()),
        )
        return None if row is None else _group(row)

    def groups(self, account_id: str, path_prefix: str = "/") -> list[GroupRecord]:
        rows = self.tx.all(
            f"SELECT {_GROUP_COLUMNS} FROM iam_groups WHERE account_id = ? ORDER BY name_lower",
            (account_id,),
        )
        return [_group(r) for r in rows if r["path"].startswith(path_prefix)]

    def insert_group(self, group: GroupRecord) -> None:
        self.tx.execute(
            "INSERT INTO iam_groups (account_id, name, name_lower, group_id, path, created_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                group.account_id,
                group.name,
                group.name.lower(),
                group.group_id,
                group.path,
                group.created_ms,
            ),
        )
        self.bump_generation()

    def delete_group(self, account_id: str, name: str) -> None:
        self.tx.execute(
            "DELETE FROM iam_groups WHERE account_id = ? AND name = ?", (account_id, name)
        )
        self.bump_generation()

    def add_member(self, account_id: str, group_name: str, user_name: str) -> None:
        self.tx.execute(
            "INSERT INTO iam_group_members (account_id, group_name, user_name) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (account_id, group_name, user_name),
        )
        self.bump_generation()

    def remove_member(self, account_id: str, group_name: str, user_name: str) -> int:
        removed = self.tx.rowcount(
            "DELETE FROM iam_group_members WHERE account_id = ? AND group_name = ?"
            " AND user_name = ?",
            (account_id, group_name, user_name),
        )
        self.bump_generation()
        return removed

    def group_members(self, account_id: str, group_name: str) -> list[UserRecord]:
        rows = self.tx.all(
            f"SELECT {', '.join('u.' + c.strip() for c in _USER_COLUMNS.split(','))}"
            " FROM iam_group_members m JOIN iam_users u"
            " ON u.account_id = m.account_id AND u.name = m.user_name"
            " WHERE m.account_id = ? AND m.group_name = ? ORDER BY u.name_lower",
            (account_id, group_name),
        )
        return [_user(r) for r in rows]

    def groups_for_user(self, account_id: str, user_name: str) -> list[GroupRecord]:
        rows = self.tx.all(
            f"SELECT {', '.join('g.' + c.strip() for c in _GROUP_COLUMNS.split(','))}"
            " FROM iam_group_members m JOIN iam_groups g"
            " ON g.account_id = m.account_id AND g.name = m.group_name"
            " WHERE m.account_id = ? AND m.user_name = ? ORDER BY g.name_lower",
            (account_id, user_name),
        )
        return [_group(r) for r in rows]

    def member_count(self, account_id: str, group_name: str) -> int:
        row = self.tx.one(
            "SELECT COUNT(*) AS n FROM iam_group_members WHERE account_id = ? AND group_name = ?",
            (account_id, group_name),
        )
        return 0 if row is None else int(row["n"])

    # -- roles (management) ------------------------------------------------------------------
    def roles(self, account_id: str, path_prefix: str = "/") -> list[RoleRecord]:
        rows = self.tx.all(
            f"SELECT {_ROLE_COLUMNS} FROM iam_roles WHERE account_id = ? ORDER BY name_lower",
            (account_id,),
        )
        return [_role(r) for r in rows if r["path"].startswith(path_prefix)]

    def insert_role(self, role: RoleRecord) -> None:
        self.tx.execute(
            f"INSERT INTO iam_roles (name_lower, {_ROLE_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                role.name.lower(),
                role.account_id,
                role.name,
                role.role_id,
                role.path,
                role.trust_policy,
                role.description,
                role.max_session_seconds,
                encode_tags(role.tags),
                role.created_ms,
            ),
        )
        self.bump_generation()

    def set_role_tags(self, account_id: str, name: str, tags: Sequence[tuple[str, str]]) -> None:
        self.tx.execute(
            "UPDATE iam_roles SET tags_json = ? WHERE account_id = ? AND name = ?",
            (encode_tags(tags), account_id, name),
        )
        self.bump_generation()

    def set_trust_policy(self, account_id: str, name: str, document: str) -> None:
        self.tx.execute(
            "UPDATE iam_roles SET trust_policy = ? WHERE account_id = ? AND name = ?",
            (document, account_id, name),
        )
        self.bump_generation()

    def delete_role(self, account_id: str, name: str) -> None:
        self.tx.execute(
            "DELETE FROM iam_roles WHERE account_id = ? AND name = ?", (account_id, name)
        )
        self.bump_generation()

    # -- access keys (management) ------------------------------------------------------------
    def user_access_keys(self, account_id: str, user_name: str) -> list[UserAccessKey]:
        rows = self.tx.all(
            f"SELECT {_KEY_COLUMNS} FROM access_keys WHERE account_id = ? AND user_name = ?"
            " ORDER BY created_ms, access_key_id",
            (account_id, user_name),
        )
        return [_access_key(r) for r in rows]

    def set_access_key_status(self, access_key_id: str, status: str) -> None:
        self.tx.execute(
            "UPDATE access_keys SET status = ? WHERE access_key_id = ?", (status, access_key_id)
        )
        self.bump_generation()

    def delete_access_key(self, access_key_id: str) -> None:
        self.tx.execute("DELETE FROM access_keys WHERE access_key_id = ?", (access_key_id,))
        self.bump_generation()

    # -- inline policies ---------------------------------------------------------------------
    def inline_policy(
        self, account_id: str, owner_kind: str, owner_name: str, policy_name: str
    ) -> tuple[str, str] | None:
        """(stored policy name, document); names compare ignoring case, as IAM's do."""
        for r in self.tx.all(
            "SELECT policy_name, document FROM iam_inline_policies"
            " WHERE account_id = ? AND owner_kind = ? AND owner_name = ?",
            (account_id, owner_kind, owner_name),
        ):
            if r["policy_name"].lower() == policy_name.lower():
                return r["policy_name"], r["document"]
        return None

    def inline_policy_names(self, account_id: str, owner_kind: str, owner_name: str) -> list[str]:
        rows = self.tx.all(
            "SELECT policy_name FROM iam_inline_policies"
            " WHERE account_id = ? AND owner_kind = ? AND owner_name = ? ORDER BY policy_name",
            (account_id, owner_kind, owner_name),
        )
        return [r["policy_name"] for r in rows]

    def put_inline_policy(
        self, account_id: str, owner_kind: str, owner_name: str, policy_name: str, document: str
    ) -> None:
        self.tx.execute(
            "INSERT INTO iam_inline_policies"
            " (account_id, owner_kind, owner_name, policy_name, document) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (account_id, owner_kind, owner_name, policy_name)"
            " DO UPDATE SET document = excluded.document",
            (account_id, owner_kind, owner_name, policy_name, document),
        )
        self.bump_generation()

    def delete_inline_policy(
        self, account_id: str, owner_kind: str, owner_name: str, policy_name: str
    ) -> None:
        self.tx.execute(
            "DELETE FROM iam_inline_policies"
            " WHERE account_id = ? AND owner_kind = ? AND owner_name = ? AND policy_name = ?",
            (account_id, owner_kind, owner_name, policy_name),
        )
        self.bump_generation()

    # -- managed policies and attachments ----------------------------------------------------
    def managed_policy(self, arn: str) -> ManagedPolicyRecord | None:
        row = self.tx.one(
            f"SELECT {_POLICY_COLUMNS} FROM iam_managed_policies WHERE arn = ?", (arn,)
        )
        return None if row is None else _managed_policy(row)

    def managed_policy_by_name(self, account_id: str, name: str) -> ManagedPolicyRecord | None:
        for r in self.tx.all(
            f"SELECT {_POLICY_COLUMNS} FROM iam_managed_policies WHERE account_id = ?",
            (account_id,),
        ):
            if r["name"].lower() == name.lower():
                return _managed_policy(r)
        return None

    def managed_policies(self, account_id: str) -> list[ManagedPolicyRecord]:
        rows = self.tx.all(
            f"SELECT {_POLICY_COLUMNS} FROM iam_managed_policies WHERE account_id = ?"
            " ORDER BY name",
            (account_id,),
        )
        return [_managed_policy(r) for r in rows]

    def insert_managed_policy(self, policy: ManagedPolicyRecord) -> None:
        self.tx.execute(
            f"INSERT INTO iam_managed_policies ({_POLICY_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                policy.arn,
                policy.account_id,
                policy.name,
                policy.policy_id,
                policy.path,
                policy.description,
                policy.document,
                policy.default_version,
                policy.created_ms,
                policy.updated_ms,
            ),
        )
        self.bump_generation()

    def delete_managed_policy(self, arn: str) -> None:
        self.tx.execute("DELETE FROM iam_managed_policies WHERE arn = ?", (arn,))
        self.bump_generation()

    def detach(self, account_id: str, owner_kind: str, owner_name: str, policy_arn: str) -> int:
        removed = self.tx.rowcount(
            "DELETE FROM iam_attachments"
            " WHERE account_id = ? AND owner_kind = ? AND owner_name = ? AND policy_arn = ?",
            (account_id, owner_kind, owner_name, policy_arn),
        )
        self.bump_generation()
        return removed

    def attached(self, account_id: str, owner_kind: str, owner_name: str) -> list[str]:
        rows = self.tx.all(
            "SELECT policy_arn FROM iam_attachments"
            " WHERE account_id = ? AND owner_kind = ? AND owner_name = ? ORDER BY policy_arn",
            (account_id, owner_kind, owner_name),
        )
        return [r["policy_arn"] for r in rows]

    def attachment_counts(self, account_id: str) -> dict[str, int]:
        """policy ARN -> how many users, groups and roles of the account it is attached to."""
        rows = self.tx.all(
            "SELECT policy_arn, COUNT(*) AS n FROM iam_attachments WHERE account_id = ?"
            " GROUP BY policy_arn",
            (account_id,),
        )
        return {r["policy_arn"]: int(r["n"]) for r in rows}

    def attachment_count(self, policy_arn: str) -> int:
        row = self.tx.one(
            "SELECT COUNT(*) AS n FROM iam_attachments WHERE policy_arn = ?", (policy_arn,)
        )
        return 0 if row is None else int(row["n"])


@dataclass(frozen=True, slots=True)
class GroupRecord:
    account_id: str
    name: str
    group_id: str
    path: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class ManagedPolicyRecord:
    """A customer managed policy (one version, the default)."""

    arn: str
    account_id: str
    name: str
    policy_id: str
    path: str
    description: str | None
    document: str
    default_version: str
    created_ms: int
    updated_ms: int


_GROUP_COLUMNS = "account_id, name, group_id, path, created_ms"
_POLICY_COLUMNS = (
    "arn, account_id, name, policy_id, path, description, document, default_version, created_ms,"
    " updated_ms"
)


def _group(row: Row) -> GroupRecord:
    return GroupRecord(
        row["account_id"], row["name"], row["group_id"], row["path"], row["created_ms"]
    )


def _managed_policy(row: Row) -> ManagedPolicyRecord:
    return ManagedPolicyRecord(
        row["arn"],
        row["account_id"],
        row["name"],
        row["policy_id"],
        row["path"],
        row["description"],
        row["document"],
        row["default_version"],
        row["created_ms"],
        row["updated_ms"],
    )


def notify_iam_change(tx: Tx) -> None:
    """On PostgreSQL, tell listening workers and nodes when this transaction commits."""
    if tx.dialect == "postgres":
        tx.execute(f"SELECT pg_notify('{IAM_CHANNEL}', '')")
