"""`mathbot check` against the loopback fakes: a ✓/✗ checklist with the fix for each ✗."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.check import INVITE_PERMISSIONS, run_check
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.llm_server import FakeLLM
from tests.subprocess_bot import REPO_ROOT

TOKEN = "check.discord.token"
APP_ID = 1100000000000000042


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord(token=TOKEN, application_id=APP_ID)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


def environ(discord: FakeDiscord, llm: FakeLLM, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": TOKEN,
        "GOOGLE_API_KEY": "check-llm-key",
        "LLM_BASE_URL": llm.base_url,
        "DISCORD_API_URL": discord.api_base,
        "SESSION_DB": str(tmp_path / "memory.db"),
        **extra,
    }


async def check(env: dict[str, str]) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = await run_check(env, dotenv_path=None, out=lines.append)
    return code, lines


async def test_all_good_is_all_ticks_and_exit_0(
    discord: FakeDiscord, llm: FakeLLM, tmp_path: Path
) -> None:
    code, lines = await check(environ(discord, llm, tmp_path))
    assert code == 0, lines
    assert all(line.startswith("✓") for line in lines), lines
    text = "\n".join(lines)
    assert "logged in as mathbot" in text and f"application id: {APP_ID}" in text
    assert "Message Content intent: on" in text
    assert f"client_id={APP_ID}&scope=bot+applications.commands" in text
    assert f"permissions={INVITE_PERMISSIONS}" in text and INVITE_PERMISSIONS == 309237746688
    [request] = llm.requests
    assert request["max_tokens"] == 1 and request["model"] == "gemini-2.5-flash"
    paths = [(r.method, r.path) for r in discord.requests]
    assert paths == [("GET", "/users/@me"), ("GET", "/applications/@me")]
    assert all(r.headers["Authorization"] == f"Bot {TOKEN}" for r in discord.requests)
    assert "memory (sqlite)" in text and (tmp_path / "memory.db").exists()


async def test_a_rejected_token_and_a_bad_model_key_say_how_to_fix_them(
    discord: FakeDiscord, llm: FakeLLM, tmp_path: Path
) -> None:
    llm.error(401, message="API key not valid")
    code, lines = await check(environ(discord, llm, tmp_path, DISCORD_TOKEN="wrong.token"))
    assert code == 1
    text = "\n".join(lines)
    assert "✗ Discord token: Discord rejected DISCORD_TOKEN (401)" in text
    assert "fix:" in text and "Reset Token" in text
    assert "✗ model gemini-2.5-flash: the endpoint rejected the API key" in text
    assert "✓ memory (sqlite)" in text  # the other checks still ran
    assert "wrong.token" not in text and "check-llm-key" not in text


async def test_message_content_intent_off_is_a_cross(
    discord: FakeDiscord, llm: FakeLLM, tmp_path: Path
) -> None:
    discord.allowed_privileged_intents = 0
    code, lines = await check(environ(discord, llm, tmp_path))
    assert code == 1
    [intent] = [i for i, line in enumerate(lines) if "Message Content intent" in line]
    assert lines[intent].startswith("✗") and "4014" in lines[intent]
    assert "MESSAGE CONTENT INTENT" in lines[intent + 1] and "fix:" in lines[intent + 1]


async def test_unreachable_model_and_memory_server(
    discord: FakeDiscord, llm: FakeLLM, tmp_path: Path
) -> None:
    await llm.close()  # nothing listens there any more
    dead = "redis://:sekrit-password@127.0.0.1:1/0"
    code, lines = await check(environ(discord, llm, tmp_path, SESSION_DB=dead))
    assert code == 1
    text = "\n".join(lines)
    assert "✗ model gemini-2.5-flash: could not reach" in text and "LLM_BASE_URL" in text
    assert "✗ memory (redis): 127.0.0.1:1/0 is not answering" in text
    assert "start the redis server" in text and "sekrit-password" not in text


async def test_bad_settings_stop_at_the_first_line(tmp_path: Path) -> None:
    code, lines = await check({"GOOGLE_API_KEY": "k"})
    assert code == 1
    assert lines[0].startswith("✗ settings: DISCORD_TOKEN is missing") and len(lines) == 2


async def test_python_m_bot_check_exits_0_when_all_is_well(
    discord: FakeDiscord, llm: FakeLLM, tmp_path: Path
) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": REPO_ROOT, **environ(discord, llm, tmp_path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, (out, err)
    assert out.decode().count("✓") == 7 and "✗" not in out.decode()
    assert err == b""
