"""End-to-end world: the real bot, the fake Discord and the fake model server on loopback."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from typing import Any

from bot.app import build
from bot.config.settings import Settings
from bot.discord_app.build import build_bot
from bot.discord_app.client import MathBot
from bot.tools.calculator.calculator import Calculator
from bot.tools.plotting.plotter import Plotter
from tests.fakes.discord_server import FakeDiscord, running_client
from tests.fakes.llm_server import FakeLLM

GUILD = 900000000000000001
CHANNEL = 900000000000000011
NO_THREADS = 900000000000000012
ALICE = 800000000000000001
BOB = 800000000000000002
OTHER_BOT = 800000000000000003
ALICE_DM = 700000000000000001
BOB_DM = 700000000000000002


class World:
    """One fake Discord, one fake model, and a bot that can be (re)started between them."""

    def __init__(
        self,
        discord: FakeDiscord,
        llm: FakeLLM,
        settings: Settings,
        calculator: Calculator,
        plotter: Plotter,
    ) -> None:
        self.discord = discord
        self.llm = llm
        self.settings = settings
        self.calculator = calculator
        self.plotter = plotter
        self.now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)  # the bot's clock; tests move it
        self.bot: MathBot | None = None
        self._running: Any = None

    async def start_bot(self, **changes: Any) -> MathBot:
        if changes:
            self.settings = dataclasses.replace(self.settings, **changes)
        assistant = build(
            self.settings, calculator=self.calculator, plotter=self.plotter, now=lambda: self.now
        )
        bot = build_bot(self.settings, assistant, guild_ready_timeout=0.01)
        self._running = running_client(bot, token=self.settings.discord_token)
        await self._running.__aenter__()
        self.bot = bot
        return bot

    async def stop_bot(self) -> None:
        if self._running is not None:
            running, self._running, self.bot = self._running, None, None
            await running.__aexit__(None, None, None)

    async def restart_bot(self, **changes: Any) -> MathBot:
        await self.stop_bot()
        return await self.start_bot(**changes)

    def rows(self, session_id: str) -> list[dict[str, Any]]:
        """What the memory file holds for a session, read straight from SQLite."""
        with sqlite3.connect(self.settings.session_db) as conn:
            found = conn.execute(
                "SELECT message_data FROM agent_messages WHERE session_id = ? ORDER BY id",
                (session_id,),
            ).fetchall()
        return [json.loads(r[0]) for r in found]


def build_discord() -> FakeDiscord:
    fake = FakeDiscord()
    fake.add_guild(GUILD, name="Math club")
    fake.add_text_channel(GUILD, CHANNEL, name="general")
    fake.add_text_channel(GUILD, NO_THREADS, name="no-threads", can_create_threads=False)
    fake.add_user(ALICE, "alice")
    fake.add_user(BOB, "bob")
    fake.add_user(OTHER_BOT, "otherbot", bot=True)
    return fake
