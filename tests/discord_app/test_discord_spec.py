"""Every REST request the bot makes has the shape Discord's official OpenAPI document gives."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from tests.harness import ALICE, ALICE_DM, CHANNEL, NO_THREADS, World

# A vendored subset of Discord's official OpenAPI document: see tests/specs/README.md.
SPEC_PATH = Path(__file__).resolve().parents[1] / "specs" / "discord-openapi.json"


def request_schemas(spec: dict[str, Any]) -> list[tuple[str, re.Pattern[str], dict[str, Any]]]:
    """(method, path pattern, JSON body schema) for every operation that takes a body."""
    found = []
    for template, operations in spec["paths"].items():
        pattern = re.compile(re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$")
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue  # path-level "parameters"
            body = operation.get("requestBody", {}).get("content", {})
            schema = body.get("application/json", {}).get("schema")
            if schema is not None:
                found.append((method.upper(), pattern, schema))
    return found


async def test_the_bots_requests_match_discords_schemas(world: World) -> None:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    schemas = request_schemas(spec)
    # discord.py sends some ids (message_reference) as JSON integers, which Discord accepts
    # although the document types snowflakes as strings.
    snowflake = spec["components"]["schemas"]["SnowflakeType"]
    spec["components"]["schemas"]["SnowflakeType"] = {
        "anyOf": [snowflake, {"type": "integer", "minimum": 0}]
    }

    world.llm.reply("4")
    question = await world.discord.user_message(
        channel_id=CHANNEL, author_id=ALICE, content="what is 2+2?", mention_bot=True
    )
    await world.discord.wait_for_messages(int(question["id"]), 1)
    world.llm.reply("6")
    await world.discord.user_message(
        channel_id=NO_THREADS, author_id=ALICE, content="3+3?", mention_bot=True
    )
    await world.discord.wait_for_messages(NO_THREADS, 1)
    world.llm.reply("8")
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content="times 2")
    await world.discord.wait_for_messages(ALICE_DM, 1)
    math = await world.discord.slash_command(
        "math", user_id=ALICE, channel_id=CHANNEL, options={"question": "1+1"}
    )
    await math.wait_for_response()
    forget = await world.discord.slash_command("forget", user_id=ALICE, channel_id=CHANNEL)
    await forget.wait_for_followups(1)
    world.llm.reply("9")
    problem = await world.discord.user_message(channel_id=CHANNEL, author_id=ALICE, content="3*3")
    menu = await world.discord.message_command(
        "Ask mathbot", user_id=ALICE, message_id=int(problem["id"])
    )
    await menu.wait_for_followups(1)
    await world.discord.wait_for_messages(int(problem["id"]), 1)  # the answer, in a thread

    checked: set[str] = set()
    for request in world.discord.requests:
        if request.json is None:
            continue
        matches = [s for m, p, s in schemas if m == request.method and p.match(request.path)]
        assert matches, (
            f"no documented body for {request.method} {request.path} in the vendored subset:"
            " add the operation to tests/specs/extract.py and regenerate"
        )
        validator = jsonschema.Draft202012Validator(
            {**matches[0], "components": spec["components"]}
        )
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(request.json)]
        assert not errors, f"{request.method} {request.path}: {errors[:5]}"
        checked.add(re.sub(r"\d{5,}|/[A-Za-z0-9_.-]{40,}", "/N", request.path))
    # the bot sent messages, a thread, interaction callbacks, followups and its commands
    assert len(checked) >= 5, checked
