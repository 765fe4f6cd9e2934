"""The SDK's `RedisSession` keys (agents 0.24: a hash `{prefix}:{id}` with session_id,
created_at and updated_at, a list `{prefix}:{id}:messages` of compact JSON items), and a whole
turn written into them in one MULTI/EXEC, fenced by the turn lock's key."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from agents import TResponseInputItem

from .last_turn import last_turn_start, stored_item
from .outage import LostTurnLock, StoreUnavailable
from .store import TurnLease

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import Pipeline

_FIRST_WINDOW = 8
# WATCH also trips on the lock's own renewal (PEXPIRE); a few tries always get through.
_ATTEMPTS = 5


def session_key(key_prefix: str, session_id: str) -> str:
    return f"{key_prefix}:{session_id}"


def messages_key(key_prefix: str, session_id: str) -> str:
    return f"{session_key(key_prefix, session_id)}:messages"


async def write_turn(
    client: Redis,
    key_prefix: str,
    lock_name: str,
    lease: TurnLease,
    items: list[TResponseInputItem],
    replaces: str | None,
) -> None:
    """Append `items` to the session; with `replaces`, first trim the session's last turn,
    which must have asked `replaces` (else `NotLatestTurn`).

    The lock key and the session's keys are WATCHed while the lock's value is checked
    against the lease's token and the last turn is found, and the writes run in one
    MULTI/EXEC: if any of them changed meanwhile, nothing is applied and it is read again.
    A lock that is gone or holds another token raises `LostTurnLock`.
    """
    from redis.exceptions import WatchError

    hash_key = session_key(key_prefix, lease.session_id)
    list_key = messages_key(key_prefix, lease.session_id)
    encoded = [json.dumps(item, separators=(",", ":")) for item in items]
    async with client.pipeline(transaction=True) as pipe:
        for _ in range(_ATTEMPTS):
            try:
                await pipe.watch(lock_name, hash_key, list_key)
                if _text(await pipe.get(lock_name)) != lease.token:
                    raise LostTurnLock(
                        f"the turn lock of {lease.session_id} expired or was taken by another"
                        " process before the commit"
                    )
                keep = None if replaces is None else await _kept(pipe, list_key, replaces)
                now = str(int(time.time()))  # what the SDK writes (no TTL)
                pipe.multi()
                if keep == 0:
                    pipe.delete(list_key)
                elif keep is not None:
                    pipe.ltrim(list_key, 0, keep - 1)
                pipe.hset(hash_key, "session_id", lease.session_id)
                pipe.hsetnx(hash_key, "created_at", now)
                if encoded:
                    pipe.rpush(list_key, *encoded)
                pipe.hset(hash_key, "updated_at", now)
                await pipe.execute()
                return
            except WatchError as exc:
                if exc.__context__ is not None:  # the connection died under WATCH: an outage
                    raise
                continue  # a watched key changed: read again (the lock is checked again)
    raise StoreUnavailable(f"Redis kept changing {lease.session_id} under its turn lock")


async def _kept(pipe: Pipeline, list_key: str, question: str) -> int:
    """How many items precede the session's last turn (read under WATCH)."""
    length = int(await pipe.llen(list_key))
    window = _FIRST_WINDOW
    while True:
        raw = await pipe.lrange(list_key, -window, -1)
        start = last_turn_start([stored_item(r) for r in raw], question, complete=window >= length)
        if start is not None:
            return length - len(raw) + start
        window *= 4


def _text(value: Any) -> str | None:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
