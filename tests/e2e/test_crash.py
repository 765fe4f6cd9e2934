"""A bot killed with SIGKILL mid-burst keeps every answered turn whole, and no half turn."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.memory.history import is_user_message
from bot.memory.keys import user_session_id
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.llm_server import FakeLLM
from tests.subprocess_bot import BotProcess, bot_env

USERS = 100
QUESTIONS = 2  # per user, sent at once: the second waits in the bot for the first
DELAYED = 150  # model requests answered after a short delay; the later ones hang
KILL_AFTER = 50  # answers seen in Discord before the kill
FIRST_USER = 810000000000000001
FIRST_DM = 710000000000000001
PROBE_USER = 819000000000000001
PROBE_DM = 719000000000000001
START_TIMEOUT = 30.0  # a cold `python -m bot` imports SymPy and starts the calculator


def question(user: int, n: int) -> str:
    return f"user {user} question {n}"


def text_of(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def whole_turns(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(question, answer) of each stored turn; fails on a half turn: a question without an
    answer after it, or a function call without its output."""
    starts = [i for i, item in enumerate(items) if is_user_message(item)]
    assert not items or starts[:1] == [0], f"items before the first question: {items[:3]}"
    turns = []
    for start, end in zip(starts, [*starts[1:], len(items)][: len(starts)], strict=True):
        turn = items[start:end]
        last = turn[-1]
        assert last.get("role") == "assistant" and last.get("type") == "message", (
            f"half turn (no answer): {turn}"
        )
        calls = {i.get("call_id") for i in turn if i.get("type") == "function_call"}
        outputs = {i.get("call_id") for i in turn if i.get("type") == "function_call_output"}
        assert calls == outputs, f"half turn (function call without output): {turn}"
        turns.append((text_of(turn[0]), text_of(last)))
    return turns


def sessions_in(path: str) -> dict[str, list[dict[str, Any]]]:
    """Every stored session's items, read straight from the file."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT session_id, message_data FROM agent_messages ORDER BY id"
        ).fetchall()
    sessions: dict[str, list[dict[str, Any]]] = {}
    for session_id, data in rows:
        sessions.setdefault(session_id, []).append(json.loads(data))
    return sessions


def integrity(path: str) -> str:
    with sqlite3.connect(path) as conn:
        return "\n".join(row[0] for row in conn.execute("PRAGMA integrity_check"))


def turns_of(path: str, user: int) -> list[tuple[str, str]]:
    return whole_turns(sessions_in(path).get(user_session_id(user), []))


async def until_ready(discord: FakeDiscord, bot: BotProcess, identified_before: int) -> None:
    """Wait for the bot's new gateway session (READY sent), failing fast if it exits."""

    async def identified() -> None:
        await discord.wait_until(
            lambda: discord.identify_count > identified_before,
            timeout=START_TIMEOUT,
            what="the bot's IDENTIFY",
        )
        await discord.wait_for_ready(timeout=START_TIMEOUT)

    ready = asyncio.create_task(identified())
    exited = asyncio.create_task(bot.process.wait())
    try:
        done, _ = await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
        exited.cancel()
    assert ready in done and ready.exception() is None, (
        f"bot not ready (exit status {bot.returncode}):\n{bot.tail()}"
    )


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streaming"])
async def test_sigkill_mid_burst_keeps_answered_turns_and_no_half_turn(
    tmp_path: Path, streaming: bool
) -> None:
    """A plain reply is posted after its turn is stored, so every answer Discord shows must be
    in the file. A streamed reply shows a draft before its turn is stored: there the file
    must still be sound and hold whole turns only, in the order they were asked."""
    users = [FIRST_USER + i for i in range(USERS)]
    discord = FakeDiscord()
    for i, user in enumerate(users):
        discord.add_user(user, f"user{i}")
    discord.add_user(PROBE_USER, "probe")
    db = str(tmp_path / "maths_db.db")
    await discord.start()
    try:
        async with FakeLLM() as llm, FakeLLM() as llm_after:

            def env(llm_url: str) -> dict[str, str]:
                return bot_env(
                    api_url=discord.api_base,
                    gateway_url=discord.gateway_url,
                    llm_base_url=llm_url,
                    session_db=db,
                    USER_RATE_LIMIT="off",
                    MAX_CONCURRENT_MODEL_CALLS=str(USERS * QUESTIONS),
                    MAX_QUEUED_TURNS=str(USERS * QUESTIONS),
                    STREAMING="on" if streaming else "off",
                    STREAM_EDIT_INTERVAL="0.5",
                    LOG_LEVEL="WARNING",
                )

            # 1. A bot answering a burst: 100 users, two DMs each, many turns in flight.
            first = BotProcess(env(llm.base_url), cwd=tmp_path, log_path=tmp_path / "bot-1.log")
            async with first:
                await until_ready(discord, first, 0)
                await discord.user_message(channel_id=PROBE_DM, author_id=PROBE_USER, content="hi")
                await discord.wait_for_messages(PROBE_DM, 1, timeout=START_TIMEOUT)
                for k in range(DELAYED):  # answers spread over 0.1-0.67 s, each one unique
                    llm.delay(0.1 + (k % 20) * 0.03, f"answer {k}")
                for _ in range(USERS * QUESTIONS - DELAYED):
                    llm.hang()  # so turns are surely in flight at the kill
                for n in range(QUESTIONS):
                    for i, user in enumerate(users):
                        await discord.user_message(
                            channel_id=FIRST_DM + i, author_id=user, content=question(i, n)
                        )

                def answered() -> int:
                    return sum(len(discord.messages(FIRST_DM + i)) for i in range(USERS))

                def a_turn_is_stored() -> bool:  # streamed drafts show before their turn is
                    probe = user_session_id(PROBE_USER)
                    return any(
                        whole_turns(items) for sid, items in sessions_in(db).items() if sid != probe
                    )

                await discord.wait_until(
                    lambda: answered() >= KILL_AFTER and a_turn_is_stored() and llm.in_flight > 0,
                    timeout=20,
                    what=f"{KILL_AFTER} answers, a stored turn and a model call in flight",
                )
                in_flight = llm.in_flight
                first.kill()
                assert in_flight > 0, "nothing was in flight at the kill"
                assert await first.wait(10) == -signal.SIGKILL
                first.reap()

            # 2. The file after the crash: sound, whole turns only, every answered turn in it.
            assert integrity(db) == "ok"
            sessions = sessions_in(db)
            seen = [[m["content"] for m in discord.messages(FIRST_DM + i)] for i in range(USERS)]
            assert KILL_AFTER <= sum(len(s) for s in seen) < USERS * QUESTIONS
            stored: dict[int, list[tuple[str, str]]] = {}
            for i, user in enumerate(users):
                turns = whole_turns(sessions.pop(user_session_id(user), []))
                assert [q for q, _ in turns] == [question(i, n) for n in range(len(turns))]
                if not streaming:  # past the answered turns: whole ones not yet sent, if any
                    assert [a for _, a in turns[: len(seen[i])]] == seen[i], (
                        f"user {i}: answered {seen[i]}, stored {turns}"
                    )
                stored[i] = turns
            assert set(sessions) <= {user_session_id(PROBE_USER)}, set(sessions)
            all_answers = [a for turns in stored.values() for _, a in turns]
            assert len(all_answers) == len(set(all_answers)), "a turn was stored twice"
            assert len(all_answers) < USERS * QUESTIONS  # the hanging turns left nothing

            # 3. Restarted on the same file: it answers, with each user's stored history.
            # (streamed drafts show early, so a kill may come before any user's 2nd turn is stored)
            done = max(range(USERS), key=lambda i: len(stored[i]))
            lost = min((i for i in range(USERS) if i != done), key=lambda i: len(stored[i]))
            assert stored[done], "no turn was stored before the kill"
            identified = discord.identify_count
            second = BotProcess(
                env(llm_after.base_url), cwd=tmp_path, log_path=tmp_path / "bot-2.log"
            )
            async with second:
                await until_ready(discord, second, identified)
                for i in (done, lost):
                    await discord.user_message(
                        channel_id=FIRST_DM + i, author_id=users[i], content=f"again {i}"
                    )
                for i in (done, lost):
                    await discord.wait_for_message(
                        FIRST_DM + i,
                        lambda m, i=i: m["content"] == f"echo: again {i}",
                        timeout=START_TIMEOUT,
                    )
                    # A streamed draft shows before its turn is stored (the final edit after).
                    await discord.wait_until(
                        lambda i=i: len(turns_of(db, users[i])) > len(stored[i]),
                        timeout=START_TIMEOUT,
                        what=f"user {i}'s new turn in the file",
                    )
                for i in (done, lost):
                    [request] = [
                        r for r in llm_after.requests if FakeLLM.user_texts(r)[-1] == f"again {i}"
                    ]
                    history = [q for q, _ in stored[i]]
                    assert FakeLLM.user_texts(request) == [*history, f"again {i}"]
                    said = [
                        m["content"] for m in FakeLLM.messages(request) if m["role"] == "assistant"
                    ]
                    assert said == [a for _, a in stored[i]]
                    assert turns_of(db, users[i]) == [
                        *stored[i], (f"again {i}", f"echo: again {i}")
                    ]  # fmt: skip
                assert await second.terminate() == 0, second.tail()
            assert integrity(db) == "ok"
    finally:
        await discord.close()
    assert not discord.unknown_requests, discord.unknown_requests
    assert not discord.handler_errors, discord.handler_errors


async def test_sigterm_lets_the_answer_under_way_finish(tmp_path: Path) -> None:
    """A platform restart (SIGTERM) waits for the answer being written, then exits cleanly."""
    discord = FakeDiscord()
    discord.add_user(PROBE_USER, "probe")
    db = str(tmp_path / "maths_db.db")
    await discord.start()
    try:
        async with FakeLLM() as llm:
            env = bot_env(
                api_url=discord.api_base,
                gateway_url=discord.gateway_url,
                llm_base_url=llm.base_url,
                session_db=db,
                STREAMING="off",
            )
            bot = BotProcess(env, cwd=tmp_path, log_path=tmp_path / "bot.log")
            async with bot:
                await until_ready(discord, bot, 0)
                llm.delay(1.0, "4")
                await discord.user_message(
                    channel_id=PROBE_DM, author_id=PROBE_USER, content="what is 2+2?"
                )
                await llm.wait_for_requests(1, timeout=START_TIMEOUT)
                bot.process.send_signal(signal.SIGTERM)  # while the model is still answering
                assert await bot.wait(timeout=30) == 0, bot.tail()
        [answer] = discord.messages(PROBE_DM)
        assert answer["content"] == "4"
        assert turns_of(db, PROBE_USER) == [("what is 2+2?", "4")]
    finally:
        await discord.close()
