"""Math that reads well on Discord: inline LaTeX as Unicode text, display math as PNG images."""

from __future__ import annotations

import bisect
import io
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = [
    "MAX_IMAGES",
    "MAX_LATEX_CHARS",
    "MAX_PNG_HEIGHT",
    "MAX_PNG_WIDTH",
    "PreparedAnswer",
    "extract_display_math",
    "prepare_answer",
    "render_latex_png",
    "to_discord_text",
    "warm_up_renderer",
]

log = logging.getLogger(__name__)

MAX_IMAGES = 10  # Discord accepts at most 10 attachments per message
MAX_LATEX_CHARS = 1000  # longer display math is not rendered (kept as source)
MAX_PNG_WIDTH = 2000  # pixels; wider formulas are rendered at a lower dpi, or not at all
MAX_PNG_HEIGHT = 1000
MIN_DPI = 72  # below this a formula that is too big for the caps is not worth rendering

_MAX_INLINE_CHARS = 2000  # longer inline math is left as it is
_MAX_NESTING = 40  # deeper brace nesting: inline math left as it is
_MAX_RENDER_NESTING = 20  # deeper brace nesting: display math not rendered

# ---------------------------------------------------------------------------------------------
# Finding code, display math and inline math in Markdown text
# ---------------------------------------------------------------------------------------------

_CODE_START = re.compile(r"`+|^[ \t]*~~~", re.MULTILINE)
_TILDE_FENCE = re.compile(r"^[ \t]*~~~", re.MULTILINE)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _code_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every code block and inline code span, as Discord would show them.

    A run of three or more backticks opens a code block that runs to the next ``` (or to the
    end of the text); a run of one or two backticks is inline code when a run of the same length
    closes it. A `~~~` fence at the start of a line is treated as a code block too, as the
    message splitter does. Linear time: every search starts past the previous one, except at
    most one failed search for a closing run of each length (1 and 2).
    """
    spans: list[tuple[int, int]] = []
    n = len(text)
    pos = 0
    while (opener := _CODE_START.search(text, pos)) is not None:
        start, token = opener.start(), opener.group()
        if token.endswith("~"):
            close = _TILDE_FENCE.search(text, opener.end())
            end = n if close is None else text.find("\n", close.end())
            end = n if end == -1 else end
        elif len(token) >= 3:
            close_at = text.find("```", opener.end())
            end = n if close_at == -1 else close_at + 3
        else:
            match = re.compile(rf"(?<!`)`{{{len(token)}}}(?!`)").search(text, opener.end())
            if match is None:
                pos = opener.end()  # a lone backtick is just a character
                continue
            end = match.end()
        spans.append((start, end))
        pos = end
    return spans


def _outside_code(text: str) -> Iterator[tuple[int, int, bool]]:
    """Cut `text` into consecutive (start, end, is_code) pieces."""
    pos = 0
    for start, end in _code_spans(text):
        if start > pos:
            yield pos, start, False
        yield start, end, True
        pos = end
    if pos < len(text) or not text:
        yield pos, len(text), False


_DISPLAY_OPEN = re.compile(r"(?<!\\)\$\$|\\\[")
_DISPLAY_CLOSE = {"$$": re.compile(r"(?<!\\)\$\$"), "\\[": re.compile(r"\\\]")}


def _display_spans(prose: str) -> list[tuple[int, int, str]]:
    """(start, end, latex) of each display-math block (`$$…$$`, `\\[…\\]`) in code-free text.

    Unclosed and empty blocks are not math. Linear time: the next closer of each kind is
    remembered, so a run of unclosed openers does not rescan the text.
    """
    spans: list[tuple[int, int, str]] = []
    next_close: dict[str, tuple[int, int]] = {}  # opener -> (close start, close end); -1: none
    pos = 0
    while (match := _DISPLAY_OPEN.search(prose, pos)) is not None:
        opener = match.group()
        cached = next_close.get(opener)
        if cached is None or (cached[0] != -1 and cached[0] < match.end()):
            close = _DISPLAY_CLOSE[opener].search(prose, match.end())
            cached = (-1, -1) if close is None else (close.start(), close.end())
            next_close[opener] = cached
        if cached[0] == -1:
            pos = match.end()  # unclosed: left as it is
            continue
        latex = prose[match.end() : cached[0]].strip()
        if latex:
            spans.append((match.start(), cached[1], latex))
        pos = cached[1]
    return spans


# A `$` followed by an amount and a space ("$5 and $10") opens only a formula with math in it.
_MONEY = re.compile(r"\$\d+(?:[.,]\d+)*(?:\s|$)")
_MATH_SIGNAL = re.compile(r"[\\^_{}=<>]")
_INLINE_CANDIDATE = re.compile(r"\\\(|\$")


def _inline_spans(prose: str) -> list[tuple[int, int, str]]:
    """(start, end, latex) of each inline formula (`$…$`, `\\(…\\)`) in display-free prose.

    `$` opens only when followed by a non-space, and closes only when preceded by a non-space
    and not followed by a digit, in the same paragraph. A `$` followed by digits and a space
    (money: "$5 and $10") opens only when the formula has math in it (a command, `^`, `_`,
    braces, `=`, `<`, `>`), so `$0 < x$` is math. A formula has no `$` inside; `\\$` and `$$`
    are never delimiters. Linear-logarithmic in the text length.
    """
    n = len(prose)
    dollars = {
        i
        for i in range(n)
        if prose[i] == "$"
        and (i == 0 or prose[i - 1] not in "\\$")
        and (i + 1 == n or prose[i + 1] != "$")
    }
    closers = sorted(
        i
        for i in dollars
        if i > 0 and not prose[i - 1].isspace() and not (i + 1 < n and prose[i + 1].isdigit())
    )
    breaks = [m.start() for m in _BLANK_LINE.finditer(prose)]

    def same_paragraph(a: int, b: int) -> bool:
        k = bisect.bisect_left(breaks, a)
        return k == len(breaks) or breaks[k] > b

    spans: list[tuple[int, int, str]] = []
    pos = 0
    paren_close = -2  # position of the next `\)` at or after `pos`; -1 when there is none
    while (match := _INLINE_CANDIDATE.search(prose, pos)) is not None:
        start = match.start()
        if match.group() == "$":
            pos = start + 1
            if start not in dollars or start + 1 == n or prose[start + 1].isspace():
                continue
            k = bisect.bisect_right(closers, start + 1)
            if k == len(closers) or not same_paragraph(start, closers[k]):
                continue
            end = closers[k]
            latex = prose[start + 1 : end]
            if "$" in latex or (_MONEY.match(prose, start) and not _MATH_SIGNAL.search(latex)):
                continue
            spans.append((start, end + 1, latex))
            pos = end + 1
            continue
        pos = start + 2
        if paren_close != -1 and paren_close < start:
            paren_close = prose.find("\\)", start + 2)
        if paren_close != -1 and same_paragraph(start, paren_close):
            latex = prose[start + 2 : paren_close]
            if latex.strip():
                spans.append((start, paren_close + 2, latex))
                pos = paren_close + 2
    return spans


# ---------------------------------------------------------------------------------------------
# Inline LaTeX -> Unicode (pylatexenc parses, unicodeit's tables give the symbols)
# ---------------------------------------------------------------------------------------------

_FRACS = {"frac", "dfrac", "tfrac", "cfrac"}
_BINOMS = {"binom", "dbinom", "tbinom"}
_TEXTS = {
    "text", "textrm", "textit", "textbf", "textsf", "texttt", "textnormal", "textup",
    "mbox", "hbox", "emph",
}  # fmt: skip
_FONTS = {
    "mathbb": "mathbb", "mathbf": "mathbf", "boldsymbol": "mathbf", "bm": "mathbf",
    "mathcal": "mathcal", "mathscr": "mathcal", "mathfrak": "mathfrak", "mathsf": "mathsf",
    "mathtt": "mathtt", "mathds": "mathds", "mathrm": "", "mathit": "", "mathnormal": "",
    "mathup": "",
}  # fmt: skip
_FUNCTIONS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh",
    "tanh", "coth", "log", "ln", "lg", "exp", "lim", "liminf", "limsup", "max", "min", "sup",
    "inf", "det", "dim", "ker", "deg", "gcd", "lcm", "arg", "hom", "Pr", "sgn", "tr",
}  # fmt: skip
_SPACES = {
    ",": " ", ":": " ", ";": " ", ">": " ", " ": " ", "quad": " ", "qquad": " ",
    "enspace": " ", "thinspace": " ", "medspace": " ", "thickspace": " ", "space": " ",
    "!": "", "negthinspace": "", "negmedspace": "", "negthickspace": "",
}  # fmt: skip
_SIZES = {
    "left", "right", "middle", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr",
    "biggl", "biggr", "Biggl", "Biggr", "bigm", "Bigm", "biggm", "Biggm",
}  # fmt: skip
_DROPPED = {
    "displaystyle", "textstyle", "scriptstyle", "scriptscriptstyle", "limits", "nolimits",
    "displaylimits", "nonumber", "notag", "label", "tag", "phantom", "hphantom", "vphantom",
    "color",
}  # fmt: skip
_PASS_FIRST = {"boxed", "mathord", "underbrace", "overbrace", "fbox"}
_PASS_SECOND = {"textcolor", "colorbox", "overset", "underset", "stackrel"}
_OPENING = frozenset("([{⟨⌊⌈")
_CLOSING = frozenset(")]}⟩⌋⌉")
_OPENING_MACROS = frozenset({"lvert", "lVert"})
_CLOSING_MACROS = frozenset({"rvert", "rVert"})
_ESCAPED = {"{": "{", "}": "}", "%": "%", "$": "$", "&": "&", "#": "#", "_": "_", "|": "‖"}
_ACCENT_ALIASES = {
    "widehat": "hat", "widetilde": "tilde", "overrightarrow": "vec", "overleftrightarrow": "vec",
}  # fmt: skip
_SYMBOL_OVERRIDES = {
    "cdot": "·", "cdotp": "·", "langle": "⟨", "rangle": "⟩", "lvert": "|", "rvert": "|",
    "vert": "|", "lVert": "‖", "rVert": "‖", "Vert": "‖", "square": "□", "Box": "□",
    "qed": "∎", "dots": "…", "dotsc": "…", "dotsb": "⋯", "dotsm": "⋯", "star": "⋆",
    "ast": "∗", "implies": "⟹", "impliedby": "⟸", "iff": "⟺", "gets": "←", "land": "∧",
    "lnot": "¬", "colon": ":", "coloneqq": ":=", "lbrace": "{", "rbrace": "}", "degree": "°",
    "setminus": "∖", "mid": "∣", "nmid": "∤", "varepsilon": "ε",
    "emptyset": "∅", "varnothing": "∅",
}  # fmt: skip
_RELATIONS = frozenset("=<>≤≥≠≈≡∼≃≅≆∝→←↔⇒⇐⇔⟹⟸⟺⟶⟵⟷↦⟼∈∉∋∌⊂⊃⊆⊇⊊⊋⊄⊅≪≫≺≻⩽⩾≲≳∣∤⊥∥≔≐≜⊢⊨↑↓≮≯≰≱≍⊏⊐⊑⊒∽≼≽")
_BINARIES = frozenset("·×÷±∓∪∩∖∧∨⊕⊖⊗⊘⊙∘⋆∗⊎⊓⊔⋅⋄△▽†‡⨿≀")
_BIG_OPERATORS = frozenset("∑∏∐∫∬∭∮∯∰⋃⋂⨁⨂⨀⋁⋀⨄⨆")
_SUPERSCRIPT_EXTRAS = {"∘": "°", "′": "′", "″": "″", "⊤": "ᵀ", "†": "†", "∗": "*", "V": "ⱽ",
                       "θ": "ᶿ", "ι": "ᶥ", "'": "′"}  # fmt: skip
_SCRIPT_REJECTS = {"<", ">", "."}  # unicodeit maps these to look-alikes that read badly
_PAIRS = {"(": ")", "[": "]", "{": "}", "⟨": "⟩", "|": "|", "‖": "‖", "⌊": "⌋", "⌈": "⌉"}
_ATOM_HEAD = re.compile(r"[\w.′'!∞∂ℏ°\u0300-\u036f\u20d0-\u20ff]+")
_IMPLICIT_PRODUCT = re.compile(r"\d[\d.]*[^\W\d_]")
_MARKDOWN = re.compile(r"[*_`]|~~|\|\|")
_UNESCAPED_PERCENT = re.compile(r"(?<!\\)%")


@cache
def _symbols() -> dict[str, str]:
    """Control word (without backslash) -> Unicode, from unicodeit's table plus a few fixes."""
    from unicodeit.data import REPLACEMENTS

    table = {k[1:]: v for k, v in REPLACEMENTS if re.fullmatch(r"\\[A-Za-z]+", k)}
    table.update(_SYMBOL_OVERRIDES)
    return table


@cache
def _alphabets() -> dict[tuple[str, str], str]:
    """(font, letter) -> styled letter, e.g. ("mathbb", "R") -> "ℝ", from unicodeit."""
    from unicodeit.data import REPLACEMENTS

    table: dict[tuple[str, str], str] = {}
    for key, value in REPLACEMENTS:
        match = re.fullmatch(r"\\(math[a-z]+)\{(.)\}", key)
        if match:
            table[match.group(1), match.group(2)] = value
    return table


@cache
def _scripts() -> tuple[dict[str, str], dict[str, str]]:
    """(superscripts, subscripts): character -> its Unicode super/subscript, from unicodeit."""
    from unicodeit.data import SUBSUPERSCRIPTS

    sup: dict[str, str] = {}
    sub: dict[str, str] = {}
    for key, value in SUBSUPERSCRIPTS:
        if key[1:] not in _SCRIPT_REJECTS:
            (sup if key[0] == "^" else sub)[key[1:]] = value
    sup.update(_SUPERSCRIPT_EXTRAS)
    return sup, sub


@cache
def _combining() -> dict[str, str]:
    """Accent macro -> combining mark (`\\hat` -> U+0302), from unicodeit."""
    from unicodeit.data import COMBININGMARKS

    return {k[1:]: v for k, v in COMBININGMARKS}


@cache
def _latex_context() -> Any:
    """pylatexenc's default macro database, plus the argument shapes of common math macros."""
    from pylatexenc.latexwalker import get_default_latex_context_db
    from pylatexenc.macrospec import MacroSpec

    two = _FRACS | _BINOMS | _PASS_SECOND
    one = (
        _TEXTS
        | set(_FONTS)
        | set(_combining())
        | set(_ACCENT_ALIASES)
        | {"boxed", "mathop", "mathrel", "mathbin", "mathord", "underbrace", "overbrace"}
        | {"fbox", "label", "tag", "phantom", "hphantom", "vphantom", "color", "pmod"}
    )
    specs = [MacroSpec(name, "{{") for name in sorted(two)]
    specs += [MacroSpec(name, "{") for name in sorted(one)]
    specs += [
        MacroSpec("sqrt", "[{"),
        MacroSpec("operatorname", "*{"),
        MacroSpec("xrightarrow", "[{"),
        MacroSpec("xleftarrow", "[{"),
    ]
    specs += [MacroSpec(name, "") for name in ("not", "left", "right", "middle")]
    db = get_default_latex_context_db()
    db.add_context_category("mathbot-math", macros=specs, prepend=True)
    return db


@cache
def _latex2text() -> Any:
    from pylatexenc.latex2text import LatexNodes2Text

    return LatexNodes2Text(math_mode="text")


def _nesting(latex: str) -> int | None:
    """Deepest brace nesting in `latex`, or None when its braces are unbalanced."""
    depth = deepest = 0
    escaped = False
    for ch in latex:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return None
    return deepest if depth == 0 else None


def _wrapped(s: str) -> bool:
    """Whether `s` is one bracketed group, like `(x+1)` (but not `(a)+(b)`)."""
    if len(s) < 2 or s[0] not in _PAIRS or s[-1] != _PAIRS[s[0]]:
        return False
    opener, closer = s[0], _PAIRS[s[0]]
    if opener == closer:
        return s.count(opener) == 2
    depth = 0
    for k, ch in enumerate(s):
        depth += (ch == opener) - (ch == closer)
        if depth == 0 and k < len(s) - 1:
            return False
    return True


def _is_atomic(s: str, *, strict: bool = False) -> bool:
    """Whether `s` reads as one unit next to `/` or a script: `x`, `2`, `xₙ`, `f(x)`, `(a+b)`.

    `strict` (for denominators) also rejects implicit products that start with a number (`2x`).
    """
    s = s.strip()
    if len(s) <= 1 or _wrapped(s):
        return True
    if s[0] in "√∛∜":
        return len(s) > 1 and _is_atomic(s[1:], strict=strict)
    head = _ATOM_HEAD.match(s)
    if head is None:
        return False
    rest = s[head.end() :]
    if rest and not _wrapped(rest):
        return False
    return not (strict and _IMPLICIT_PRODUCT.match(s))


def _script(text: str, *, sup: bool) -> str:
    """`text` as Unicode super/subscript characters, or `^x` / `^(…)` when some have none."""
    compact = "".join(text.split())
    if not compact:
        return ""
    table = _scripts()[0 if sup else 1]
    if all(ch in table for ch in compact):
        return "".join(table[ch] for ch in compact)
    marker = "^" if sup else "_"
    if len(compact) == 1 or _wrapped(compact):
        return marker + compact
    return f"{marker}({compact})"


def _flatten(nodes: Any) -> list[Any]:
    """A node list as items: each character of a chars node separately, other nodes as they are."""
    items: list[Any] = []
    for node in nodes or ():
        if node is None:
            continue
        kind = type(node).__name__
        if kind == "LatexCharsNode":
            items.extend(node.chars)
        elif kind != "LatexCommentNode":
            items.append(node)
    return items


def _arg_items(node: Any) -> list[Any]:
    """The items of a macro argument (a group's contents, or the single token)."""
    if node is None:
        return []
    if type(node).__name__ == "LatexGroupNode":
        return _flatten(node.nodelist)
    return _flatten([node])


def _is_char(item: Any, char: str) -> bool:
    return isinstance(item, str) and item == char


def _args(node: Any) -> list[Any]:
    argd = getattr(node, "nodeargd", None)
    return list(argd.argnlist) if argd is not None and argd.argnlist else []


class _UnicodeMath:
    """Renders parsed LaTeX math as one line of Unicode text."""

    def __init__(self) -> None:
        self.symbols = _symbols()

    # -- math mode -----------------------------------------------------------------------------

    def math(self, items: list[Any], *, script: bool = False) -> str:
        out: list[str] = []
        last = -1  # index in `out` of the piece a following script attaches to
        gap = False  # after a function name, big operator or fraction: space before a word
        braces = False  # after an unknown macro: show the following group's braces
        pending = ""  # "open"/"close" after \left/\right: the next piece is a delimiter
        opened = False  # the last piece opens a bracket: drop the space after it
        i = 0
        while i < len(items):
            item = items[i]
            i += 1
            if isinstance(item, str) and item in "^_":
                while i < len(items) and isinstance(items[i], str) and items[i].isspace():
                    i += 1
                if i == len(items):
                    out.append(item)
                    continue
                body = self.math(_arg_items(items[i]), script=True)
                i += 1
                if last >= 0 and not _is_atomic(out[last]):
                    base = out[last].lstrip()
                    out[last] = f"{out[last][: len(out[last]) - len(base)]}({base})"
                out.append(_script(body, sup=item == "^"))
                continue
            if isinstance(item, str):
                if item.isspace():
                    if not script and not opened:
                        out.append(" ")
                        gap = False
                    continue
                kind = "ord"
                piece = item
                if item == ":" and i < len(items) and _is_char(items[i], "="):
                    piece, kind = ":=", "rel"
                    i += 1
                elif item in "=<>":
                    kind = "rel"
            else:
                piece, kind, i = self.node(item, items, i, script=script, braces=braces)
            braces = kind == "unknown"
            if kind in ("open", "close"):
                pending = kind
                continue
            if kind == "skip" or not piece:
                continue
            name = getattr(item, "macroname", None)
            closing = pending == "close" or name in _CLOSING_MACROS or piece in _CLOSING
            opening = pending == "open" or name in _OPENING_MACROS or piece in _OPENING
            pending = ""
            if closing:
                while out and out[-1] == " ":
                    out.pop()
            spaced = kind == "rel" or (kind == "bin" and bool(out) and out[-1].endswith(" "))
            if spaced and not script:
                piece = f" {piece} "
            elif gap and (piece[0].isalnum() or piece[0] in "√∛∜"):
                piece = " " + piece
            out.append(piece)
            last = len(out) - 1 if kind not in ("rel", "bin") else -1
            gap = kind in ("op", "frac")
            opened = opening
            if not script and kind != "bin" and self.spaced_after(item, items, i):
                out.append(" ")
                gap = False
        return "".join(out)

    @staticmethod
    def spaced_after(item: Any, items: list[Any], i: int) -> bool:
        """Whether the space after a control word was the author's (`\\alpha + 1`), not just
        the end of its name (`\\pi r`, where a letter follows)."""
        if isinstance(item, str) or not getattr(item, "macro_post_space", "") or _args(item):
            return False
        following = items[i] if i < len(items) else None
        return isinstance(following, str) and not (following.isascii() and following.isalpha())

    def node(
        self, node: Any, items: list[Any], i: int, *, script: bool, braces: bool = False
    ) -> tuple[str, str, int]:
        """Render one node: (text, kind, index of the next item). Kinds: ord, rel, bin, op,
        frac, skip, unknown."""
        kind = type(node).__name__
        if kind == "LatexGroupNode":
            inner = self.math(_flatten(node.nodelist), script=script)
            return (f"{{{inner}}}" if braces else inner), "ord", i
        if kind == "LatexMathNode":
            return self.math(_flatten(node.nodelist), script=script), "ord", i
        if kind == "LatexSpecialsNode":
            chars = node.specials_chars
            return (" " if chars in ("~", "&") else chars), "ord", i
        if kind == "LatexEnvironmentNode":
            return self.environment(node), "ord", i
        if kind == "LatexMacroNode":
            return self.macro(node, items, i, script=script)
        return node.latex_verbatim(), "ord", i

    def macro(self, node: Any, items: list[Any], i: int, *, script: bool) -> tuple[str, str, int]:
        name = node.macroname
        args = _args(node)

        def arg(k: int, *, as_script: bool = script) -> str:
            return self.math(_arg_items(args[k]), script=as_script) if len(args) > k else ""

        if name in _FRACS:
            num, den = arg(0).strip(), arg(1).strip()
            if not (_is_atomic(num) or (num.startswith("-") and _is_atomic(num[1:]))):
                num = f"({num})"
            if not _is_atomic(den, strict=True):
                den = f"({den})"
            return f"{num}/{den}", "frac", i
        if name in _BINOMS:
            return f"C({arg(0).strip()}, {arg(1).strip()})", "ord", i
        if name == "sqrt":
            index = "".join(arg(0, as_script=True).split())
            body = arg(1).strip()
            root = {"": "√", "2": "√", "3": "∛", "4": "∜"}.get(index)
            if root is None:
                root = _script(index, sup=True) + "√"
            return root + (body if _is_atomic(body) else f"({body})"), "ord", i
        if name in _TEXTS:
            return self.text(_arg_items(args[0]) if args else []), "ord", i
        if name in _FONTS:
            font = _FONTS[name]
            body = arg(0)
            if font:
                letters = _alphabets()
                body = "".join(letters.get((font, ch), ch) for ch in body)
            return body, "ord", i
        if name == "operatorname":
            return self.text(_arg_items(args[-1]) if args else []).strip(), "op", i
        if name in _FUNCTIONS:
            return name, "op", i
        if name in _SPACES:
            return ("" if script else _SPACES[name]), "ord", i
        if name in _SIZES:
            if i < len(items) and _is_char(items[i], "."):
                return "", "skip", i + 1  # `\left.`: an invisible delimiter
            if name == "left" or name.endswith("l"):
                return "", "open", i
            if name == "right" or name.endswith("r"):
                return "", "close", i
            return "", "skip", i
        if name in _DROPPED:
            return "", "skip", i
        if name in _ESCAPED:
            return _ESCAPED[name], "ord", i
        if name == "\\":
            return " ", "ord", i
        if name == "not":
            return self.negation(items, i, script=script)
        if name in _PASS_FIRST:
            return arg(0), "ord", i
        if name in _PASS_SECOND:
            body = arg(1).strip()
            return body, ("rel" if body in _RELATIONS else "ord"), i
        if name in ("mathop", "mathrel", "mathbin"):
            return arg(0).strip(), {"mathop": "op", "mathrel": "rel", "mathbin": "bin"}[name], i
        if name == "pmod":
            return f" (mod {arg(0).strip()})", "ord", i
        if name in ("bmod", "mod"):
            return "mod", "rel", i
        if name in ("xrightarrow", "xleftarrow"):
            return ("→" if name == "xrightarrow" else "←"), "rel", i
        accent = _combining().get(_ACCENT_ALIASES.get(name, name))
        if accent is not None:
            body = arg(0)
            return "".join(ch + accent if not ch.isspace() else ch for ch in body), "ord", i
        symbol = self.symbols.get(name)
        if symbol is not None:
            if symbol in _RELATIONS:
                return symbol, "rel", i
            if symbol in _BINARIES:
                return symbol, "bin", i
            if symbol in _BIG_OPERATORS:
                return symbol, "op", i
            return symbol, "ord", i
        fallback = _latex2text().node_to_text(node).strip()
        if fallback:
            return fallback, "ord", i
        return node.latex_verbatim().strip(), "unknown", i

    def negation(self, items: list[Any], i: int, *, script: bool) -> tuple[str, str, int]:
        """`\\not` applied to the next item: `\\not=` -> ≠, `\\not\\in` -> ∉, else a slash."""
        while i < len(items) and isinstance(items[i], str) and items[i].isspace():
            i += 1
        if i == len(items):
            return "", "skip", i
        target = items[i]
        if isinstance(target, str):
            piece = {"=": "≠", "<": "≮", ">": "≯"}.get(target, target + "\u0338")
        elif getattr(target, "macroname", None) == "in":
            piece = "∉"
        else:
            piece, _, _ = self.node(target, items, i + 1, script=script)
            piece = piece[:1] + "\u0338" + piece[1:] if piece else piece
        return piece, "rel", i + 1

    def environment(self, node: Any) -> str:
        """Matrices, `cases` and alignments on one line: cells by spaces, rows by `; `."""
        name = node.environmentname.rstrip("*")
        rows: list[list[list[Any]]] = [[[]]]
        for item in _flatten(node.nodelist):
            if getattr(item, "macroname", None) == "\\":
                rows.append([[]])
            elif getattr(item, "specials_chars", None) == "&":
                rows[-1].append([])
            else:
                rows[-1][-1].append(item)
        lines = [
            " ".join(c for c in (self.math(cell).strip() for cell in row) if c) for row in rows
        ]
        body = "; ".join(line for line in lines if line)
        brackets = {
            "pmatrix": ("(", ")"), "bmatrix": ("[", "]"), "Bmatrix": ("{", "}"),
            "vmatrix": ("|", "|"), "Vmatrix": ("‖", "‖"), "cases": ("{ ", ""),
        }  # fmt: skip
        left, right = brackets.get(name, ("", ""))
        return f"{left}{body}{right}"

    # -- text mode (\text{...}) ----------------------------------------------------------------

    def text(self, items: list[Any]) -> str:
        out: list[str] = []
        for item in items:
            if isinstance(item, str):
                out.append(item)
                continue
            kind = type(item).__name__
            if kind == "LatexGroupNode":
                out.append(self.text(_flatten(item.nodelist)))
            elif kind == "LatexMathNode":
                out.append(self.math(_flatten(item.nodelist)))
            elif kind == "LatexSpecialsNode":
                out.append(" " if item.specials_chars == "~" else item.specials_chars)
            elif kind == "LatexMacroNode" and item.macroname in _TEXTS | set(_FONTS):
                args = _args(item)
                out.append(self.text(_arg_items(args[0])) if args else "")
            elif kind == "LatexMacroNode":
                piece, _, _ = self.macro(item, [], 0, script=False)
                out.append(piece)
            else:
                out.append(item.latex_verbatim())
        return "".join(out)


def _latex_to_unicode(latex: str) -> str | None:
    """Inline LaTeX as readable Unicode text (Markdown-escaped), or None to leave it as it is."""
    if len(latex) > _MAX_INLINE_CHARS:
        return None
    depth = _nesting(latex)
    if depth is None or depth > _MAX_NESTING:
        return None
    from pylatexenc.latexwalker import LatexWalker

    source = _UNESCAPED_PERCENT.sub(r"\\%", latex)  # `%` in a chat message means percent
    try:
        walker = LatexWalker(source, latex_context=_latex_context(), tolerant_parsing=False)
        state = walker.make_parsing_state(in_math_mode=True)
        nodes, _, _ = walker.get_latex_nodes(parsing_state=state)
        text = _UnicodeMath().math(_flatten(nodes))
    except Exception:  # malformed LaTeX, or a parser corner case: keep the source
        log.debug("could not convert inline LaTeX %r", latex[:80], exc_info=True)
        return None
    text = " ".join(text.split())
    if not text:
        return None
    return _MARKDOWN.sub(lambda m: "".join("\\" + ch for ch in m.group()), text)


def _convert_inline(prose: str) -> str:
    """`prose` (no code, no display math) with each inline formula converted."""
    out: list[str] = []
    pos = 0
    for start, end, latex in _inline_spans(prose):
        converted = _latex_to_unicode(latex)
        if converted is None:
            continue
        out.append(prose[pos:start])
        out.append(converted)
        pos = end
    out.append(prose[pos:])
    return "".join(out)


def to_discord_text(text: str) -> str:
    """Turn the inline LaTeX in a Markdown answer into readable Unicode text.

    `$x^2$` becomes `x²`, `\\(\\frac{x+1}{2}\\)` becomes `(x+1)/2`, `$\\mathbb{R}$` becomes `ℝ`.
    Everything else is left exactly as it is: prose, money amounts (`$5 and $10`), code blocks,
    inline code, display math (`$$…$$`, `\\[…\\]`; see `prepare_answer`), and any formula that
    is too long, too deeply nested or malformed. Characters that Discord would read as Markdown
    (`*`, `_`, backticks, `~~`, `||`) are backslash-escaped inside converted formulas.
    """
    out: list[str] = []
    for start, end, is_code in _outside_code(text):
        chunk = text[start:end]
        if is_code:
            out.append(chunk)
            continue
        pos = 0
        for d_start, d_end, _ in _display_spans(chunk):
            out.append(_convert_inline(chunk[pos:d_start]))
            out.append(chunk[d_start:d_end])
            pos = d_end
        out.append(_convert_inline(chunk[pos:]))
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Display math: extraction and the answer as text plus images
# ---------------------------------------------------------------------------------------------


def _placeholder(number: int) -> str:
    return f"[formula {number}]"


def _split_display(text: str) -> list[str | tuple[str]]:
    """`text` as prose strings and 1-tuples `(latex,)` for display blocks outside code."""
    parts: list[str | tuple[str]] = []
    prose: list[str] = []
    for start, end, is_code in _outside_code(text):
        chunk = text[start:end]
        if is_code:
            prose.append(chunk)
            continue
        pos = 0
        for d_start, d_end, latex in _display_spans(chunk):
            prose.append(chunk[pos:d_start])
            parts.append("".join(prose))
            parts.append((latex,))
            prose = []
            pos = d_end
        prose.append(chunk[pos:])
    parts.append("".join(prose))
    return parts


def _join_blocks(parts: list[str | tuple[str]], block: Callable[[str], str]) -> str:
    """Join prose with `block(latex)` for each display block, each block on lines of its own."""
    out = ""
    after_block = False
    for part in parts:
        if isinstance(part, str):
            if after_block:
                part = part.lstrip(" \t")
                if part and not part.startswith("\n"):
                    part = "\n" + part
                after_block = not part
            out += part
            continue
        before = out.rstrip(" \t")
        if before and not before.endswith("\n"):
            before += "\n"
        out = before + block(part[0])
        after_block = True
    return out


def extract_display_math(text: str) -> tuple[str, list[str]]:
    """Pull the display math (`$$…$$`, `\\[…\\]`, possibly multi-line) out of `text`.

    Returns `(text, formulas)`. `formulas` are the LaTeX sources in order of appearance,
    stripped, without their delimiters. In the returned text each block is replaced by a line of
    its own reading `[formula N]` (N counts from 1, matching `formulas[N - 1]`): text that
    shared the block's line is moved to the lines before and after it. Display math inside code
    blocks or inline code, and unclosed or empty delimiters, are left as they are; nothing else
    changes (inline math is not converted).
    """
    parts = _split_display(text)
    formulas = [part[0] for part in parts if isinstance(part, tuple)]
    counter = iter(range(1, len(formulas) + 1))
    return _join_blocks(parts, lambda _latex: _placeholder(next(counter))), formulas


def _code_block(latex: str) -> str:
    # Display math is only found outside code, so `latex` holds no ``` that could close this.
    return f"```latex\n{latex}\n```"


@dataclass(frozen=True)
class PreparedAnswer:
    """An answer ready for Discord: text to send and PNG images to attach.

    `images` holds `(filename, png)` pairs, `formula-1.png`, `formula-2.png`, … ; the text
    shows `[formula N]` where image N belongs.
    """

    text: str
    images: tuple[tuple[str, bytes], ...] = ()


def prepare_answer(text: str) -> PreparedAnswer:
    """Make a model's Markdown answer Discord-ready: display math as images, inline as Unicode.

    Each display formula that renders becomes a `[formula N]` line plus the attachment
    `formula-N.png` (numbered by image). One that does not render, or beyond the first
    `MAX_IMAGES` images, is kept as its LaTeX source in a ```latex code block. The rest of the
    text then goes through `to_discord_text`. Rendering is CPU work (tens of milliseconds per
    formula): call this from a worker thread, e.g. `await asyncio.to_thread(prepare_answer, t)`.
    """
    parts = _split_display(text)
    images: list[tuple[str, bytes]] = []

    def block(latex: str) -> str:
        if len(images) < MAX_IMAGES:
            png = render_latex_png(latex)
            if png is not None:
                images.append((f"formula-{len(images) + 1}.png", png))
                return _placeholder(len(images))
        return _code_block(latex)

    joined = _join_blocks(parts, block)
    return PreparedAnswer(text=to_discord_text(joined), images=tuple(images))


# ---------------------------------------------------------------------------------------------
# Display math -> PNG (matplotlib's mathtext, Agg, no pyplot)
# ---------------------------------------------------------------------------------------------

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
    depth = _nesting(latex)
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
            if _nesting(part) is None:
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


def warm_up_renderer() -> None:
    """Import matplotlib and build mathtext's parser now (about a second), not on first use.

    Optional; blocking: run it in a worker thread at start-up.
    """
    render_latex_png("x^2")
