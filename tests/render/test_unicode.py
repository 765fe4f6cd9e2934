"""Inline LaTeX to Unicode: `to_discord_text`."""

from __future__ import annotations

import pytest

from bot.render.unicode import to_discord_text

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
