"""Fencing PostgreSQL turns: a table of one token per session, replaced by whoever takes the
session's turn lock, and checked (row locked) in the transaction that writes a turn.

Why it is enough: a new holder of the lock replaces the token before it reads the session, and
that UPDATE waits for any commit holding the row. So a commit either runs before the new
holder reads (which then sees it) or finds another token and writes nothing.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from .outage import LostTurnLock
from .store import TurnLease

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


async def create_table(conn: AsyncConnection, table: str) -> None:
    from sqlalchemy import text

    await conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {table} (session_id TEXT PRIMARY KEY, token TEXT NOT NULL)"
        )
    )


async def take(conn: AsyncConnection, table: str, session_id: str) -> TurnLease:
    """A fresh token for the session, stored at once (`conn` is in autocommit mode and holds
    the session's turn lock)."""
    from sqlalchemy import text

    token = uuid.uuid4().hex
    await conn.execute(
        text(
            f"INSERT INTO {table} (session_id, token) VALUES (:s, :t)"
            " ON CONFLICT (session_id) DO UPDATE SET token = EXCLUDED.token"
        ),
        {"s": session_id, "t": token},
    )
    return TurnLease(session_id, token)


async def check(conn: AsyncConnection, table: str, lease: TurnLease) -> None:
    """Lock the session's token row for the rest of the caller's transaction; `LostTurnLock`
    unless it still holds the lease's token."""
    from sqlalchemy import text

    result = await conn.execute(
        text(f"SELECT token FROM {table} WHERE session_id = :s FOR UPDATE"),
        {"s": lease.session_id},
    )
    if result.scalar_one_or_none() != lease.token:
        raise LostTurnLock(
            f"the turn lock of {lease.session_id} was taken by another process before the commit"
        )


async def drop(conn: AsyncConnection, table: str, session_id: str) -> None:
    """Forget the session's token (its conversation was deleted)."""
    from sqlalchemy import text

    await conn.execute(text(f"DELETE FROM {table} WHERE session_id = :s"), {"s": session_id})
