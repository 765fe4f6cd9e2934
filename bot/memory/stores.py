"""Choosing the memory store that `SESSION_DB` names: SQLite, PostgreSQL or Redis.

- a file path: `SQLiteStore`, for one bot process;
- `postgresql+asyncpg://…` (or `postgresql://…` / `postgres://…`): `PostgresStore`;
- `redis://…` or `rediss://…`: `RedisStore`.

The two shared stores may be used by several bot processes at once: each turn of a session
runs under a cross-process lock (`turn_lock`), and connection failures surface as
`StoreUnavailable`; both reconnect by themselves once the server is back.
"""

from __future__ import annotations

from ..config.settings import store_kind
from .postgres import PostgresStore
from .redis import RedisStore
from .sqlite import SQLiteStore
from .store import SessionStore


def open_store(session_db: str) -> SessionStore:
    """The store `SESSION_DB` names (already validated by the settings).

    Raises `ValueError` with a one-line message when the store's packages are not installed
    (it names the extra to install).
    """
    value = session_db.strip()
    kind = store_kind(value)
    if kind == "postgres":
        return PostgresStore(value)
    if kind == "redis":
        return RedisStore(value)
    return SQLiteStore(value)
