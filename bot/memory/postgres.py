"""PostgreSQL memory: the SDK's `SQLAlchemySession` over one shared engine, with a
cross-process turn lock (an advisory lock) whose commits are fenced. sqlalchemy and asyncpg
are imported only when this store is opened, so the default install does without them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from agents import TResponseInputItem
from agents.memory import Session

from ..config.settings import POSTGRES_SCHEMES
from . import postgres_fence, postgres_rows
from .outage import GuardedSession, TurnLockTimeout, outages_raised, require_extra, where
from .store import TurnLease

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


def turn_lock_key(session_id: str) -> int:
    """The PostgreSQL advisory-lock key of a session: a signed 64-bit BLAKE2b hash of its id,
    the same in every process and on every run (unlike Python's salted `hash()`)."""
    return _lock_key(b"mathbot:turn", session_id)


def _lock_key(purpose: bytes, value: str) -> int:
    digest = hashlib.blake2b(value.encode("utf-8"), digest_size=8, person=purpose).digest()
    return int.from_bytes(digest, "big", signed=True)


def _import_postgres() -> None:
    import agents.extensions.memory.sqlalchemy_session  # noqa: F401
    import asyncpg  # noqa: F401
    import sqlalchemy.ext.asyncio  # noqa: F401


def is_postgres_outage(exc: BaseException) -> bool:
    """True for a failure to reach PostgreSQL, or a connection lost under a statement."""
    import asyncpg
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        sa_exc.OperationalError  # includes connection refused while connecting
        | sa_exc.InterfaceError  # connection closed under a statement
        | sa_exc.TimeoutError  # no pooled connection free in time
        | sa_exc.DisconnectionError
        | asyncpg.PostgresConnectionError
        | asyncpg.CannotConnectNowError  # the server is starting or shutting down
        | asyncpg.InterfaceError
        | OSError,  # refused, reset, unreachable, connect timeout (TimeoutError)
    )


class PostgresStore:
    """The SDK's `SQLAlchemySession` on PostgreSQL (asyncpg), shared by several processes.

    `start()` makes the process's one `AsyncEngine` (pre-ping on checkout, so connections
    killed by a server restart are replaced) and creates the SDK's tables if missing;
    `close()` disposes of it. Each turn holds a session-level advisory lock
    (`pg_advisory_lock(turn_lock_key(session_id))`) on a pooled connection of its own, and
    its commit is fenced by a token in `fence_table` (`postgres_fence`).
    """

    def __init__(
        self,
        url: str,
        *,
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        fence_table: str = "mathbot_turn_fence",
        max_concurrent_turns: int = 10,
        lock_wait: float = 300.0,
        connect_timeout: float = 10.0,
        application_name: str = "mathbot",
    ) -> None:
        require_extra("postgres", "PostgreSQL", _import_postgres)
        scheme, _, rest = url.strip().partition("://")
        if scheme.lower() not in POSTGRES_SCHEMES:
            raise ValueError(f"not a PostgreSQL URL: a {scheme}:// URL")
        self.url = f"postgresql+asyncpg://{rest}"
        self.sessions_table = sessions_table
        self.messages_table = messages_table
        self.fence_table = fence_table
        self.lock_wait = lock_wait
        self._connect_timeout = connect_timeout
        self._application_name = application_name
        # Every turn uses at most one pooled connection for its lock and one at a time for
        # its reads and writes; bounding the lock holders to half the pool means a turn
        # never waits for a connection that only a turn waiting on it could free.
        self._max_turns = max_concurrent_turns
        self._lock_slots = asyncio.Semaphore(max_concurrent_turns)
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("PostgresStore.start() was not called")
        return self._engine

    async def start(self) -> None:
        """Create the engine and, once, the tables (serialized across processes)."""
        if self._engine is not None:
            return
        from sqlalchemy.ext.asyncio import create_async_engine

        # The SDK orders a session's items by created_at, a server-side CURRENT_TIMESTAMP
        # stored without a zone: in UTC no clock change can put a later turn first.
        server_settings = {"application_name": self._application_name, "timezone": "UTC"}
        self._engine = create_async_engine(
            self.url,
            pool_pre_ping=True,
            pool_size=self._max_turns,
            max_overflow=self._max_turns,
            pool_timeout=30,
            connect_args={"timeout": self._connect_timeout, "server_settings": server_settings},
        )
        tables = f"{self.sessions_table}/{self.messages_table}"
        try:
            async with self._advisory_lock(_lock_key(b"mathbot:tables", tables), "tables"):
                with outages_raised(is_postgres_outage, "PostgreSQL"):
                    await self._sdk_session("mathbot:startup", create_tables=True).get_items(1)
                    async with self.engine.begin() as conn:
                        await postgres_fence.create_table(conn, self.fence_table)
        except BaseException:
            engine, self._engine = self._engine, None
            await engine.dispose()
            raise
        log.info("memory: PostgreSQL at %s", where(self.url))

    @contextlib.asynccontextmanager
    async def session(self, session_id: str) -> AsyncIterator[Session]:
        yield GuardedSession(self._sdk_session(session_id), is_postgres_outage, "PostgreSQL")

    @contextlib.asynccontextmanager
    async def turn_lock(self, session_id: str) -> AsyncIterator[TurnLease]:
        """The session's advisory lock, held by this process for the whole turn, and a
        fresh fencing token for its commit."""
        async with self._advisory_lock(turn_lock_key(session_id), session_id) as conn:
            with outages_raised(is_postgres_outage, "PostgreSQL"):
                lease = await postgres_fence.take(conn, self.fence_table, session_id)
            yield lease

    async def commit_turn(
        self, lease: TurnLease, items: list[TResponseInputItem], *, replaces: str | None
    ) -> None:
        """One transaction: check the fence, then write the turn (`postgres_rows`)."""
        tables = (self.sessions_table, self.messages_table)
        with outages_raised(is_postgres_outage, "PostgreSQL"):
            async with self.engine.begin() as conn:
                await postgres_fence.check(conn, self.fence_table, lease)
                await postgres_rows.write_turn(conn, tables, lease.session_id, items, replaces)

    async def forget(self, lease: TurnLease) -> None:
        """Delete the session's fencing token: a turn still holding an older lease then finds
        no token at its commit and writes nothing (`postgres_fence.check`)."""
        with outages_raised(is_postgres_outage, "PostgreSQL"):
            async with self.engine.begin() as conn:
                await postgres_fence.drop(conn, self.fence_table, lease.session_id)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    def _sdk_session(self, session_id: str, *, create_tables: bool = False) -> Session:
        from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

        return SQLAlchemySession(
            session_id,
            engine=self.engine,
            create_tables=create_tables,
            sessions_table=self.sessions_table,
            messages_table=self.messages_table,
        )

    @contextlib.asynccontextmanager
    async def _advisory_lock(self, key: int, name: str) -> AsyncIterator[AsyncConnection]:
        """`pg_advisory_lock(key)` on a dedicated autocommit connection, for the block.

        A connection that may still hold the lock (a failed or cancelled lock or unlock)
        is closed rather than returned to the pool: the server drops a session's
        advisory locks when its connection ends.
        """
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        async with self._lock_slots:
            with outages_raised(is_postgres_outage, "PostgreSQL"):
                conn = await self.engine.connect()
            clean = False
            try:
                with outages_raised(is_postgres_outage, "PostgreSQL"):
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    try:
                        async with asyncio.timeout(self.lock_wait) as deadline:
                            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                    except TimeoutError:
                        if deadline.expired():
                            raise TurnLockTimeout(
                                f"waited {self.lock_wait:g} s for the turn lock of {name}"
                            ) from None
                        raise
                try:
                    yield conn
                finally:
                    try:
                        unlocked = await conn.execute(
                            text("SELECT pg_advisory_unlock(:k)"), {"k": key}
                        )
                        clean = bool(unlocked.scalar())
                    except (SQLAlchemyError, OSError) as exc:  # the turn's outcome stands
                        log.warning("could not release the turn lock of %s: %r", name, exc)
            finally:
                if not clean:
                    try:
                        await conn.invalidate()
                    except (SQLAlchemyError, OSError) as exc:
                        log.warning("could not drop a lock connection: %r", exc)
                await conn.close()
