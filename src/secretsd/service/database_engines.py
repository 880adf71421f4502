"""The database side of the built-in rotators: log in, change a password, create the other user
of an alternating pair. PostgreSQL through psycopg (async), MySQL and MariaDB through PyMySQL
(blocking, so in a worker thread; it never touches secretsd's own database)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any, Protocol

import psycopg
import pymysql
from psycopg import sql

CONNECT_TIMEOUT_SECONDS = 5
ENGINES = ("postgresql", "mysql")

Creds = Mapping[str, Any]


class DatabaseError(Exception):
    """The database refused or could not be reached; the message is the server's (it never
    echoes a password)."""


class Engine(Protocol):
    # The `engine` values of AWS's secret JSON this engine accepts (the first is the default).
    engines: tuple[str, ...]

    async def can_login(self, creds: Creds) -> bool: ...

    async def check_login(self, creds: Creds) -> None: ...

    async def set_own_password(self, login: Creds, password: str) -> None: ...

    async def set_clone_password(
        self, admin: Creds, original: str, user: str, password: str
    ) -> None:
        """As `admin`: make sure `user` exists (with `original`'s privileges), set its
        password."""
        ...


# -- PostgreSQL ---------------------------------------------------------------------------------
class PostgresEngine:
    engines: tuple[str, ...] = ("postgres", "postgresql")

    async def _connect(self, creds: Creds) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(
                host=str(creds["host"]),
                port=int(creds.get("port") or 5432),
                dbname=str(creds.get("dbname") or "postgres"),
                user=str(creds["username"]),
                password=str(creds["password"]),
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                autocommit=True,
            )
        except psycopg.Error as exc:
            raise DatabaseError(_pg_message(exc)) from None

    async def can_login(self, creds: Creds) -> bool:
        try:
            await self.check_login(creds)
        except DatabaseError:
            return False
        return True

    async def check_login(self, creds: Creds) -> None:
        async with await self._connect(creds) as conn:
            await _pg(conn, "SELECT 1")

    async def set_own_password(self, login: Creds, password: str) -> None:
        async with await self._connect(login) as conn:
            await _pg(
                conn,
                sql.SQL("ALTER USER {} WITH PASSWORD {}").format(
                    sql.Identifier(str(login["username"])), sql.Literal(password)
                ),
            )

    async def set_clone_password(
        self, admin: Creds, original: str, user: str, password: str
    ) -> None:
        async with await self._connect(admin) as conn:
            found = await _pg(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
            if not found:
                await _pg(conn, sql.SQL("CREATE ROLE {} WITH LOGIN").format(sql.Identifier(user)))
                groups = await _pg(
                    conn,
                    "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
                    " JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
                    (original,),
                )
                for (group,) in groups:
                    await _pg(
                        conn,
                        sql.SQL("GRANT {} TO {}").format(
                            sql.Identifier(group), sql.Identifier(user)
                        ),
                    )
            await _pg(
                conn,
                sql.SQL("ALTER USER {} WITH PASSWORD {}").format(
                    sql.Identifier(user), sql.Literal(password)
                ),
            )


async def _pg(
    conn: psycopg.AsyncConnection[Any], query: Any, params: tuple[Any, ...] | None = None
) -> list[tuple[Any, ...]]:
    try:
        cur = await conn.execute(query, params)
        return list(await cur.fetchall()) if cur.description else []
    except psycopg.Error as exc:
        raise DatabaseError(_pg_message(exc)) from None


def _pg_message(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        return str(primary)
    # Connection failures carry no diagnostics; their text names host and user, not passwords.
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# -- MySQL and MariaDB ----------------------------------------------------------------------------
# A GRANT line of SHOW GRANTS names its grantee; the clone gets the same line for itself.
_GRANTEE = re.compile(r" TO (`[^`]*`|'[^']*')@(`[^`]*`|'[^']*')")
_IDENTIFIED = re.compile(r" IDENTIFIED (BY|VIA|WITH) .*$")


class MysqlEngine:
    engines: tuple[str, ...] = ("mysql", "mariadb")

    @staticmethod
    def _connect(creds: Creds) -> Any:
        try:
            return pymysql.connect(
                host=str(creds["host"]),
                port=int(creds.get("port") or 3306),
                user=str(creds["username"]),
                password=str(creds["password"]),
                database=str(creds["dbname"]) if creds.get("dbname") else None,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                autocommit=True,
            )
        except pymysql.MySQLError as exc:
            raise DatabaseError(_mysql_message(exc)) from None

    async def can_login(self, creds: Creds) -> bool:
        try:
            await self.check_login(creds)
        except DatabaseError:
            return False
        return True

    async def check_login(self, creds: Creds) -> None:
        await asyncio.to_thread(self._run, creds, [("SELECT 1", ())])

    async def set_own_password(self, login: Creds, password: str) -> None:
        await asyncio.to_thread(self._own_password, login, password)

    def _own_password(self, login: Creds, password: str) -> None:
        conn = self._connect(login)
        try:
            with conn.cursor() as cur:
                try:
                    # MySQL 8 (its PASSWORD() is gone) lets a user ALTER itself.
                    cur.execute("ALTER USER CURRENT_USER() IDENTIFIED BY %s", (password,))
                except pymysql.MySQLError:
                    # MariaDB asks CREATE USER for that, but not for SET PASSWORD.
                    cur.execute("SET PASSWORD = PASSWORD(%s)", (password,))
        except pymysql.MySQLError as exc:
            raise DatabaseError(_mysql_message(exc)) from None
        finally:
            conn.close()

    async def set_clone_password(
        self, admin: Creds, original: str, user: str, password: str
    ) -> None:
        await asyncio.to_thread(self._clone, admin, original, user, password)

    def _run(self, creds: Creds, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        conn = self._connect(creds)
        try:
            with conn.cursor() as cur:
                for statement, params in statements:
                    cur.execute(statement, params)
        except pymysql.MySQLError as exc:
            raise DatabaseError(_mysql_message(exc)) from None
        finally:
            conn.close()

    def _clone(self, admin: Creds, original: str, user: str, password: str) -> None:
        conn = self._connect(admin)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM mysql.user WHERE User = %s", (user,))
                if cur.fetchone() is None:
                    cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
                    cur.execute("SHOW GRANTS FOR %s@'%%'", (original,))
                    grants = [row[0] for row in cur.fetchall()]
                    clone = conn.escape(user) + "@'%'"
                    for grant in grants:
                        if not grant.startswith("GRANT ") or " PROXY ON " in grant:
                            continue
                        cur.execute(_IDENTIFIED.sub("", _GRANTEE.sub(f" TO {clone}", grant)))
                cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password))
        except pymysql.MySQLError as exc:
            raise DatabaseError(_mysql_message(exc)) from None
        finally:
            conn.close()


def _mysql_message(exc: pymysql.MySQLError) -> str:
    args: tuple[Any, ...] = tuple(exc.args)
    if len(args) >= 2 and isinstance(args[1], str):
        return args[1]
    return type(exc).__name__
