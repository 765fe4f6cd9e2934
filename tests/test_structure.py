"""The house rules of `bot/`, read from its source: no import cycles (imports inside functions
count), discord only in the adapter and the entry point, the environment only in config."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bot"
DISCORD_ROOMS = ("bot.discord_app", "bot.__main__")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The `bot` modules (and outside packages, by top name) that `name` imports anywhere."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    inside = {m for m in found if m in known}
    return inside | {m.split(".")[0] for m in found if not m.startswith("bot")}


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(name, path, known) - {name} for name, path in found.items()}


def test_no_import_cycles() -> None:
    edges = {name: {t for t in targets if t.startswith("bot")} for name, targets in graph().items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)


def test_only_the_adapter_and_the_entry_point_import_discord() -> None:
    stray = sorted(
        name
        for name, targets in graph().items()
        if "discord" in targets and not name.startswith(DISCORD_ROOMS)
    )
    assert stray == []


@pytest.mark.parametrize("needle", ["os.environ", "os.getenv", "getenv("])
def test_only_config_reads_the_environment(needle: str) -> None:
    readers = sorted(
        name
        for name, path in modules().items()
        if needle in path.read_text(encoding="utf-8") and not name.startswith("bot.config")
    )
    assert readers == []
