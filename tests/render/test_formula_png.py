"""Display math drawn as PNG: `render_latex_png`."""

from __future__ import annotations

import io
import struct
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.render import formula_png
from bot.render.formula_png import MAX_PNG_HEIGHT, MAX_PNG_WIDTH, render_latex_png
from tests.render.samples import PNG_SIGNATURE, QUADRATIC

DISCORD_DARK = (0x31 / 255, 0x33 / 255, 0x38 / 255)  # chat background, dark theme
DISCORD_LIGHT = (1.0, 1.0, 1.0)  # chat background, light theme


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


HOSTILE_LATEX = {
    # (latex, refused before any drawing: by its length or its brace nesting)
    "deep braces": ("{" * 5000 + "x" + "}" * 5000, True),
    "deep braces within the length cap": ("{" * 400 + "x" + "}" * 400, True),
    "open braces": ("{" * 5000, True),
    "open fractions": ("\\frac{" * 900, True),
    "nested left": ("\\left(" * 160, False),  # no braces: mathtext itself must refuse it
    "backslashes": ("\\" * 999, False),
}


@pytest.mark.parametrize(("latex", "refused_early"), HOSTILE_LATEX.values(), ids=HOSTILE_LATEX)
def test_hostile_latex_does_not_crash_the_renderer(
    latex: str, refused_early: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hostile LaTeX gives None; what the cheap checks can see never reaches mathtext's layout
    (how fast the rest fails is measured in bench/bench_mathtext.py, not here)."""
    drawn: list[int] = []
    real_render = formula_png._render

    def counting_render(lines: list[tuple[str, str]], dpi: float) -> bytes | None:
        drawn.append(len(lines))
        return real_render(lines, dpi)

    monkeypatch.setattr(formula_png, "_render", counting_render)
    assert render_latex_png(latex) is None
    assert (drawn == []) is refused_early
