"""Display math -> PNG: formulas drawn with matplotlib's mathtext (Agg, no pyplot) on a card."""

from __future__ import annotations

import io
import logging
import re
import threading
from functools import cache
from typing import Any

from .spans import brace_depth

__all__ = ["MAX_LATEX_CHARS", "MAX_PNG_HEIGHT", "MAX_PNG_WIDTH", "render_latex_png"]

log = logging.getLogger(__name__)

MAX_LATEX_CHARS = 1000  # longer display math is not rendered (kept as source)
MAX_PNG_WIDTH = 2000  # pixels; wider formulas are rendered at a lower dpi, or not at all
MAX_PNG_HEIGHT = 1000
MIN_DPI = 72  # below this a formula that is too big for the caps is not worth rendering
_MAX_RENDER_NESTING = 20  # deeper brace nesting: display math not rendered

_FONT_POINTS = 12.0  # at dpi 200 an em is 33 px: about twice Discord's chat text
_PAD = 0.55  # padding around the formula, in ems
_LINE_GAP = 0.45  # between lines of a multi-line formula, in ems
_INK = "#1b1d21"  # near-black text ...
_CARD = "#ffffff"  # ... on an opaque white card ...
_EDGE = "#c4c9d0"  # ... with a grey edge so the card stands out on Discord's light theme too
_MATH_FONT = "dejavusans"  # sturdier strokes than Computer Modern at chat sizes

_RENDER_LOCK = threading.Lock()  # matplotlib's font objects are not thread-safe

# Multi-line environments whose lines can be rendered one by one (`&` aligns them).
_ALIGNMENTS = (
    "aligned", "align", "alignat", "alignedat", "gather", "gathered", "split", "equation",
    "multline", "eqnarray", "flalign",
)  # fmt: skip
_ENVIRONMENT = re.compile(r"\\(begin|end)\s*\{([A-Za-z]+)\*?\}")
_WORD = r"(?![A-Za-z])"
_MATHTEXT_FIXES: tuple[tuple[str, str], ...] = (
    (r"\\(?:label|tag)\*?\s*\{[^{}]*\}", ""),
    (r"\\(?:color|textcolor|colorbox)\s*\{[^{}]*\}", ""),
    (r"\\(?:nonumber|notag|displaystyle|textstyle|scriptstyle|scriptscriptstyle)" + _WORD, ""),
    (r"\\(?:limits|nolimits|displaylimits|middle)" + _WORD, ""),
    (r"\\(?:big|Big|bigg|Bigg)[lrm]?" + _WORD, ""),
    (r"\\(?:boxed|mathop|mathrel|mathbin|mathord|overbrace|underbrace|fbox)" + _WORD, ""),
    (r"\\[tc]frac" + _WORD, r"\\frac"),
    (r"\\[dt]binom" + _WORD, r"\\binom"),
    (r"\\(frac|dfrac|binom)\s*([0-9A-Za-z])\s*([0-9A-Za-z])", r"\\\1{\2}{\3}"),
    (r"\\operatorname\*", r"\\operatorname"),
    (
        r"\\(?:textrm|textnormal|textup|textit|textbf|textsf|texttt|mbox|hbox|emph)" + _WORD,
        r"\\text",
    ),
    (r"\\bm" + _WORD, r"\\boldsymbol"),
    (r"\\[lr]?vert" + _WORD, "|"),
    (r"\\[lr]Vert" + _WORD, r"\\Vert"),
    (r"\\le" + _WORD, r"\\leq"),
    (r"\\ge" + _WORD, r"\\geq"),
    (r"\\land" + _WORD, r"\\wedge"),
    (r"\\lor" + _WORD, r"\\vee"),
    (r"\\lnot" + _WORD, r"\\neg"),
    (r"\\gets" + _WORD, r"\\leftarrow"),
    (r"\\implies" + _WORD, r"\\Longrightarrow"),
    (r"\\impliedby" + _WORD, r"\\Longleftarrow"),
    (r"\\iff" + _WORD, r"\\Longleftrightarrow"),
    (r"\\coloneqq" + _WORD, ":="),
    (r"\\dots[bcmio]" + _WORD, r"\\dots"),
    (r"\\(?:square|Box|qed)" + _WORD, r"\\text{□}"),
    (r"\\&", r"\\text{&}"),
    (r"\\pmod\s*\{([^{}]*)\}", r"\\;(\\mathrm{mod}\\ \1)"),
    (r"\\pmod\s*([0-9A-Za-z])", r"\\;(\\mathrm{mod}\\ \1)"),
    (r"\\[bp]?mod" + _WORD, r"\\ \\mathrm{mod}\\ "),
    (r"\\stackrel" + _WORD, r"\\overset"),
    (r"\\xrightarrow\s*\{([^{}]*)\}", r"\\overset{\1}{\\longrightarrow}"),
    (r"\\xleftarrow\s*\{([^{}]*)\}", r"\\overset{\1}{\\longleftarrow}"),
)


@cache
def _mathtext_fixes() -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(pattern), replacement) for pattern, replacement in _MATHTEXT_FIXES)


_FRAC_OR_BRACE = re.compile(r"\\frac(?![A-Za-z])|\\.|[{}]")


def _display_fractions(latex: str) -> str:
    """`\\frac` outside any braces as `\\dfrac`: full-size fractions, as in LaTeX's display
    style (fractions inside scripts and nested fractions stay small)."""
    out: list[str] = []
    depth = pos = 0
    for match in _FRAC_OR_BRACE.finditer(latex):
        token = match.group()
        depth += (token == "{") - (token == "}")
        if token == "\\frac" and depth == 0:
            out.append(latex[pos : match.start()] + "\\dfrac")
            pos = match.end()
    out.append(latex[pos:])
    return "".join(out)


def _mathtext_lines(latex: str) -> list[tuple[str, str]] | None:
    """`latex` as mathtext-ready lines, each split at its `&` into (left, right), or None."""
    latex = latex.strip()
    if not latex or len(latex) > MAX_LATEX_CHARS:
        return None
    depth = brace_depth(latex)
    if depth is None or depth > _MAX_RENDER_NESTING:
        return None
    for pattern, replacement in _mathtext_fixes():
        latex = pattern.sub(replacement, latex)
    latex = _display_fractions(latex)
    for match in _ENVIRONMENT.finditer(latex):
        if match.group(2) not in _ALIGNMENTS:
            return None  # matrices, cases, arrays: mathtext has no tabular layout
    latex = _ENVIRONMENT.sub(" ", latex)
    latex = re.sub(r"(\\\\)\s*\{\s*[0-9A-Za-z]\s*\}", r"\1", latex)  # alignat's {2}
    lines: list[tuple[str, str]] = []
    for raw in re.split(r"\\\\(?:\s*\[[^\]]*\])?", latex):
        line = raw.strip()
        if not line:
            continue
        left, amp, right = line.partition("&")
        right = right.replace("&", r"\quad ")
        if amp:
            left, right = left.strip(), right.strip()
            right = "{}" + right if right else right  # keep a relation's spacing after `&`
        else:
            left, right = "", left
        for part in (left, right):
            if brace_depth(part) is None:
                return None  # a group cut by a line break
        lines.append((left, right))
    return lines or None


@cache
def _mathtext() -> tuple[Any, Any]:
    """A mathtext parser (it caches layouts) and the font properties for formulas."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    return MathTextParser("path"), FontProperties(size=_FONT_POINTS, math_fontfamily=_MATH_FONT)


def _render(lines: list[tuple[str, str]], dpi: float) -> bytes | None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    parser, prop = _mathtext()

    def measure(part: str) -> tuple[float, float, float]:
        """(width, ascent, descent) in points."""
        if not part:
            return 0.0, 0.0, 0.0
        width, height, depth, _, _ = parser.parse(f"${part}$", dpi=72, prop=prop)
        return width, height - depth, depth

    sizes = [(measure(left), measure(right)) for left, right in lines]
    aligned = any(left for left, _ in lines)
    column = max(left[0] for left, _ in sizes)  # x of the `&` alignment point
    widths = [column + right[0] if aligned else right[0] for _, right in sizes]
    ascents = [max(left[1], right[1]) for left, right in sizes]
    descents = [max(left[2], right[2]) for left, right in sizes]
    em = _FONT_POINTS
    pad, gap = _PAD * em, _LINE_GAP * em
    width_pt = max(widths) + 2 * pad
    height_pt = sum(ascents) + sum(descents) + gap * (len(lines) - 1) + 2 * pad
    scale = min(dpi, MAX_PNG_WIDTH * 72 / width_pt, MAX_PNG_HEIGHT * 72 / height_pt)
    if scale < MIN_DPI:
        return None  # legible only beyond the size cap
    # Whole pixels, rounded down, so that the cap holds exactly.
    width_px, height_px = int(width_pt * scale / 72), int(height_pt * scale / 72)
    fig = Figure(figsize=(width_px / scale, height_px / scale), dpi=scale, facecolor="none")
    FigureCanvasAgg(fig)
    to_inches = fig.dpi_scale_trans
    inch = 1 / 72
    edge = 0.8  # points
    w_in, h_in = width_px / scale, height_px / scale
    fig.add_artist(
        FancyBboxPatch(
            (edge * inch, edge * inch),
            w_in - 2 * edge * inch,
            h_in - 2 * edge * inch,
            boxstyle=f"round,pad=0,rounding_size={0.45 * em * inch}",
            transform=to_inches,
            facecolor=_CARD,
            edgecolor=_EDGE,
            linewidth=edge,
        )
    )

    def draw(x_pt: float, y_in: float, part: str) -> None:
        fig.text(
            x_pt * inch, y_in, f"${part}$", fontproperties=prop, color=_INK, transform=to_inches
        )

    y = h_in - pad * inch
    inner = (w_in - 2 * pad * inch) * 72  # points available for the widest line
    for (left, right), (l_size, _), line_width, ascent, descent in zip(
        lines, sizes, widths, ascents, descents, strict=True
    ):
        y -= ascent * inch
        x0 = pad + (0.0 if aligned else (inner - line_width) / 2)
        if left:
            draw(x0 + column - l_size[0], y, left)
        if right:
            draw(x0 + (column if aligned else 0.0), y, right)
        y -= (descent + gap) * inch
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=scale, facecolor="none", metadata={"Software": None})
    return buffer.getvalue()


def render_latex_png(latex: str, *, dpi: int = 200) -> bytes | None:
    """Render display math as a PNG, locally, with matplotlib's mathtext; None if it can't.

    The image is dark ink on an opaque white card with rounded corners and a grey edge, so it
    reads the same on Discord's dark and light themes. Input longer than `MAX_LATEX_CHARS`,
    nested deeper than 20 braces, or using what mathtext lacks (matrices, `cases`, unknown
    macros) gives None; common gaps are bridged first (`\\left`/`\\right` sizes, `\\dfrac`,
    `\\text`-likes, `\\le`, `\\implies`, `\\pmod`, …) and `aligned`/`align`/`gather` lines are
    stacked, aligned at their `&`. The image fits `MAX_PNG_WIDTH` x `MAX_PNG_HEIGHT` pixels:
    a formula too big at `dpi` is drawn at a lower dpi (down to `MIN_DPI`, else None).

    Safe to call from worker threads (no pyplot; calls are serialised by a lock).
    """
    lines = _mathtext_lines(latex)
    if lines is None:
        return None
    dpi = max(MIN_DPI, min(int(dpi), 600))
    try:
        with _RENDER_LOCK:
            return _render(lines, dpi)
    except Exception:  # mathtext raises ValueError on what it can't parse; any failure -> None
        log.debug("could not render LaTeX %r", latex[:80], exc_info=True)
        return None
