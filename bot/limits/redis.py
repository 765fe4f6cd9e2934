"""Usage ledger and rate limits in Redis, on the memory store's client, for every shard."""

from __future__ import annotations

import logging
from datetime import date

from ..config.controls import RateLimit
from ..memory.outage import outages_raised
from ..memory.redis import RedisStore, is_redis_outage
from .shared import cell_rate
from .usage import TokenUsage, UsageReport

log = logging.getLogger(__name__)

_COLUMNS = ("input_tokens", "output_tokens", "total_tokens", "requests", "turns")

# The generic cell rate algorithm on the server's clock: allowed when the user's theoretical
# arrival time, pushed back by one interval, stays within the tolerance of now; the key
# expires once the user is fully refilled. Returns nil when allowed, else the seconds to wait.
_CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local new = math.max(tat, now) + interval
if new - now > tolerance then
  return tostring(new - now - tolerance)
end
redis.call('SET', KEYS[1], tostring(new), 'PX', math.ceil((new - now) * 1000) + 1)
return false
"""


class RedisUsageLedger:
    """`UsageLedger` as Redis hashes (per key and day, per key in total), a counter per day
    and sorted sets for the top users, updated in one transaction per turn."""

    def __init__(self, store: RedisStore, *, prefix: str = "mathbot:usage") -> None:
        self._store = store
        self.prefix = prefix

    async def start(self) -> None:
        log.info("usage: ledger in Redis, shared by every process")

    async def close(self) -> None:
        pass  # the client is the store's

    def _day(self, day: date, key: str) -> str:
        return f"{self.prefix}:day:{day.isoformat()}:{key}"

    def _all(self, key: str) -> str:
        return f"{self.prefix}:all:{key}"

    def _top(self, day: date | None) -> str:
        return f"{self.prefix}:top:{day.isoformat() if day else 'all'}"

    async def record(self, key: str, usage: TokenUsage, *, day: date) -> None:
        with outages_raised(is_redis_outage, "Redis"):
            async with self._store.client.pipeline(transaction=True) as pipe:
                for column in _COLUMNS:
                    spent = getattr(usage, column)
                    pipe.hincrby(self._day(day, key), column, spent)
                    pipe.hincrby(self._all(key), column, spent)
                pipe.incrby(f"{self.prefix}:total:{day.isoformat()}", usage.total_tokens)
                pipe.zincrby(self._top(day), usage.total_tokens, key)
                pipe.zincrby(self._top(None), usage.total_tokens, key)
                await pipe.execute()

    async def usage(self, key: str, *, day: date) -> UsageReport:
        today, total = await self._hashes([self._day(day, key), self._all(key)])
        return UsageReport(today, total)

    async def day_total(self, day: date) -> int:
        with outages_raised(is_redis_outage, "Redis"):
            value = await self._store.client.get(f"{self.prefix}:total:{day.isoformat()}")
        return int(value or 0)

    async def top(self, day: date | None, limit: int = 10) -> list[tuple[str, TokenUsage]]:
        with outages_raised(is_redis_outage, "Redis"):
            found = await self._store.client.zrevrange(self._top(day), 0, limit - 1)
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in found]
        hashes = [self._day(day, k) if day else self._all(k) for k in keys]
        return list(zip(keys, await self._hashes(hashes), strict=True))

    async def _hashes(self, names: list[str]) -> list[TokenUsage]:
        with outages_raised(is_redis_outage, "Redis"):
            async with self._store.client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hmget(name, list(_COLUMNS))
                rows = await pipe.execute()
        return [TokenUsage(*(int(v or 0) for v in row)) for row in rows]


class RedisRateLimiter:
    """`SharedRateLimiter` as one expiring key per user holding its theoretical arrival
    time, checked and updated by one Lua script (atomic on the server)."""

    def __init__(self, store: RedisStore, rate: RateLimit, *, prefix: str = "mathbot:rate") -> None:
        self._store = store
        self.prefix = prefix
        self._interval, self._tolerance = cell_rate(rate)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def check(self, user_id: int) -> float | None:
        client = self._store.client
        args = [repr(self._interval), repr(self._tolerance)]
        with outages_raised(is_redis_outage, "Redis"):
            wait = await client.eval(_CHECK, 1, f"{self.prefix}:{user_id}", *args)
        return None if wait is None else max(float(wait), 0.001)
