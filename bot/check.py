"""`mathbot check`: validates the settings, then reaches Discord, the model and the memory store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import openai

from .config.settings import ConfigError, Settings, load_settings, store_kind
from .core.llm_client import build_client
from .memory.outage import StoreUnavailable, where
from .memory.stores import open_store

log = logging.getLogger(__name__)

#: View Channels, Send Messages, Send Messages in Threads, Create Public Threads,
#: Read Message History, Attach Files: what the bot needs where it answers.
INVITE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 38) | (1 << 35) | (1 << 16) | (1 << 15)
#: Application flags saying the Message Content intent is on (verified, or under 100 servers).
MESSAGE_CONTENT_FLAGS = (1 << 18) | (1 << 19)
TIMEOUT = 15.0  # seconds each reach may take
PORTAL = "Developer Portal (https://discord.com/developers/applications) → your application"


@dataclass(frozen=True)
class Item:
    """One line of the checklist: what was checked, what was found, and the fix if it failed."""

    ok: bool
    what: str
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        found = [f"{'✓' if self.ok else '✗'} {self.what}: {self.detail}"]
        return found + ([f"    fix: {self.fix}"] if self.fix and not self.ok else [])


def invite_link(application_id: str | int) -> str:
    return (
        f"https://discord.com/oauth2/authorize?client_id={application_id}"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    )


async def run_check(
    environ: Mapping[str, str] | None = None,
    *,
    dotenv_path: str | Path | None = ".env",
    out: Callable[[str], None] = print,
) -> int:
    """Print the checklist line by line; 0 when every item is ✓, else 1."""
    items: list[Item] = []

    def report(item: Item) -> None:
        items.append(item)
        for line in item.lines():
            out(line)

    try:
        settings = load_settings(environ, dotenv_path=dotenv_path)
    except ConfigError as exc:
        report(Item(False, "settings", str(exc), "correct that setting in .env (see .env.example)"))
        return 1
    report(Item(True, "settings", "valid"))
    for check in (check_discord, check_model, check_memory):
        for item in await check(settings):
            report(item)
    return 0 if all(item.ok for item in items) else 1


async def check_discord(settings: Settings) -> list[Item]:
    """The token (GET /users/@me), then the application: its id, the Message Content intent
    and the invite link (GET /applications/@me)."""
    api = settings.discord_api_url
    headers = {"Authorization": f"Bot {settings.discord_token}"}
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            status, me = await _get_json(http, f"{api}/users/@me")
            if status == 401:
                return [
                    Item(
                        False,
                        "Discord token",
                        "Discord rejected DISCORD_TOKEN (401)",
                        f"{PORTAL} → Bot → Reset Token, and put the new token in .env",
                    )
                ]
            if status != 200:
                return [Item(False, "Discord token", f"GET /users/@me answered {status}", _RETRY)]
            name = f"{me.get('username')} (id {me.get('id')})"
            items = [Item(True, "Discord token", f"valid: logged in as {name}")]
            status, app = await _get_json(http, f"{api}/applications/@me")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [
            Item(
                False,
                "Discord",
                f"could not reach {api} ({type(exc).__name__})",
                "check the network, or DISCORD_API_URL if you set it",
            )
        ]
    if status != 200:
        items.append(Item(False, "Discord application", f"answered {status}", _RETRY))
        return items
    return items + _application_items(app)


_RETRY = "Discord may be having trouble: try again in a minute (https://discordstatus.com)"


def _application_items(app: dict[str, Any]) -> list[Item]:
    flags = int(app.get("flags") or 0)
    intent_on = bool(flags & MESSAGE_CONTENT_FLAGS)
    app_id = app.get("id", "")
    return [
        Item(
            intent_on,
            "Message Content intent",
            "on" if intent_on else "off: the bot cannot read questions (gateway close 4014)",
            f"{PORTAL} → Bot → Privileged Gateway Intents → MESSAGE CONTENT INTENT → Save",
        ),
        Item(bool(app_id), "application id", str(app_id) or "missing", _RETRY),
        Item(bool(app_id), "invite link", invite_link(app_id) if app_id else "needs the id"),
    ]


async def _get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url) as response:
        if response.status != 200:
            return response.status, {}
        body = await response.json()
        return response.status, body if isinstance(body, dict) else {}


async def check_model(settings: Settings) -> list[Item]:
    """A one-token request to the model endpoint, with the bot's own client."""
    what = f"model {settings.llm_model}"
    client = build_client(settings)
    try:
        await client.chat.completions.create(
            model=settings.llm_model,
            messages=[{"role": "user", "content": "Say OK."}],
            max_tokens=1,
        )
    except openai.AuthenticationError:
        fix = "put a valid key in GOOGLE_API_KEY (aistudio.google.com/apikey) or LLM_API_KEY"
        return [Item(False, what, "the endpoint rejected the API key", fix)]
    except openai.NotFoundError:
        fix = "set LLM_MODEL to a model this endpoint serves (and check LLM_BASE_URL)"
        return [Item(False, what, f"not found at {settings.llm_base_url}", fix)]
    except openai.APIStatusError as exc:
        detail = f"{settings.llm_base_url} answered {exc.status_code}"
        return [Item(False, what, detail, "check LLM_BASE_URL, the key's quota, then try again")]
    except openai.APIError as exc:  # connection refused, timeout, garbage
        detail = f"could not reach {settings.llm_base_url} ({type(exc).__name__})"
        return [Item(False, what, detail, "check the network and LLM_BASE_URL")]
    finally:
        await client.close()
    return [Item(True, what, f"answered at {settings.llm_base_url}")]


async def check_memory(settings: Settings) -> list[Item]:
    """Open the store `SESSION_DB` names and read one item of an unused session."""
    kind = store_kind(settings.session_db)
    place = settings.session_db if kind == "sqlite" else where(settings.session_db)
    what = f"memory ({kind})"
    try:
        store = open_store(settings.session_db)
    except ValueError as exc:  # the extra is not installed
        return [Item(False, what, str(exc), "install the extra named above")]
    fix = (
        "make SESSION_DB a path in a writable folder"
        if kind == "sqlite"
        else f"start the {kind} server at {place}, or correct SESSION_DB"
    )
    try:
        await _probe(store.start, TIMEOUT)
        async with store.session("mathbot:check") as session:
            await _probe(lambda: session.get_items(1), TIMEOUT)
    except (StoreUnavailable, OSError, TimeoutError) as exc:
        return [Item(False, what, f"{place} is not answering ({type(exc).__name__})", fix)]
    except Exception as exc:
        log.debug("memory check failed", exc_info=True)
        # A server's error may quote its URL (and password): name only the error's type.
        said = f": {exc}" if kind == "sqlite" else ""
        return [Item(False, what, f"{place}: {type(exc).__name__}{said}", fix)]
    finally:
        await store.close()
    return [Item(True, what, f"{place} answers")]


async def _probe(call: Callable[[], Awaitable[object]], seconds: float) -> None:
    async with asyncio.timeout(seconds):
        await call()
