"""Cut the vendored OpenAPI subsets in tests/specs/ out of the full official documents.

The spec tests (``tests/fakes/test_fake_discord.py``, ``tests/fakes/test_fake_llm.py`` and
``tests/discord_app/test_discord_spec.py``) need only a few operations and component schemas of
Discord's and OpenAI's OpenAPI documents (1.2 MB and 3.4 MB). This script keeps exactly those,
plus every component they reach through ``$ref`` (transitively), plus the ``openapi``/``info``
header, and writes them next to this file.

Regenerate (from the repository root; by default the full documents are read from
``../shared/specs/discord-openapi.json`` and ``../shared/specs/openai-openapi.json``)::

    python tests/specs/extract.py
    python tests/specs/extract.py --discord FULL_DISCORD.json --openai FULL_OPENAI.json
    python tests/specs/extract.py --check   # exit 1 if a vendored subset is out of date

The full documents come from https://github.com/discord/discord-api-spec and
https://github.com/openai/openai-openapi (JSON; both MIT licensed). When you update them, copy
their LICENSE files to ``tests/specs/<name>-openapi.LICENSE`` as well.

If a test starts to use another operation or component schema, add it to ``SUBSETS`` below and
regenerate. Output is deterministic: the selected parts keep the upstream key order (the Discord
request test uses the *first* path template that matches a request, so path order matters) and
are written as UTF-8 JSON with ``indent=1``, so a re-run on the same input gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "specs"

# What the tests read. "operations": (method, path template) whose JSON request body schema is
# used; only that schema is kept from each operation. "schemas": component schemas the tests
# name directly.
SUBSETS: dict[str, dict[str, list[Any]]] = {
    "discord": {
        # tests/discord_app/test_discord_spec.py: every JSON body the bot sends.
        "operations": [
            ("put", "/applications/{application_id}/commands"),
            ("post", "/channels/{channel_id}/messages"),
            ("post", "/channels/{channel_id}/messages/{message_id}/threads"),
            ("post", "/interactions/{interaction_id}/{interaction_token}/callback"),
            ("post", "/webhooks/{webhook_id}/{webhook_token}"),
            ("patch", "/webhooks/{webhook_id}/{webhook_token}/messages/@original"),
            ("patch", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"),
        ],
        "schemas": [
            # tests/discord_app/test_discord_spec.py widens it to accept integer ids.
            "SnowflakeType",
            # tests/fakes/test_fake_discord.py: the fake's REST responses.
            "UserPIIResponse",
            "PrivateApplicationResponse",
            "MessageResponse",
            "ThreadResponse",
            "GuildChannelResponse",
            "PrivateChannelResponse",
            "UserResponse",
            "InteractionCallbackResponse",
            "GatewayBotResponse",
            "ApplicationCommandResponse",
        ],
    },
    "openai": {
        # tests/fakes/test_fake_llm.py: requests the SDK sends and the fake's responses.
        "operations": [],
        "schemas": [
            "CreateChatCompletionRequest",
            "CreateChatCompletionResponse",
            "ErrorResponse",
            "ListModelsResponse",
        ],
    },
}


def _pointer(ref: str) -> list[str]:
    """The JSON pointer tokens of a local ``$ref`` ("#/components/schemas/A~1B")."""
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, got {ref!r}")
    return [unquote(t).replace("~1", "/").replace("~0", "~") for t in ref[2:].split("/")]


def _component(ref: str) -> tuple[str, str]:
    """(kind, name) of the component a ``$ref`` points into ("#/components/schemas/A/...")."""
    tokens = _pointer(ref)
    if tokens[0] != "components" or len(tokens) < 3:
        raise ValueError(f"$ref outside #/components/<kind>/<name>: {ref!r}")
    return tokens[1], tokens[2]


def _refs(node: Any) -> list[str]:
    """Every ``$ref`` string inside node, in document order."""
    found: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.append(ref)
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found


def subset(spec: dict[str, Any], operations: list[Any], schemas: list[str]) -> dict[str, Any]:
    """The header, the JSON request bodies of operations, and the components they reach."""
    paths: dict[str, dict[str, Any]] = {}
    wanted_ops = {(m.lower(), p) for m, p in operations}
    for template, item in spec.get("paths", {}).items():  # upstream order
        for method, operation in item.items():
            if (method, template) not in wanted_ops:
                continue
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            body = {"content": {"application/json": {"schema": schema}}}
            paths.setdefault(template, {})[method] = {"requestBody": body}
            wanted_ops.discard((method, template))
    if wanted_ops:
        raise KeyError(f"operations not in the document: {sorted(wanted_ops)}")

    components = spec["components"]
    keep: set[tuple[str, str]] = set()
    todo = [("schemas", name) for name in schemas] + [_component(r) for r in _refs(paths)]
    while todo:
        kind, name = todo.pop()
        if (kind, name) in keep:
            continue
        if name not in components.get(kind, {}):
            raise KeyError(f"#/components/{kind}/{name} is not in the document")
        keep.add((kind, name))
        todo += [_component(ref) for ref in _refs(components[kind][name])]

    out: dict[str, Any] = {key: spec[key] for key in ("openapi", "info")}
    if paths:
        out["paths"] = paths
    out["components"] = {
        kind: {name: node for name, node in named.items() if (kind, name) in keep}
        for kind, named in components.items()  # upstream order
        if any(k == kind for k, _ in keep)
    }
    return out


def render(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in SUBSETS:
        parser.add_argument(
            f"--{name}",
            type=Path,
            default=DEFAULT_SOURCE / f"{name}-openapi.json",
            help=f"the full {name} OpenAPI JSON (default: %(default)s)",
        )
    parser.add_argument(
        "--check", action="store_true", help="compare with the vendored files, write nothing"
    )
    args = parser.parse_args(argv)
    stale = []
    for name, parts in SUBSETS.items():
        source: Path = getattr(args, name)
        spec = json.loads(source.read_text(encoding="utf-8"))
        data = render(subset(spec, parts["operations"], parts["schemas"]))
        target = HERE / f"{name}-openapi.json"
        if args.check:
            if not target.is_file() or target.read_bytes() != data:
                stale.append(target)
            continue
        target.write_bytes(data)
        print(f"{target.relative_to(REPO)}: {len(data):,} bytes (from {source})")
    for target in stale:
        print(f"out of date: {target.relative_to(REPO)}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
