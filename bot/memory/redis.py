"""Redis memory: the SDK's `RedisSession` over one shared client, with a cross-process turn
lock that expires unless renewed and fences the turn's commit. redis is imported only when
this store is opened."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from agents import TResponseInputItem
from agents.memory import Session

from ..config.settings import REDIS_SCHEMES
from . import redis_keys
from .outage import GuardedSession, TurnLockTimeout, outages_raised, require_extra, where
from .store import TurnLease

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.lock import Lock

log = logging.getLogger(__name__)


def _import_redis() -> None:
    import agents.extensions.memory.redis_session  # noqa: F401
    import redis.asyncio  # noqa: F401


def is_redis_outage(exc: BaseException) -> bool:
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
        require_extra("redis", "Redis", _import_redis)
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
            with outages_raised(is_redis_outage, "Redis"):
                await client.ping()
        except BaseException:
            await client.aclose()
            raise
        self._client = client
        log.info("memory: Redis at %s", where(self.url))

    @contextlib.asynccontextmanager
    async def session(self, session_id: str) -> AsyncIterator[Session]:
        from agents.extensions.memory.redis_session import RedisSession

        stored = RedisSession(session_id, redis_client=self.client, key_prefix=self.key_prefix)
        try:
            yield GuardedSession(stored, is_redis_outage, "Redis")
        finally:
            await stored.close()  # leaves the shared client open; drops broken connections

    @contextlib.asynccontextmanager
    async def turn_lock(self, session_id: str) -> AsyncIterator[TurnLease]:
        """The session's Redis lock, renewed while the turn runs, released after it; its
        random token is the lease's, checked at commit."""
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
            with outages_raised(is_redis_outage, "Redis"):
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
            yield TurnLease(session_id, token)
        finally:
            keeper.cancel()
            await asyncio.wait([keeper])
            try:
                await lock.release()
            except LockError:
                log.warning("the turn lock of %s had expired before the turn ended", session_id)
            except (RedisError, OSError) as exc:  # it expires by itself; the outcome stands
                log.warning("could not release the turn lock of %s: %r", session_id, exc)

    async def commit_turn(
        self, lease: TurnLease, items: list[TResponseInputItem], *, replaces: str | None
    ) -> None:
        """One MULTI/EXEC that checks the lock's token and writes the turn (`redis_keys`)."""
        lock_name = self.lock_name(lease.session_id)
        with outages_raised(is_redis_outage, "Redis"):
            await redis_keys.write_turn(
                self.client, self.key_prefix, lock_name, lease, items, replaces
            )

    async def forget(self, lease: TurnLease) -> None:
        """Nothing is kept beside the session's items: the lock's key goes with its release."""

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
