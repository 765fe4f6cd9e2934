"""An answer made ready for Discord: `prepare_answer`, its images and its text."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from bot.render import answer as answer_module
from bot.render import spans as spans_module
from bot.render import unicode as unicode_module
from bot.render.answer import PreparedAnswer, prepare_answer
from bot.render.discord_limits import ATTACHMENTS_PER_MESSAGE
from bot.render.formula_png import render_latex_png
from bot.render.unicode import to_discord_text
from tests.render.samples import PNG_SIGNATURE, QUADRATIC, ROOTS
from tests.render.test_hostile_text import lines_run

DISCORD_ATTACHMENTS_PER_MESSAGE = 10  # Discord's limit of files on one message


def test_prepare_answer_attaches_images_and_converts_inline() -> None:
    answer = prepare_answer(
        "For $a \\ne 0$ the roots are\n$$" + QUADRATIC + "$$\nand `$code$` stays."
    )
    assert isinstance(answer, PreparedAnswer)
    assert answer.text == "For a ≠ 0 the roots are\n[formula 1]\nand `$code$` stays."
    assert [i.name for i in answer.images] == ["formula-1.png"]
    assert answer.images[0].png[:8] == PNG_SIGNATURE
    with pytest.raises(dataclasses.FrozenInstanceError):
        answer.text = "changed"  # type: ignore[misc]


def test_prepare_answer_keeps_unrenderable_latex_as_a_code_block() -> None:
    matrix = r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}"
    answer = prepare_answer(f"Matrix:\n$${matrix}$$\nthen \\[x^2\\] and $y^2$.")
    assert answer.text == f"Matrix:\n```latex\n{matrix}\n```\nthen\n[formula 1]\nand y²."
    assert [i.name for i in answer.images] == ["formula-1.png"]


def test_prepare_answer_caps_images_and_keeps_the_rest_as_source() -> None:
    cap = ATTACHMENTS_PER_MESSAGE  # one Discord message's worth of images
    text = "\n".join(f"$$x^{{{i}}}$$" for i in range(cap + 2))
    answer = prepare_answer(text)
    assert [i.name for i in answer.images] == [f"formula-{i}.png" for i in range(1, cap + 1)]
    lines = answer.text.split("\n")
    assert lines[:cap] == [f"[formula {i}]" for i in range(1, cap + 1)]
    assert lines[cap:] == ["```latex", "x^{10}", "```", "```latex", "x^{11}", "```"]


def test_prepare_answer_code_blocks_stay_well_formed() -> None:
    text = (
        "```python\nprint('$$x$$')\n```\n"
        "Now $$\\undefined{x}$$ and $$\\begin{cases} 1 \\end{cases}$$ end `$$y$$`."
    )
    answer = prepare_answer(text)
    fences = [line for line in answer.text.split("\n") if line.startswith("```")]
    assert fences == ["```python", "```", "```latex", "```", "```latex", "```"]
    assert answer.text.endswith("```\nend `$$y$$`.")
    assert answer.images == ()


def test_prepare_answer_without_math() -> None:
    assert prepare_answer("4") == PreparedAnswer(text="4", images=())


def test_prepare_answer_both_syntaxes_multiline_and_numbered() -> None:
    answer = prepare_answer(ROOTS)
    assert answer.text == "The roots are\n[formula 1]\nand also\n[formula 2]\nwhere a ≠ 0."
    assert [i.name for i in answer.images] == ["formula-1.png", "formula-2.png"]


def test_prepare_answer_mid_line_blocks_get_lines_of_their_own() -> None:
    answer = prepare_answer("We get $$x=2$$ so \\[y = 3\\] holds.")
    assert answer.text == "We get\n[formula 1]\nso\n[formula 2]\nholds."


def test_prepare_answer_adjacent_blocks_and_text_edges() -> None:
    answer = prepare_answer("$$a$$$$b$$")
    assert answer.text == "[formula 1]\n[formula 2]"
    assert [i.name for i in answer.images] == ["formula-1.png", "formula-2.png"]


def test_prepare_answer_ignores_code_and_unclosed_or_empty_blocks() -> None:
    text = (
        "```\n$$inside code$$\n```\n`\\[inline code\\]`\n$$ $$ empty, \\[ unclosed, $$ unclosed too"
    )
    assert prepare_answer(text) == PreparedAnswer(text=text, images=())


HOSTILE = {
    "nested braces": "$" + "{" * 5000 + "x" + "}" * 5000 + "$",
    "open braces": "$$" + "{" * 5000 + "$$",
    "50k dollars": "$" * 50_000,
    "50k inline": "$a$ " * 12_500,
    "50k unclosed": "\\[" * 25_000,
    "50k backticks": "`a " * 17_000,
    "50k mixed": ("Let $x^2$ be `c` and $$y$$ \\(z\\) for $5 and $10. " * 1000)[:50_000],
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_draws_at_most_one_messages_worth(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many formulas a hostile answer holds, at most `ATTACHMENTS_PER_MESSAGE` are
    drawn (a clock that never moves takes the time budget out of play; the time itself is
    measured in bench/bench_mathtext.py)."""
    drawn: list[str] = []

    def counting_render(latex: str) -> bytes | None:
        drawn.append(latex)
        return render_latex_png(latex)

    monkeypatch.setattr("bot.render.answer.render_latex_png", counting_render)
    answer = prepare_answer(text, clock=lambda: 0.0)
    assert isinstance(to_discord_text(text), str)
    assert len(drawn) <= DISCORD_ATTACHMENTS_PER_MESSAGE
    assert len(answer.images) <= DISCORD_ATTACHMENTS_PER_MESSAGE
    if text == HOSTILE["50k mixed"]:  # 1,000 formulas `$$y$$`: ten drawn, the rest as code
        assert len(drawn) == len(answer.images) == DISCORD_ATTACHMENTS_PER_MESSAGE
        assert answer.text.count("```latex\ny\n```") == text.count("$$y$$") - len(drawn)


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_work_grows_linearly(text: str) -> None:
    """Python lines run in the answer's modules for half the text and for all of it: a count
    of work that does not depend on the machine's speed or load (quadratic work would be 4x)."""
    modules = (answer_module, unicode_module, spans_module)

    def prepare(t: str) -> PreparedAnswer:
        return prepare_answer(t, clock=lambda: 0.0)

    half = lines_run(prepare, text[: len(text) // 2], modules)
    full = lines_run(prepare, text, modules)
    assert full <= 2.2 * half + 100, (half, full)


def test_import_is_light_and_discord_free() -> None:
    code = (
        "import sys, bot.render.answer, bot.render.formula_png, bot.render.spans\n"
        "import bot.render.unicode, bot.render.discord_limits\n"
        "heavy = ('matplotlib', 'pylatexenc', 'unicodeit', 'discord', 'numpy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_formula_images_share_a_time_budget_per_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each drawing takes 1 s on a clock the test controls; a 2.5 s budget draws two images,
    shows the formula that overran (drawn from 2 s to 3 s) and every later one as code."""
    now = [0.0]

    def slow_render(latex: str) -> bytes:
        now[0] += 1.0
        return PNG_SIGNATURE + latex.encode()

    monkeypatch.setattr("bot.render.answer.render_latex_png", slow_render)
    text = "\n".join(f"$$x^{{{i}}}$$" for i in range(5))
    answer = prepare_answer(text, budget=2.5, clock=lambda: now[0])
    assert [i.name for i in answer.images] == ["formula-1.png", "formula-2.png"]
    lines = answer.text.split("\n")
    assert lines[:2] == ["[formula 1]", "[formula 2]"]
    assert answer.text.count("```latex") == 3
    assert "x^{2}" in answer.text and "x^{4}" in answer.text
    assert now[0] == 3.0  # nothing drawn once the budget was spent


def test_formula_budget_holds_with_real_drawings() -> None:
    """A zero budget draws nothing: every formula is shown as its source."""
    answer = prepare_answer("$$" + QUADRATIC + "$$", budget=0.0)
    assert answer.images == ()
    assert answer.text == f"```latex\n{QUADRATIC}\n```"
