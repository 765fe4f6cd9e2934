"""Preferences as one Redis hash, on the memory store's client."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..outage import outages_raised
from ..redis import RedisStore, is_redis_outage
from .base import Change, Record, decode, encode

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

log = logging.getLogger(__name__)

HASH = "mathbot:preferences"


class RedisPreferences:
    """`Preferences` as the hash `mathbot:preferences` (field: key, value: JSON). An update
    WATCHes the hash and writes in MULTI/EXEC, retried if another process wrote meanwhile."""

    def __init__(self, store: RedisStore, *, name: str = HASH) -> None:
        self._store = store
        self.name = name

    async def start(self) -> None:
        log.info("preferences: Redis hash %s, shared by every process", self.name)

    async def close(self) -> None:
        pass  # the client is the store's

    async def read(self, keys: Sequence[str]) -> dict[str, Record]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        with outages_raised(is_redis_outage, "Redis"):
            values = await self._store.client.hmget(self.name, wanted)
        return {
            key: record
            for key, value in zip(wanted, values, strict=True)
            if value is not None and (record := decode(key, value)) is not None
        }

    async def update(self, key: str, change: Change) -> Record | None:
        async def apply(pipe: Pipeline) -> Record | None:
            old = await pipe.hget(self.name, key)
            new = change(decode(key, old) if old is not None else None)
            pipe.multi()
            if new is None:
                pipe.hdel(self.name, key)
            else:
                pipe.hset(self.name, key, encode(new))
            return new

        with outages_raised(is_redis_outage, "Redis"):
            new: Record | None = await self._store.client.transaction(
                apply, self.name, value_from_callable=True
            )
        return new

    async def delete(self, key: str) -> None:
        with outages_raised(is_redis_outage, "Redis"):
            await self._store.client.hdel(self.name, key)
