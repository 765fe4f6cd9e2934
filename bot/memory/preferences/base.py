"""The `Preferences` protocol: small JSON records by key, read in one call, changed atomically."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

Record = dict[str, Any]
Change = Callable[[Record | None], Record | None]  # the old record (None: none) -> the new one


class Preferences(Protocol):
    """Where users' and servers' choices are kept, beside the conversations (the same SQLite
    file, PostgreSQL database or Redis server), so that they survive restarts and every
    process sees the same ones."""

    async def start(self) -> None: ...

    async def read(self, keys: Sequence[str]) -> dict[str, Record]:
        """The records stored under `keys`; a key with none is left out."""
        ...

    async def update(self, key: str, change: Change) -> Record | None:
        """Replace the record under `key` by `change(old)` (None deletes it) in one atomic
        step, even across processes; returns the new record. `change` must be quick and pure:
        it may run again when another process wrote the key meanwhile."""
        ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


def encode(record: Record) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def decode(key: str, text: str | bytes) -> Record | None:
    """A stored record, or None (with a warning) when what is stored is not a JSON object."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        log.warning("preferences: ignoring a malformed record under %s", key)
        return None
    return value
