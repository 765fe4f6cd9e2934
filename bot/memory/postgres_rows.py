"""The SDK's `SQLAlchemySession` rows on PostgreSQL (agents 0.24: a sessions table keyed by
session_id, a messages table of compact JSON items ordered by created_at then id), and a whole
turn written into them inside the caller's transaction."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from agents import TResponseInputItem

from .last_turn import last_turn_start, stored_item

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

_FIRST_WINDOW = 8


async def write_turn(
    conn: AsyncConnection,
    tables: tuple[str, str],
    session_id: str,
    items: list[TResponseInputItem],
    replaces: str | None,
) -> None:
    """Append `items` to the session (`tables`: sessions, messages); with `replaces`, first
    delete the session's last turn, which must have asked `replaces` (else `NotLatestTurn`).

    Runs in the caller's transaction: its rollback undoes all of it. Like the SDK's own
    writes, it first locks the session's row, so no SDK write of the session interleaves.
    """
    from sqlalchemy import bindparam, text

    sessions, messages = tables
    await conn.execute(
        text(f"INSERT INTO {sessions} (session_id) VALUES (:s) ON CONFLICT DO NOTHING"),
        {"s": session_id},
    )
    await conn.execute(
        text(f"SELECT session_id FROM {sessions} WHERE session_id = :s FOR UPDATE"),
        {"s": session_id},
    )
    if replaces is not None:
        doomed = await _last_turn_ids(conn, messages, session_id, replaces)
        await conn.execute(
            text(f"DELETE FROM {messages} WHERE session_id = :s AND id IN :ids").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"s": session_id, "ids": doomed},
        )
    await _insert(conn, tables, session_id, items)


async def _insert(
    conn: AsyncConnection,
    tables: tuple[str, str],
    session_id: str,
    items: list[TResponseInputItem],
) -> None:
    """The rows `SQLAlchemySession.add_items` writes (created_at and id by the server)."""
    from sqlalchemy import text

    sessions, messages = tables
    if items:
        await conn.execute(
            text(f"INSERT INTO {messages} (session_id, message_data) VALUES (:s, :d)"),
            [{"s": session_id, "d": _encoded(item)} for item in items],
        )
    await conn.execute(
        text(f"UPDATE {sessions} SET updated_at = CURRENT_TIMESTAMP WHERE session_id = :s"),
        {"s": session_id},
    )


async def _last_turn_ids(
    conn: AsyncConnection, messages: str, session_id: str, question: str
) -> list[int]:
    """The ids of the rows of the session's last turn, read from the newest rows."""
    from sqlalchemy import text

    window = _FIRST_WINDOW
    while True:
        result = await conn.execute(
            text(
                f"SELECT id, message_data FROM {messages} WHERE session_id = :s"
                " ORDER BY created_at DESC, id DESC LIMIT :n"
            ),
            {"s": session_id, "n": window},
        )
        rows = list(result.all())[::-1]
        start = last_turn_start(
            [stored_item(row[1]) for row in rows], question, complete=len(rows) < window
        )
        if start is not None:
            return [int(row[0]) for row in rows[start:]]
        window *= 4


def _encoded(item: TResponseInputItem) -> str:
    """An item as `SQLAlchemySession._serialize_item` writes it (ASCII, compact)."""
    return json.dumps(item, ensure_ascii=True, separators=(",", ":"))
