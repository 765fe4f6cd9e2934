"""Splitting long answers into Discord-sized messages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.render.discord_limits import MESSAGE_CHARS
from bot.render.splitting import split_message


def fences_balanced(chunk: str) -> bool:
    return sum(1 for line in chunk.split("\n") if line.strip().startswith("```")) % 2 == 0


def test_short_text_is_one_message() -> None:
    assert split_message("4") == ["4"]


def test_empty_text_gives_no_message() -> None:
    assert split_message("") == []
    assert split_message("\n\n  \n") == []


def test_five_thousand_characters_of_lines() -> None:
    text = "\n".join(f"line {i}: " + "x" * 41 for i in range(100))
    assert len(text) > 5000
    chunks = split_message(text)
    assert len(chunks) >= 3
    assert all(0 < len(c) <= MESSAGE_CHARS for c in chunks)
    assert "\n".join(chunks) == text  # cut only at line boundaries


def test_code_block_is_closed_and_reopened() -> None:
    code = "```python\n" + "\n".join(f"print({i})" for i in range(400)) + "\n```"
    chunks = split_message("Here:\n" + code + "\nDone.")
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk) <= MESSAGE_CHARS
        assert fences_balanced(chunk)
    code_chunks = [c for c in chunks if "print(" in c]
    assert all("```python" in c for c in code_chunks)
    body = [line for c in chunks for line in c.split("\n") if line.startswith("print(")]
    assert body == [f"print({i})" for i in range(400)]


def test_display_math_block_is_not_cut() -> None:
    math = "$$\n" + "\n".join(["a + b + c + d"] * 30) + "\n$$"
    text = "x" * 1800 + "\n" + math
    chunks = split_message(text)
    assert any(c.startswith("$$") and c.rstrip().endswith("$$") for c in chunks)


def test_one_huge_line_is_cut_at_spaces() -> None:
    text = " ".join(["word"] * 1000)
    chunks = split_message(text)
    assert all(len(c) <= MESSAGE_CHARS for c in chunks)
    assert " ".join(chunks).split() == text.split()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="ab $\\[]`", max_size=300),
            st.just("```"),
            st.just("```py"),
            st.just("$$"),
        ),
        max_size=60,
    ),
    st.integers(min_value=40, max_value=500),
)
def test_any_text_gives_bounded_nonempty_chunks(lines: list[str], limit: int) -> None:
    for chunk in split_message("\n".join(lines), limit):
        assert chunk.strip()
        assert len(chunk) <= limit
