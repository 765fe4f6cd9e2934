"""Math for Discord: inline LaTeX to Unicode, display math extraction and PNG rendering."""

from __future__ import annotations

import dataclasses
import io
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.render.mathtext import (
    MAX_IMAGES,
    MAX_PNG_HEIGHT,
    MAX_PNG_WIDTH,
    PreparedAnswer,
    extract_display_math,
    prepare_answer,
    render_latex_png,
    to_discord_text,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DISCORD_DARK = (0x31 / 255, 0x33 / 255, 0x38 / 255)  # chat background, dark theme
DISCORD_LIGHT = (1.0, 1.0, 1.0)  # chat background, light theme
QUADRATIC = r"x = \frac{-b \pm \sqrt{b^2 - 4ac}}{2a}"


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which must come first."""
    assert png[:8] == PNG_SIGNATURE
    length, chunk = struct.unpack(">I4s", png[8:16])
    assert chunk == b"IHDR" and length == 13
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def pixels(png: bytes):  # -> numpy RGBA floats in [0, 1]
    from matplotlib.image import imread

    return imread(io.BytesIO(png), format="png")


def luminance(rgb) -> float:
    """WCAG relative luminance of an sRGB colour with components in [0, 1]."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(float(c)) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# --- inline LaTeX -> Unicode -------------------------------------------------------------------

INLINE = [
    # powers and subscripts
    ("$x^2$", "x²"),
    ("$x^{10}$", "x¹⁰"),
    ("$A^{-1}$", "A⁻¹"),
    ("$A^T$", "Aᵀ"),
    ("$x_n$", "xₙ"),
    ("$x_{n+1}$", "xₙ₊₁"),
    ("$a_{ij}$", "aᵢⱼ"),
    ("$e^{i\\pi} + 1 = 0$", "e^(iπ) + 1 = 0"),  # no superscript π: readable fallback
    ("$x_q$", "x\\_q"),  # no subscript q; `_` escaped for Discord
    ("$\\theta = 45^\\circ$", "θ = 45°"),
    # roots
    ("$\\sqrt{2}$", "√2"),
    ("$\\sqrt{x+1}$", "√(x+1)"),
    ("$\\sqrt[3]{8} = 2$", "∛8 = 2"),
    ("$\\sqrt{a^2+b^2}$", "√(a²+b²)"),
    # fractions
    ("$\\frac{1}{2}$", "1/2"),
    ("$\\frac{x+1}{2}$", "(x+1)/2"),
    ("$\\frac{a+b}{c+d}$", "(a+b)/(c+d)"),
    ("$\\frac{1}{2x}$", "1/(2x)"),
    ("$\\frac{dy}{dx}$", "dy/dx"),
    ("$\\dfrac{\\pi}{2}$", "π/2"),
    ("$\\tfrac12$", "1/2"),
    ("$\\left(\\frac{a}{b}\\right)^2$", "(a/b)²"),
    ("$\\frac{a}{b}^2$", "(a/b)²"),
    # Greek, relations, operators
    ("$\\alpha + \\beta = \\gamma$", "α + β = γ"),
    ("$\\Delta x \\to 0$", "Δx → 0"),
    ("$a \\le b$", "a ≤ b"),
    ("$a\\geq b$", "a ≥ b"),
    ("$a \\neq b$", "a ≠ b"),
    ("$a \\not= b$", "a ≠ b"),
    ("$0 < x \\leq 1$", "0 < x ≤ 1"),
    ("$x = 2 \\pm 1$", "x = 2 ± 1"),
    ("$a \\cdot b$", "a · b"),
    ("$2\\times 3 = 6$", "2×3 = 6"),
    ("$x \\to \\infty$", "x → ∞"),
    ("$p \\implies q$", "p ⟹ q"),
    ("$x \\approx 3.14$", "x ≈ 3.14"),
    ("$x \\equiv 1 \\pmod{3}$", "x ≡ 1 (mod 3)"),
    # sums, integrals, limits, functions
    ("$\\sum_{i=1}^{n} i$", "∑ᵢ₌₁ⁿ i"),
    ("$\\prod_{k=1}^n k = n!$", "∏ₖ₌₁ⁿ k = n!"),
    ("$\\int_0^1 f(x)\\,dx$", "∫₀¹ f(x) dx"),
    ("$\\int x\\,dx$", "∫ x dx"),
    ("$\\lim_{x\\to 0} \\frac{\\sin x}{x} = 1$", "lim\\_(x→0) (sin x)/x = 1"),
    ("$\\sin^2 x + \\cos^2 x = 1$", "sin² x + cos² x = 1"),
    ("$\\log_2 n$", "log₂ n"),
    ("$\\ln(x)$", "ln(x)"),
    ("$\\operatorname{sgn} x$", "sgn x"),
    ("$\\frac{\\partial f}{\\partial x}$", "∂f/∂x"),
    # sets and fonts
    ("$x \\in \\mathbb{R}$", "x ∈ ℝ"),
    ("$\\mathbb{R}^n$", "ℝⁿ"),
    ("$\\{x \\in \\mathbb{Z} : x^2 < 10\\}$", "{x ∈ ℤ : x² < 10}"),
    ("$A \\cup B = \\emptyset$", "A ∪ B = ∅"),
    ("$A \\subseteq B$", "A ⊆ B"),
    ("$x \\notin A$", "x ∉ A"),
    ("$\\mathcal{O}(n \\log n)$", "𝒪(n log n)"),
    ("$\\mathbf{v}$", "𝐯"),
    # delimiters, text, accents, misc
    ("$\\left( x + 1 \\right)$", "(x + 1)"),
    ("$\\lvert x \\rvert$", "|x|"),
    ("$\\langle u, v \\rangle$", "⟨u, v⟩"),
    ("$f(x) = 1 \\text{ if } x > 0$", "f(x) = 1 if x > 0"),
    ("$x_{\\text{max}}$", "xₘₐₓ"),
    ("$\\hat{x}$", "x̂"),
    ("$\\binom{n}{k}$", "C(n, k)"),
    ("$x_1, x_2, \\ldots, x_n$", "x₁, x₂, …, xₙ"),
    ("$50\\%$", "50%"),
    ("$z^*$", "z\\*"),  # Discord shows `z*`
    ("\\(x^2 + y^2 = z^2\\)", "x² + y² = z²"),
    # mixed prose
    (
        "The area is $A = \\pi r^2$, so for $r = 2$ we get $A = 4\\pi \\approx 12.57$.",
        "The area is A = πr², so for r = 2 we get A = 4π ≈ 12.57.",
    ),
    (
        "Since \\(n \\ge 1\\), the sum $\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$ holds.",
        "Since n ≥ 1, the sum ∑ₖ₌₁ⁿ k = n(n+1)/2 holds.",
    ),
]


@pytest.mark.parametrize(("source", "expected"), INLINE)
def test_inline_conversion(source: str, expected: str) -> None:
    assert to_discord_text(source) == expected


@pytest.mark.parametrize(
    "text",
    [
        "It costs $5 and $10.",
        "It costs $5, or $10 with tax.",
        "From $3.50 to $4.75.",
        "Pay $5-$10 each.",
        "Prices: $20 (or US$25).",
        "Save $1,000 today; $2,000 tomorrow.",
        "A lone $ sign, and $ spaced $ dollars.",
        "Escaped \\$x\\$ stays.",
        "Trailing $x $ and leading $ x$ spaces are not math.",
        "$x$5 is not closed by a dollar before a digit.",
        "No paragraph crossing: $x\n\ny$.",
        "Plain prose with *Markdown* and no math at all.",
        "",
    ],
)
def test_prose_without_math_is_untouched(text: str) -> None:
    assert to_discord_text(text) == text


def test_money_next_to_math() -> None:
    assert to_discord_text("I paid $5 and you paid $x$.") == "I paid $5 and you paid x."
    assert to_discord_text("Between $5 and $10, choose $n$.") == "Between $5 and $10, choose n."


def test_code_is_untouched() -> None:
    text = (
        "Use `$x^2$` in LaTeX, or ``$a_b$``.\n"
        "```latex\n$\\frac{1}{2}$ and $$x$$\n```\n"
        "~~~\n$y^2$\n~~~\n"
        "But $x^2$ here."
    )
    expected = text.replace("But $x^2$ here.", "But x² here.")
    assert to_discord_text(text) == expected


def test_unclosed_code_block_protects_the_rest() -> None:
    text = "Then $x^2$:\n```\n$y^2$ and more"
    assert to_discord_text(text) == "Then x²:\n```\n$y^2$ and more"


def test_display_math_is_left_for_prepare_answer() -> None:
    text = "Inline $x^2$ and\n$$y^2$$\nand \\[z_1\\]."
    assert to_discord_text(text) == "Inline x² and\n$$y^2$$\nand \\[z_1\\]."


def test_markdown_characters_in_formulas_are_escaped() -> None:
    assert to_discord_text("$a*b$ and $c*d$") == "a\\*b and c\\*d"
    assert to_discord_text("$x_q$ and $y_q$") == "x\\_q and y\\_q"


@pytest.mark.parametrize(
    "text",
    [
        "$\\frac{a$",  # unbalanced braces
        "$\\begin{pmatrix} a$",  # unclosed environment
        "$\\sqrt[$",
        "$" + "x" * 3000 + "$",  # too long
        "$" + "{" * 60 + "x" + "}" * 60 + "$",  # too deeply nested
    ],
)
def test_malformed_or_oversized_inline_math_is_left_as_it_is(text: str) -> None:
    assert to_discord_text(text) == text


def test_unknown_macros_stay_readable() -> None:
    assert to_discord_text("$\\foo{x} + 1$") == "\\foo{x} + 1"


# --- display math extraction -------------------------------------------------------------------


def test_extract_both_syntaxes_multiline_and_numbered() -> None:
    text = (
        "The roots are\n"
        "$$\n"
        "x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}\n"
        "$$\n"
        "and also\n"
        "\\[\n"
        "\\begin{aligned}\n"
        "a &= b \\\\\n"
        "  &= c\n"
        "\\end{aligned}\n"
        "\\]\n"
        "where $a \\ne 0$."
    )
    out, formulas = extract_display_math(text)
    assert formulas == [
        "x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}",
        "\\begin{aligned}\na &= b \\\\\n  &= c\n\\end{aligned}",
    ]
    assert out == "The roots are\n[formula 1]\nand also\n[formula 2]\nwhere $a \\ne 0$."


def test_extract_mid_line_blocks_get_lines_of_their_own() -> None:
    out, formulas = extract_display_math("We get $$x=2$$ so \\[y = 3\\] holds.")
    assert formulas == ["x=2", "y = 3"]
    assert out == "We get\n[formula 1]\nso\n[formula 2]\nholds."


def test_extract_adjacent_blocks_and_text_edges() -> None:
    out, formulas = extract_display_math("$$a$$$$b$$")
    assert (out, formulas) == ("[formula 1]\n[formula 2]", ["a", "b"])


def test_extract_ignores_code_and_unclosed_or_empty_blocks() -> None:
    text = (
        "```\n$$inside code$$\n```\n`\\[inline code\\]`\n$$ $$ empty, \\[ unclosed, $$ unclosed too"
    )
    out, formulas = extract_display_math(text)
    assert formulas == []
    assert out == text


def test_extract_without_math_changes_nothing() -> None:
    text = "Just text with $5 and $x$ inline."
    assert extract_display_math(text) == (text, [])


# --- PNG rendering -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quadratic_png() -> bytes:
    png = render_latex_png(QUADRATIC)
    assert png is not None
    return png


def test_render_gives_a_valid_png_within_the_cap(quadratic_png: bytes) -> None:
    width, height = png_size(quadratic_png)
    assert 100 < width <= MAX_PNG_WIDTH
    assert 40 < height <= MAX_PNG_HEIGHT
    assert width > height  # one line of math
    assert pixels(quadratic_png).shape == (height, width, 4)


def test_render_has_dark_ink_on_an_opaque_light_card(quadratic_png: bytes) -> None:
    img = pixels(quadratic_png)
    alpha = img[..., 3]
    opaque = alpha > 0.99
    assert opaque.mean() > 0.9  # the card fills the image (only the corners are transparent)
    assert alpha[0, 0] < 0.01 and alpha[-1, -1] < 0.01  # rounded, transparent corners
    lum = img[..., :3].mean(axis=2)
    ink = opaque & (lum < 0.35)
    card = opaque & (lum > 0.97)
    assert 0.02 < ink.mean() < 0.5  # real content: not blank, not a black box
    assert card.mean() > 0.4  # mostly white card
    # Dark ink on white: contrast far above WCAG AAA (7:1) whatever Discord's theme.
    darkest = img[ink][:, :3].min(axis=0)
    assert contrast(darkest, (1.0, 1.0, 1.0)) > 12


@pytest.mark.parametrize("background", [DISCORD_DARK, DISCORD_LIGHT], ids=["dark", "light"])
def test_render_is_legible_on_both_discord_themes(quadratic_png: bytes, background) -> None:
    import numpy as np

    img = pixels(quadratic_png)
    alpha = img[..., 3:4]
    shown = img[..., :3] * alpha + np.asarray(background) * (1 - alpha)  # as Discord shows it
    lum = shown.mean(axis=2)
    h, w = lum.shape
    inner = lum[h // 4 : 3 * h // 4, w // 10 : 9 * w // 10]
    assert contrast((inner.max(),) * 3, (inner.min(),) * 3) > 12  # ink vs card
    # The card's edge stands out from the theme's background (grey edge on light, white on dark).
    edge = shown[h // 2, :4].mean(axis=0)
    assert contrast(edge, background) > 1.3


def test_render_dpi_scales_the_image() -> None:
    small = render_latex_png("x^2 + y^2", dpi=100)
    large = render_latex_png("x^2 + y^2", dpi=300)
    assert small is not None and large is not None
    (w1, h1), (w2, h2) = png_size(small), png_size(large)
    assert w2 == pytest.approx(3 * w1, rel=0.1) and h2 == pytest.approx(3 * h1, rel=0.1)


def test_render_huge_formula_is_scaled_down_to_the_cap() -> None:
    png = render_latex_png(" + ".join(f"x_{{{i}}}" for i in range(40)), dpi=600)
    assert png is not None
    width, height = png_size(png)
    assert width <= MAX_PNG_WIDTH and height <= MAX_PNG_HEIGHT
    assert width > MAX_PNG_WIDTH * 0.9  # scaled to fit, not shrunk more than needed


def test_render_normalises_what_mathtext_lacks() -> None:
    for latex in [
        r"\left| \frac{a}{b} \right| \le 1 \implies a \ne b",
        r"\dfrac{1}{2} + \tfrac{1}{3} \bigl( x \bigr)",
        r"\text{Area} = \pi r^2 \tag{1}",
        r"\operatorname*{arg\,max}_x f(x) \quad x \equiv 1 \pmod{3}",
        r"\lVert v \rVert \gets \boxed{x} \land \lnot y \iff \displaystyle\sum\limits_i i",
    ]:
        assert render_latex_png(latex) is not None, latex


def test_render_aligned_lines_stack() -> None:
    one = render_latex_png(r"f(x) = (x+1)^2")
    two = render_latex_png(r"\begin{aligned} f(x) &= (x+1)^2 \\ &= x^2 + 2x + 1 \end{aligned}")
    assert one is not None and two is not None
    assert png_size(two)[1] > 1.6 * png_size(one)[1]


@pytest.mark.parametrize(
    "latex",
    [
        r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}",  # no arrays in mathtext
        r"f(x) = \begin{cases} x & x \ge 0 \\ -x & x < 0 \end{cases}",
        r"\undefinedmacro{x}",
        r"\frac{1}{2",  # unbalanced
        "x^",
        "",
        "x" * 1001,  # over MAX_LATEX_CHARS
    ],
)
def test_unrenderable_latex_gives_none(latex: str) -> None:
    assert render_latex_png(latex) is None


def test_render_is_thread_safe(quadratic_png: bytes) -> None:
    formulas = [QUADRATIC, r"\int_0^1 x^2\,dx = \frac{1}{3}", r"\sum_{n=1}^\infty 2^{-n} = 1"] * 4
    expected = {latex: render_latex_png(latex) for latex in set(formulas)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(render_latex_png, formulas))
    assert results == [expected[latex] for latex in formulas]
    assert expected[QUADRATIC] == quadratic_png
    assert "matplotlib.pyplot" not in sys.modules  # never touches pyplot's global state


def test_import_is_light_and_discord_free() -> None:
    code = (
        "import sys, bot.render.mathtext\n"
        "heavy = ('matplotlib', 'pylatexenc', 'unicodeit', 'discord', 'numpy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


# --- prepare_answer ----------------------------------------------------------------------------


def test_prepare_answer_attaches_images_and_converts_inline() -> None:
    answer = prepare_answer(
        "For $a \\ne 0$ the roots are\n$$" + QUADRATIC + "$$\nand `$code$` stays."
    )
    assert isinstance(answer, PreparedAnswer)
    assert answer.text == "For a ≠ 0 the roots are\n[formula 1]\nand `$code$` stays."
    assert [name for name, _ in answer.images] == ["formula-1.png"]
    assert answer.images[0][1][:8] == PNG_SIGNATURE
    with pytest.raises(dataclasses.FrozenInstanceError):
        answer.text = "changed"  # type: ignore[misc]


def test_prepare_answer_keeps_unrenderable_latex_as_a_code_block() -> None:
    matrix = r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}"
    answer = prepare_answer(f"Matrix:\n$${matrix}$$\nthen \\[x^2\\] and $y^2$.")
    assert answer.text == f"Matrix:\n```latex\n{matrix}\n```\nthen\n[formula 1]\nand y²."
    assert [name for name, _ in answer.images] == ["formula-1.png"]


def test_prepare_answer_caps_images_and_keeps_the_rest_as_source() -> None:
    text = "\n".join(f"$$x^{{{i}}}$$" for i in range(MAX_IMAGES + 2))
    answer = prepare_answer(text)
    assert [name for name, _ in answer.images] == [
        f"formula-{i}.png" for i in range(1, MAX_IMAGES + 1)
    ]
    lines = answer.text.split("\n")
    assert lines[:MAX_IMAGES] == [f"[formula {i}]" for i in range(1, MAX_IMAGES + 1)]
    assert lines[MAX_IMAGES:] == ["```latex", "x^{10}", "```", "```latex", "x^{11}", "```"]


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


# --- hostile input -----------------------------------------------------------------------------

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
def test_hostile_input_returns_quickly(text: str) -> None:
    start = time.perf_counter()
    converted = to_discord_text(text)
    extracted, formulas = extract_display_math(text)
    answer = prepare_answer(text)
    assert time.perf_counter() - start < 5
    assert isinstance(converted, str) and isinstance(extracted, str)
    assert len(answer.images) <= MAX_IMAGES
    assert all(isinstance(f, str) for f in formulas)


@pytest.mark.parametrize(
    "latex",
    ["{" * 5000 + "x" + "}" * 5000, "{" * 5000, "\\frac{" * 900, "\\left(" * 160, "\\" * 999],
)
def test_hostile_latex_does_not_crash_the_renderer(latex: str) -> None:
    start = time.perf_counter()
    assert render_latex_png(latex) is None
    assert time.perf_counter() - start < 2
