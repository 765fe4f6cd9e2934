"""The SDK's `SQLiteSession` rows (agents 0.24: `agent_sessions`, `agent_messages`, one JSON
item per row, ordered by id), and a whole turn written into them in one transaction."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

from agents import TResponseInputItem

from .last_turn import last_turn_start, stored_item

SESSIONS_TABLE = "agent_sessions"
MESSAGES_TABLE = "agent_messages"
BUSY_TIMEOUT = 5.0  # seconds to wait for another writer of the file, as sqlite3's default
# In WAL mode (the SDK sets it), NORMAL skips the fsync at each commit: a committed turn
# survives the bot crashing, and the file is never corrupted, but the last turns may be
# lost if the machine loses power. FULL costs an fsync per turn: 4 ms on an idle disk, up
# to 500 ms on a busy one, holding the file's write lock (docs/benchmarks.md, hostile users).
WAL_SYNCHRONOUS = "PRAGMA synchronous=NORMAL"
_FIRST_WINDOW = 8


def write_turn(
    path: str, session_id: str, items: list[TResponseInputItem], replaces: str | None
) -> None:
    """Append `items` to the session; with `replaces`, first delete the session's last turn
    (which must have asked `replaces`, else `NotLatestTurn`). One `BEGIN IMMEDIATE`
    transaction: a failure anywhere leaves the file as it was. Blocking: run it in a thread.
    """
    with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)) as conn:
        conn.execute(WAL_SYNCHRONOUS)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if replaces is not None:
                first_id = _last_turn_first_id(conn, session_id, replaces)
                conn.execute(
                    f"DELETE FROM {MESSAGES_TABLE} WHERE session_id = ? AND id >= ?",
                    (session_id, first_id),
                )
            _insert(conn, session_id, items)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise


def _insert(conn: sqlite3.Connection, session_id: str, items: list[TResponseInputItem]) -> None:
    """The rows `SQLiteSession.add_items` writes."""
    conn.execute(f"INSERT OR IGNORE INTO {SESSIONS_TABLE} (session_id) VALUES (?)", (session_id,))
    conn.executemany(
        f"INSERT INTO {MESSAGES_TABLE} (session_id, message_data) VALUES (?, ?)",
        [(session_id, json.dumps(item)) for item in items],
    )
    conn.execute(
        f"UPDATE {SESSIONS_TABLE} SET updated_at = CURRENT_TIMESTAMP WHERE session_id = ?",
        (session_id,),
    )


def _last_turn_first_id(conn: sqlite3.Connection, session_id: str, question: str) -> int:
    """The id of the row that starts the session's last turn, read from the newest rows."""
    window = _FIRST_WINDOW
    while True:
        rows = conn.execute(
            f"SELECT id, message_data FROM {MESSAGES_TABLE} WHERE session_id = ?"
            " ORDER BY id DESC LIMIT ?",
            (session_id, window),
        ).fetchall()[::-1]
        start = last_turn_start(
            [stored_item(data) for _, data in rows], question, complete=len(rows) < window
        )
        if start is not None:
            return int(rows[start][0])
        window *= 4
