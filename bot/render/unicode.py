"""LaTeX -> Unicode: an answer's inline math as readable text (`to_discord_text`)."""

from __future__ import annotations

import logging
import re
from functools import cache
from typing import Any

from .spans import brace_depth, display_spans, inline_spans, outside_code

__all__ = ["formula_text", "to_discord_text"]

log = logging.getLogger(__name__)

_MAX_INLINE_CHARS = 2000  # longer inline math is left as it is
_MAX_NESTING = 40  # deeper brace nesting: inline math left as it is

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

    def math(self, items: list[Any], *, script: bool = False) -> str:
        """`items` in math mode as one line: scripts, spacing around relations, brackets."""
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

    def text(self, items: list[Any]) -> str:
        """`items` in text mode (the body of `\\text{…}`): as written, math inside converted."""
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


def _latex_to_unicode(latex: str, *, markdown: bool = True) -> str | None:
    """Inline LaTeX as readable Unicode text (Markdown-escaped unless `markdown` is false), or
    None to leave it as it is."""
    if len(latex) > _MAX_INLINE_CHARS:
        return None
    depth = brace_depth(latex)
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
    if not markdown:
        return text
    return _MARKDOWN.sub(lambda m: "".join("\\" + ch for ch in m.group()), text)


def _convert_inline(prose: str) -> str:
    """`prose` (no code, no display math) with each inline formula converted."""
    out: list[str] = []
    pos = 0
    for start, end, latex in inline_spans(prose):
        converted = _latex_to_unicode(latex)
        if converted is None:
            continue
        out.append(prose[pos:start])
        out.append(converted)
        pos = end
    out.append(prose[pos:])
    return "".join(out)


def formula_text(latex: str) -> str:
    """A formula in plain text, e.g. for alt text: its Unicode rendering, or its LaTeX source
    when it has none (CPU work for a long formula: call it off the event loop)."""
    return _latex_to_unicode(latex, markdown=False) or latex


def to_discord_text(text: str) -> str:
    """Turn the inline LaTeX in a Markdown answer into readable Unicode text.

    `$x^2$` becomes `x²`, `\\(\\frac{x+1}{2}\\)` becomes `(x+1)/2`, `$\\mathbb{R}$` becomes `ℝ`.
    Everything else is left exactly as it is: prose, money amounts (`$5 and $10`), code blocks,
    inline code, display math (`$$…$$`, `\\[…\\]`; see `prepare_answer`), and any formula that
    is too long, too deeply nested or malformed. Characters that Discord would read as Markdown
    (`*`, `_`, backticks, `~~`, `||`) are backslash-escaped inside converted formulas.
    """
    out: list[str] = []
    for start, end, is_code in outside_code(text):
        chunk = text[start:end]
        if is_code:
            out.append(chunk)
            continue
        pos = 0
        for d_start, d_end, _ in display_spans(chunk):
            out.append(_convert_inline(chunk[pos:d_start]))
            out.append(chunk[d_start:d_end])
            pos = d_end
        out.append(_convert_inline(chunk[pos:]))
    return "".join(out)
