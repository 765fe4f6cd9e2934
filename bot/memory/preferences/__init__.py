"""Users' and servers' choices (answer styles, server settings), kept in the memory store:
`open_preferences` picks the backend that matches the store `SESSION_DB` opened."""

from __future__ import annotations

from ..postgres import PostgresStore
from ..redis import RedisStore
from ..sqlite import SQLiteStore
from ..store import SessionStore
from .base import Preferences
from .postgres import PostgresPreferences
from .redis import RedisPreferences
from .sqlite import SQLitePreferences


def open_preferences(store: SessionStore) -> Preferences:
    """The preferences beside `store`: a table in its SQLite file or PostgreSQL database, or a
    hash on its Redis server. Not started: start it after the store."""
    if isinstance(store, PostgresStore):
        return PostgresPreferences(store)
    if isinstance(store, RedisStore):
        return RedisPreferences(store)
    if isinstance(store, SQLiteStore):
        return SQLitePreferences(store.path)
    raise TypeError(f"no preferences backend for {type(store).__name__}")
