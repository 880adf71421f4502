"""Queries over the console's tables (migration 0010): IAM login profiles and console sessions."""

from __future__ import annotations

from dataclasses import dataclass

from secretsd.store.database import Row, Tx


@dataclass(frozen=True, slots=True)
class LoginProfileRecord:
    account_id: str
    user_name: str
    password_hash: str
    reset_required: bool
    created_ms: int


@dataclass(frozen=True, slots=True)
class ConsoleSessionRecord:
    token_digest: bytes
    account_id: str
    kind: str  # "password" | "key"
    user_name: str | None
    access_key_id: str | None
    csrf_token: str
    created_ms: int
    last_seen_ms: int
    region: str


_PROFILE_COLUMNS = "account_id, user_name, password_hash, reset_required, created_ms"
_SESSION_COLUMNS = (
    "token_digest, account_id, kind, user_name, access_key_id, csrf_token, created_ms,"
    " last_seen_ms, region"
)


def _profile(row: Row) -> LoginProfileRecord:
    return LoginProfileRecord(
        row["account_id"],
        row["user_name"],
        row["password_hash"],
        bool(row["reset_required"]),
        int(row["created_ms"]),
    )


def _session(row: Row) -> ConsoleSessionRecord:
    return ConsoleSessionRecord(
        bytes(row["token_digest"]),
        row["account_id"],
        row["kind"],
        row["user_name"],
        row["access_key_id"],
        row["csrf_token"],
        int(row["created_ms"]),
        int(row["last_seen_ms"]),
        row["region"],
    )


class ConsoleRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    # -- login profiles ----------------------------------------------------------------------
    def login_profile(self, account_id: str, user_name: str) -> LoginProfileRecord | None:
        """`user_name` as stored (the caller resolves IAM's case-insensitive names first)."""
        row = self.tx.one(
            f"SELECT {_PROFILE_COLUMNS} FROM iam_login_profiles"
            " WHERE account_id = ? AND user_name = ?",
            (account_id, user_name),
        )
        return None if row is None else _profile(row)

    def insert_login_profile(self, profile: LoginProfileRecord) -> None:
        self.tx.execute(
            f"INSERT INTO iam_login_profiles ({_PROFILE_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (
                profile.account_id,
                profile.user_name,
                profile.password_hash,
                int(profile.reset_required),
                profile.created_ms,
            ),
        )

    def update_login_profile(
        self, account_id: str, user_name: str, password_hash: str | None, reset: bool | None
    ) -> None:
        if password_hash is not None:
            self.tx.execute(
                "UPDATE iam_login_profiles SET password_hash = ?"
                " WHERE account_id = ? AND user_name = ?",
                (password_hash, account_id, user_name),
            )
        if reset is not None:
            self.tx.execute(
                "UPDATE iam_login_profiles SET reset_required = ?"
                " WHERE account_id = ? AND user_name = ?",
                (int(reset), account_id, user_name),
            )

    def delete_login_profile(self, account_id: str, user_name: str) -> None:
        self.tx.execute(
            "DELETE FROM iam_login_profiles WHERE account_id = ? AND user_name = ?",
            (account_id, user_name),
        )
        # A deleted password ends the user's console sessions at once.
        self.tx.execute(
            "DELETE FROM console_sessions WHERE account_id = ? AND user_name = ?",
            (account_id, user_name),
        )

    # -- sessions ----------------------------------------------------------------------------
    def session(self, token_digest: bytes) -> ConsoleSessionRecord | None:
        row = self.tx.one(
            f"SELECT {_SESSION_COLUMNS} FROM console_sessions WHERE token_digest = ?",
            (token_digest,),
        )
        return None if row is None else _session(row)

    def insert_session(self, session: ConsoleSessionRecord) -> None:
        self.tx.execute(
            f"INSERT INTO console_sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session.token_digest,
                session.account_id,
                session.kind,
                session.user_name,
                session.access_key_id,
                session.csrf_token,
                session.created_ms,
                session.last_seen_ms,
                session.region,
            ),
        )

    def touch_session(self, token_digest: bytes, now_ms: int) -> None:
        self.tx.execute(
            "UPDATE console_sessions SET last_seen_ms = ? WHERE token_digest = ?",
            (now_ms, token_digest),
        )

    def delete_session(self, token_digest: bytes) -> None:
        self.tx.execute("DELETE FROM console_sessions WHERE token_digest = ?", (token_digest,))

    def delete_sessions_older_than(self, created_before_ms: int) -> None:
        self.tx.execute("DELETE FROM console_sessions WHERE created_ms < ?", (created_before_ms,))
