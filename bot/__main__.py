"""Command line: `python -m bot` runs the Discord bot; `chat`, `calc` and `check` are helpers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from importlib.metadata import version
from pathlib import Path

import aiohttp
import discord

from .app import build
from .calc_cli import run_calc
from .check import run_check
from .config.settings import ConfigError, Settings, load_settings
from .core.assistant import Assistant
from .discord_app.build import build_bot
from .discord_app.client import point_discord_at
from .memory.outage import where
from .process import setup_logging, tune_garbage_collector
from .startup import host_port, patiently
from .terminal import run_chat

log = logging.getLogger("bot")

INTENT_HELP = (
    "Discord refused the Message Content intent (gateway close 4014). Turn it on: "
    "Developer Portal → your application → Bot → Privileged Gateway Intents → "
    "MESSAGE CONTENT INTENT, save, then start mathbot again."
)
TOKEN_HELP = (
    "Discord rejected DISCORD_TOKEN. Copy a fresh token from Developer Portal → your "
    "application → Bot → Reset Token and put it in .env."
)
# Discord cannot be reached (refused, DNS, reset) or answers 5xx: waited for, for ever.
DISCORD_UNREACHABLE = (aiohttp.ClientConnectionError, discord.DiscordServerError)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mathbot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mathbot {version('mathbot')}")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the Discord bot (the default)")
    chat = commands.add_parser("chat", help="chat with the assistant in this terminal")
    chat.add_argument(
        "--user",
        default="local",
        help="whose memory to use (a Discord user id continues that user's conversation)",
    )
    calc = commands.add_parser(
        "calc", help="evaluate expressions with the sandboxed calculator (no keys needed)"
    )
    calc.add_argument("expression", nargs="+", help='e.g. "integrate(x^2, x)" or "N(pi, 30)"')
    commands.add_parser("check", help="check the settings, Discord, the model and the memory store")
    return parser.parse_args(argv)


async def run_bot(settings: Settings, assistant: Assistant) -> int:
    """Run the Discord bot until it is stopped; the exit status for the process."""
    point_discord_at(settings.discord_api_url, settings.discord_gateway_url)
    async with build_bot(settings, assistant) as bot:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(bot.close()))
        try:
            await bot.start(settings.discord_token)
        except discord.PrivilegedIntentsRequired:
            log.error("%s", INTENT_HELP)
            print(f"mathbot: {INTENT_HELP}", file=sys.stderr)
            return 2
        except discord.LoginFailure:
            log.error("%s", TOKEN_HELP)
            print(f"mathbot: {TOKEN_HELP}", file=sys.stderr)
            return 2
    return 0


async def serve(settings: Settings, assistant: Assistant) -> int:
    """Start the core first (waiting for a memory server), then run the bot, waiting for
    Discord while it cannot be reached; SIGTERM during these waits stops quietly."""
    what = f"Discord at {host_port(settings.discord_api_url)}"
    try:
        stop_on_sigterm()
        await assistant.start()
        async for attempt in patiently(what, DISCORD_UNREACHABLE):
            with attempt:
                try:
                    return await run_bot(settings, assistant)
                finally:
                    stop_on_sigterm()  # run_bot's own handler stops a client now closed
    except asyncio.CancelledError:
        log.info("stopped while starting")
        return 0
    finally:
        await assistant.close()
    return 1  # not reached: `patiently` tries again or raises


def stop_on_sigterm() -> None:
    """SIGTERM cancels the current task (the whole start-up)."""
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def memory_place(settings: Settings) -> str:
    """Where the conversations are kept, for people: a file path, or a server's host:port."""
    if "://" in settings.session_db:
        return where(settings.session_db)
    return str(Path(settings.session_db).expanduser().resolve())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "calc":
        setup_logging("WARNING", ())
        return asyncio.run(run_calc(args.expression))
    if args.command == "check":
        setup_logging("ERROR", ())
        return asyncio.run(run_check())
    chatting = args.command == "chat"
    try:
        settings = load_settings(require_discord=not chatting)
    except ConfigError as exc:
        print(f"mathbot: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level or ("WARNING" if chatting else "INFO"), settings.secrets())
    for warning in settings.warnings:
        log.warning("%s", warning)
    # discord.py warns at every start that voice needs PyNaCl and davey: mathbot has no voice.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    try:
        assistant = build(settings)
    except ValueError as exc:  # e.g. SESSION_DB names a server whose extra isn't installed
        print(f"mathbot: {exc}", file=sys.stderr)
        return 2
    tune_garbage_collector()
    try:
        if chatting:
            return asyncio.run(run_chat(assistant, args.user, memory_place(settings)))
        return asyncio.run(serve(settings, assistant))
    except ConfigError as exc:  # e.g. the memory file cannot be created
        print(f"mathbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
