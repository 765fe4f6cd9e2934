"""Shared conversation stores: PostgreSQL and Redis beside the default SQLite file.

`open_store(SESSION_DB)` picks the store from the setting:

- a file path: `SQLiteStore` (bot.memory.session), for one bot process;
- `postgresql+asyncpg://…` (or `postgresql://…` / `postgres://…`, which mean the same here):
  `PostgresStore`, the SDK's `SQLAlchemySession` over one shared `AsyncEngine`;
- `redis://…` or `rediss://…`: `RedisStore`, the SDK's `RedisSession` over one shared
  `redis.asyncio` client.

The two shared stores may be used by several bot processes at once. Each turn of a session
runs under a cross-process lock (`turn_lock`): a PostgreSQL advisory lock, or a Redis lock
that expires, so turns stay in order and whole across processes. Connection failures
surface as `StoreUnavailable`, and both stores reconnect by themselves once the server is
back. sqlalchemy/asyncpg and redis are imported only when their store is asked for, so the
default install does without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from agents import TResponseInputItem
from agents.memory import Session

from .session import SessionStore, SQLiteStore

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.lock import Lock
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "GuardedSession",
    "PostgresStore",
    "RedisStore",
    "StoreUnavailable",
    "TurnLockTimeout",
    "open_store",
    "turn_lock_key",
]

log = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql+asyncpg", "postgresql", "postgres")
REDIS_SCHEMES = ("redis", "rediss")


class StoreUnavailable(Exception):
    """The shared memory store can't be reached right now (down, restarting, unreachable).

    Nothing of the turn was stored; asking again later is safe. The original error is the
    `__cause__`; the message itself holds no URL or secret.
    """


class TurnLockTimeout(StoreUnavailable):
    """Another process kept the session's turn for longer than this store waits for it."""


def open_store(session_db: str) -> SessionStore:
    """The store `SESSION_DB` names: a file path (SQLite), a PostgreSQL URL or a Redis URL.

    Raises `ValueError` with a one-line message for an unknown URL scheme, or when the
    store's packages are not installed (it names the extra to install).
    """
    value = session_db.strip()
    scheme, sep, _ = value.partition("://")
    if not sep:
        return SQLiteStore(value)
    scheme = scheme.lower()
    if scheme in POSTGRES_SCHEMES:
        return PostgresStore(value)
    if scheme in REDIS_SCHEMES:
        return RedisStore(value)
    raise ValueError(
        "SESSION_DB must be a file path, a postgresql+asyncpg:// URL or a redis:// "
        f"(rediss://) URL, not a {scheme}:// URL"
    )


def turn_lock_key(session_id: str) -> int:
    """The PostgreSQL advisory-lock key of a session: a signed 64-bit BLAKE2b hash of its id,
    the same in every process and on every run (unlike Python's salted `hash()`)."""
    return _lock_key(b"mathbot:turn", session_id)


def _lock_key(purpose: bytes, value: str) -> int:
    digest = hashlib.blake2b(value.encode("utf-8"), digest_size=8, person=purpose).digest()
    return int.from_bytes(digest, "big", signed=True)


def _require(extra: str, what: str, imports: Callable[[], object]) -> None:
    try:
        imports()
    except ImportError as exc:
        missing = exc.name or getattr(exc.__cause__, "name", None)
        raise ValueError(
            f"SESSION_DB is a {what} URL, which needs the {extra} extra: "
            f'pip install "mathbot[{extra}]"' + (f" (missing module: {missing})" if missing else "")
        ) from exc


def _where(url: str) -> str:
    """host:port/db of a URL, for logs: never the user name or the password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 'default'}{parts.path}"


class GuardedSession:
    """An SDK session whose connection failures are raised as `StoreUnavailable`.

    It forwards the four `Session` methods unchanged otherwise; `sdk_session` is the SDK's
    own object (`SQLAlchemySession` or `RedisSession`).
    """

    def __init__(
        self, sdk_session: Session, is_outage: Callable[[BaseException], bool], what: str
    ) -> None:
        self.sdk_session = sdk_session
        self.session_id = sdk_session.session_id
        self.session_settings = sdk_session.session_settings
        self._is_outage = is_outage
        self._what = what

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        with _outages_raised(self._is_outage, self._what):
            return await self.sdk_session.get_items(limit)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        with _outages_raised(self._is_outage, self._what):
            await self.sdk_session.add_items(items)

    async def pop_item(self) -> TResponseInputItem | None:
        with _outages_raised(self._is_outage, self._what):
            return await self.sdk_session.pop_item()

    async def clear_session(self) -> None:
        with _outages_raised(self._is_outage, self._what):
            await self.sdk_session.clear_session()


@contextlib.contextmanager
def _outages_raised(is_outage: Callable[[BaseException], bool], what: str) -> Iterator[None]:
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as exc:
        if is_outage(exc):
            raise StoreUnavailable(f"{what} is unavailable ({type(exc).__name__})") from exc
        raise


# --------------------------------------------------------------------------- PostgreSQL


def _import_postgres() -> None:
    import agents.extensions.memory.sqlalchemy_session  # noqa: F401
    import asyncpg  # noqa: F401
    import sqlalchemy.ext.asyncio  # noqa: F401


def _is_postgres_outage(exc: BaseException) -> bool:
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
    (`pg_advisory_lock(turn_lock_key(session_id))`) on a pooled connection of its own.
    """

    def __init__(
        self,
        url: str,
        *,
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        max_concurrent_turns: int = 10,
        lock_wait: float = 300.0,
        connect_timeout: float = 10.0,
        application_name: str = "mathbot",
    ) -> None:
        _require("postgres", "PostgreSQL", _import_postgres)
        scheme, _, rest = url.strip().partition("://")
        if scheme.lower() not in POSTGRES_SCHEMES:
            raise ValueError(f"not a PostgreSQL URL: a {scheme}:// URL")
        self.url = f"postgresql+asyncpg://{rest}"
        self.sessions_table = sessions_table
        self.messages_table = messages_table
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
                with _outages_raised(_is_postgres_outage, "PostgreSQL"):
                    await self._sdk_session("mathbot:startup", create_tables=True).get_items(1)
        except BaseException:
            engine, self._engine = self._engine, None
            await engine.dispose()
            raise
        log.info("memory: PostgreSQL at %s", _where(self.url))

    @contextlib.asynccontextmanager
    async def session(self, session_id: str) -> AsyncIterator[Session]:
        yield GuardedSession(self._sdk_session(session_id), _is_postgres_outage, "PostgreSQL")

    def turn_lock(self, session_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        """The session's advisory lock, held by this process for the whole turn."""
        return self._advisory_lock(turn_lock_key(session_id), session_id)

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
    async def _advisory_lock(self, key: int, name: str) -> AsyncIterator[None]:
        """`pg_advisory_lock(key)` on a dedicated autocommit connection, for the block.

        A connection that may still hold the lock (a failed or cancelled lock or unlock)
        is closed rather than returned to the pool: the server drops a session's
        advisory locks when its connection ends.
        """
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        async with self._lock_slots:
            with _outages_raised(_is_postgres_outage, "PostgreSQL"):
                conn = await self.engine.connect()
            clean = False
            try:
                with _outages_raised(_is_postgres_outage, "PostgreSQL"):
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
                    yield
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


# --------------------------------------------------------------------------- Redis


def _import_redis() -> None:
    import agents.extensions.memory.redis_session  # noqa: F401
    import redis.asyncio  # noqa: F401


def _is_redis_outage(exc: BaseException) -> bool:
    """True for a failure to reach Redis (refused, reset, timed out, still loading)."""
    from redis import exceptions as r_exc

    lost = r_exc.ConnectionError | r_exc.TimeoutError | OSError
    # A connection lost under WATCH is raised as a WatchError: the SDK's transaction was
    # not applied.
    if isinstance(exc, r_exc.WatchError) and isinstance(exc.__context__, lost):
        return True
    return isinstance(exc, lost)


class RedisStore:
    """The SDK's `RedisSession` over one `redis.asyncio` client per process.

    The client is made in `start()` and closed in `close()` (the SDK never closes a client
    it was handed). Each turn holds a `redis.asyncio.lock.Lock` that expires after
    `lock_timeout` seconds unless renewed: a background task renews it while the turn
    runs, so a killed process frees the session within `lock_timeout`.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "mathbot:session",
        lock_prefix: str = "mathbot:turn-lock",
        lock_timeout: float = 120.0,
        lock_wait: float = 300.0,
        client_name: str = "mathbot",
    ) -> None:
        _require("redis", "Redis", _import_redis)
        scheme = url.strip().partition("://")[0].lower()
        if scheme not in REDIS_SCHEMES:
            raise ValueError(f"not a Redis URL: a {scheme}:// URL")
        if key_prefix == lock_prefix:
            raise ValueError("key_prefix and lock_prefix must differ")
        self.url = url.strip()
        self.key_prefix = key_prefix
        self.lock_prefix = lock_prefix
        self.lock_timeout = lock_timeout
        self.lock_wait = lock_wait
        self._client_name = client_name
        self._client: Redis | None = None

    @property
    def client(self) -> Redis:
        if self._client is None:
            raise RuntimeError("RedisStore.start() was not called")
        return self._client

    def lock_name(self, session_id: str) -> str:
        return f"{self.lock_prefix}:{session_id}"

    async def start(self) -> None:
        """Create the client and check that the server answers."""
        if self._client is not None:
            return
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialWithJitterBackoff

        client = redis.from_url(
            self.url,
            socket_connect_timeout=5,
            socket_timeout=10,
            socket_keepalive=True,
            health_check_interval=30,
            client_name=self._client_name,
            # from_url retries nothing by default: the first command on a connection that a
            # server restart closed would fail. redis-py never retries a WATCHed transaction.
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3),
        )
        try:
            with _outages_raised(_is_redis_outage, "Redis"):
                await client.ping()
        except BaseException:
            await client.aclose()
            raise
        self._client = client
        log.info("memory: Redis at %s", _where(self.url))

    @contextlib.asynccontextmanager
    async def session(self, session_id: str) -> AsyncIterator[Session]:
        from agents.extensions.memory.redis_session import RedisSession

        stored = RedisSession(session_id, redis_client=self.client, key_prefix=self.key_prefix)
        try:
            yield GuardedSession(stored, _is_redis_outage, "Redis")
        finally:
            await stored.close()  # leaves the shared client open; drops broken connections

    @contextlib.asynccontextmanager
    async def turn_lock(self, session_id: str) -> AsyncIterator[None]:
        """The session's Redis lock, renewed while the turn runs, released after it."""
        from redis.exceptions import LockError, RedisError

        lock = self.client.lock(
            self.lock_name(session_id),
            timeout=self.lock_timeout,
            sleep=0.05,
            blocking=True,
            blocking_timeout=self.lock_wait,
            thread_local=False,
        )
        token = uuid.uuid4().hex
        try:
            with _outages_raised(_is_redis_outage, "Redis"):
                acquired = await lock.acquire(token=token)
        except asyncio.CancelledError:
            # The SET may have reached the server before the cancellation.
            with contextlib.suppress(RedisError, OSError):  # LockError: it was not ours
                await lock.do_release(token.encode())
            raise
        if not acquired:
            raise TurnLockTimeout(f"waited {self.lock_wait:g} s for the turn lock of {session_id}")
        keeper = asyncio.create_task(self._keep(lock, session_id), name="mathbot-turn-lock")
        try:
            yield
        finally:
            keeper.cancel()
            await asyncio.wait([keeper])
            try:
                await lock.release()
            except LockError:
                log.warning("the turn lock of %s had expired before the turn ended", session_id)
            except (RedisError, OSError) as exc:  # it expires by itself; the outcome stands
                log.warning("could not release the turn lock of %s: %r", session_id, exc)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _keep(self, lock: Lock, session_id: str) -> None:
        """Push the lock's expiry back every third of `lock_timeout` while the turn runs."""
        from redis.exceptions import LockError, RedisError

        while True:
            await asyncio.sleep(self.lock_timeout / 3)
            try:
                await lock.reacquire()
            except LockError:
                log.error(
                    "lost the turn lock of %s (expired, or the server restarted): another "
                    "process may now run a turn of it at the same time",
                    session_id,
                )
                return
            except (RedisError, OSError) as exc:
                log.warning("could not renew the turn lock of %s: %r", session_id, exc)
