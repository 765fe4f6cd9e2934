"""The calculator's language: text to vetted canonical source, with sizes estimated (no SymPy)."""

from __future__ import annotations

import ast
import keyword as _keyword
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple, cast

from ..base import ToolError

__all__ = [
    "FUNCTIONS",
    "TOO_DEEP",
    "CalculatorError",
    "FunctionSpec",
    "Limits",
    "ParsedExpression",
    "parse_expression",
    "prepare_expression",
    "vet_expression",
    "vet_with_notes",
]

_LOG2_10 = math.log2(10)
#: The answer to an expression nested too deeply to check (or to check in Python's stack).
TOO_DEEP = "expression too deeply nested"


class CalculatorError(ToolError):
    """A problem with an expression, worded so that the model can act on it."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on the work one expression may ask for; every check uses these."""

    max_length: int = 500
    #: Characters of the source once rewritten (n!, 30°, 2x and Greek letters lengthen it).
    max_source: int = 4_000
    max_bracket_depth: int = 30
    max_nodes: int = 1_000
    max_ast_depth: int = 120
    max_sequence: int = 100
    max_int_bits: int = 131_072  # ~39,000 decimal digits
    max_factorial: int = 10_000
    max_precision: int = 1_000
    max_matrix_dim: int = 10
    max_matrix_power: int = 10_000
    max_prime_index: int = 10_000_000
    max_primepi: int = 10**10
    max_derivative_order: int = 100
    max_series_order: int = 30
    max_output_chars: int = 2_000
    max_latex_chars: int = 4_000

    @property
    def max_digits(self) -> int:
        """The decimal digits an integer of `max_int_bits` bits has, roughly."""
        return int(self.max_int_bits / _LOG2_10)

    @property
    def max_str_digits(self) -> int:
        """The int-to-text digit cap a worker needs to print every number these limits allow
        (never below Python's default of 4,300)."""
        return max(4_300, self.max_digits * 4)


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """What a whitelisted function accepts: its arity, keywords and direction-string slots."""

    min_args: int
    max_args: int | None
    keywords: frozenset[str] = field(default_factory=frozenset)
    string_args: frozenset[int] = field(default_factory=frozenset)


def _spec(
    min_args: int,
    max_args: int | None = None,
    keywords: tuple[str, ...] = (),
    string_args: tuple[int, ...] = (),
) -> FunctionSpec:
    return FunctionSpec(min_args, max_args, frozenset(keywords), frozenset(string_args))


_ONE = _spec(1, 1)
TRIG_NAMES = (  # noqa: SIM905 (a word list reads better as text)
    "sin cos tan cot sec csc asin acos atan acot asec acsc "
    "sinh cosh tanh coth sech csch asinh acosh atanh acoth asech acsch"
).split()

#: Every function the language knows, by the name the model writes.
FUNCTIONS: dict[str, FunctionSpec] = {
    **dict.fromkeys(TRIG_NAMES, _ONE),
    "atan2": _spec(2, 2),
    "sqrt": _ONE,
    "cbrt": _ONE,
    "root": _spec(2, 3),
    "exp": _ONE,
    "log": _spec(1, 2),
    "ln": _spec(1, 2),
    "log10": _ONE,
    "log2": _ONE,
    "abs": _ONE,
    "Abs": _ONE,
    "sign": _ONE,
    "re": _ONE,
    "im": _ONE,
    "conjugate": _ONE,
    "arg": _ONE,
    "floor": _ONE,
    "ceiling": _ONE,
    "ceil": _ONE,
    "frac": _ONE,
    "round": _spec(1, 2),
    "factorial": _ONE,
    "binomial": _spec(2, 2),
    "gamma": _ONE,
    "fibonacci": _ONE,
    "gcd": _spec(1),
    "lcm": _spec(1),
    "isprime": _ONE,
    "factorint": _ONE,
    "primefactors": _ONE,
    "divisors": _ONE,
    "prime": _ONE,
    "nextprime": _ONE,
    "prevprime": _ONE,
    "primepi": _ONE,
    "totient": _ONE,
    "mod": _spec(2, 2),
    "Mod": _spec(2, 2),
    "Max": _spec(1),
    "Min": _spec(1),
    "max": _spec(1),
    "min": _spec(1),
    "Rational": _spec(1, 2),
    "numer": _ONE,
    "denom": _ONE,
    "Eq": _spec(2, 2),
    "Ne": _spec(2, 2),
    "simplify": _ONE,
    "expand": _ONE,
    "factor": _spec(1, 2, ("modulus",)),
    "cancel": _ONE,
    "together": _ONE,
    "apart": _spec(1, 2),
    "collect": _spec(2, 2),
    "trigsimp": _ONE,
    "expand_trig": _ONE,
    "solve": _spec(1),
    "roots": _spec(1, 2),
    "diff": _spec(1),
    "integrate": _spec(1),
    "limit": _spec(3, 4, ("dir",), (3,)),
    "series": _spec(1, 4),
    "summation": _spec(1),
    "sum": _spec(1),
    "product": _spec(1),
    "Matrix": _spec(1, 3),
    "det": _ONE,
    "inverse": _ONE,
    "inv": _ONE,
    "transpose": _ONE,
    "rank": _ONE,
    "trace": _ONE,
    "eigenvals": _ONE,
    "rref": _ONE,
    "eye": _spec(1, 2),
    "zeros": _spec(1, 2),
    "ones": _spec(1, 2),
    "N": _spec(1, 2, ("n",)),
    "evalf": _spec(1, 2, ("n",)),
    # notation, number theory
    "factorial2": _ONE,
    "perm": _spec(2, 2),
    "pow": _spec(2, 3),
    "modinv": _spec(2, 2),
    "crt": _spec(2, 2),
    "base": _spec(2, 2),
    # statistics and probability
    **dict.fromkeys(
        (  # noqa: SIM905
            "mean median mode variance pvariance stdev pstdev"
        ).split(),
        _spec(1),
    ),
    "quantile": _spec(2, 2),
    "percentile": _spec(2, 2),
    "correlation": _spec(2, 2),
    "covariance": _spec(2, 2),
    "linregress": _spec(2, 2),
    "normal_pdf": _spec(1, 3),
    "normal_cdf": _spec(1, 3),
    "normal_inv": _spec(1, 3),
    "normalpdf": _spec(1, 3),
    "normalcdf": _spec(2, 4),
    "invNorm": _spec(1, 3),
    "binomial_pmf": _spec(3, 3),
    "binomial_cdf": _spec(3, 3),
    "binompdf": _spec(3, 3),
    "binomcdf": _spec(3, 3),
    "poisson_pmf": _spec(2, 2),
    "poisson_cdf": _spec(2, 2),
    "poissonpdf": _spec(2, 2),
    "poissoncdf": _spec(2, 2),
    "uniform_pdf": _spec(3, 3),
    "uniform_cdf": _spec(3, 3),
    # equations, sets, differential equations
    "dsolve": _spec(1, 2, ("ics",)),
    "subs": _spec(2, 3),
    "solveset": _spec(1, 3, ("domain",)),
    "interval": _spec(2, 2),
    # linear algebra, complex numbers, units, checking
    "eigenvects": _ONE,
    "nullspace": _ONE,
    "columnspace": _ONE,
    "linsolve": _spec(1, 2),
    "charpoly": _spec(1, 2),
    "adjugate": _ONE,
    "norm": _ONE,
    "dot": _spec(2, 2),
    "cross": _spec(2, 2),
    "polar": _ONE,
    "rect": _spec(2, 2),
    "convert_to": _spec(2, 2),
    "implies": _spec(2, 2),
    "check": _ONE,
}

#: Named constants (everything else that is a valid name becomes a symbol).
CONSTANTS = frozenset(
    {"pi", "E", "e", "I", "oo", "inf", "infinity", "EulerGamma", "GoldenRatio", "Catalan"}
    | {"Reals", "Integers", "Complexes", "Naturals"}
)
_GREEK = frozenset(
    (  # noqa: SIM905 (a word list reads better as text)
        "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lamda "
        "mu nu xi omicron rho sigma tau upsilon phi varphi chi psi omega "
        "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
    ).split()
)
_SYMBOL_RE = re.compile(r"[A-Za-z](?:_?[0-9]{1,3})?")
_DIRECTIONS = frozenset({"+", "-", "+-"})


def is_symbol_name(name: str) -> bool:
    """Whether `name` is a variable the language accepts (x, x1, x_1, theta, ...)."""
    if name in CONSTANTS:
        return False
    return name in _GREEK or _SYMBOL_RE.fullmatch(name) is not None


def _approx(n: float) -> str:
    """A readable size for a possibly astronomically large non-negative number."""
    if isinstance(n, float) and not math.isfinite(n):
        return "an astronomical number of"
    if n < 1e15:
        return f"{n:,.0f}"
    return f"about 10^{math.floor(math.log10(n))}"


def _too_large(bits: float, limits: Limits, what: str = "the result") -> CalculatorError:
    return CalculatorError(
        f"expression too large: {what} would have {_approx(bits / _LOG2_10)} digits "
        f"(limit {limits.max_digits:,})"
    )


def log2_size(numerator: int, denominator: int = 1) -> float:
    """log2 of the larger of |numerator| and denominator (0 for 0 and ±1)."""
    big = max(abs(numerator), abs(denominator))
    return math.log2(big) if big > 1 else 0.0


def check_bits(bits: float, limits: Limits, what: str = "the result") -> None:
    """Refuse a number or coefficient of about `bits` bits if that exceeds the limit."""
    if bits > limits.max_int_bits:
        raise _too_large(bits, limits, what)


def check_power(base_log2: float, exponent: Fraction | int, limits: Limits) -> None:
    """Refuse `base ** exponent` when the exact result would be too big to hold.

    `base_log2` is log2 of the base's numerator or denominator (0 for 0, 1 and -1).
    """
    if base_log2 <= 0 or exponent == 0:
        return
    times = cast(int, math.ceil(abs(exponent)))  # Fraction.__ceil__ gives an int
    if times.bit_length() > 64:
        raise _too_large(base_log2 * 2.0**64, limits, "the power")
    check_bits(base_log2 * times, limits, "the power")


def check_factorial(n: int, limits: Limits) -> None:
    """Refuse `factorial(n)` above the cap."""
    if n > limits.max_factorial:
        digits = math.lgamma(n + 1) / math.log(10) if n < 10**15 else float(n)
        raise CalculatorError(
            f"expression too large: factorial({_approx(n)}) would have {_approx(digits)} "
            f"digits (factorial is limited to n <= {limits.max_factorial:,})"
        )


def check_binomial(n: int, k: int, limits: Limits) -> None:
    """Refuse `binomial(n, k)` when its value would exceed the size limit."""
    if not 0 <= k <= n:
        return
    m = min(k, n - k)
    if m == 0:
        return
    if m.bit_length() > 64:
        raise _too_large(2.0**64, limits, "the binomial coefficient")
    if n < 10**15:
        nats = math.lgamma(n + 1) - math.lgamma(m + 1) - math.lgamma(n - m + 1)
        bits = nats / math.log(2)
    else:
        bits = m * math.log2(n) - math.lgamma(m + 1) / math.log(2)
    check_bits(bits, limits, "the binomial coefficient")


def check_non_integer(name: str, x: Fraction, limits: Limits) -> None:
    """Refuse an argument `x` of `name` (gamma, factorial, binomial, perm) called with a
    non-integer argument, when SymPy would work it out as about |x| factors (gamma(n + 1/2)
    is a fraction of n log n bits; binomial(10**6, 1/2) a quotient of gammas)."""
    if abs(x) <= limits.max_factorial:
        return
    if x.denominator != 1:
        shown = f"{float(x):,.1f}" if abs(x) < 10**15 else _approx(float(abs(x)))
        what = f"{name}({shown}) of a non-integer"
    else:
        what = f"{name} of a non-integer with an argument of {_approx(abs(int(x)))}"
    raise CalculatorError(
        f"expression too large: {what} would be worked out as about "
        f"{_approx(math.floor(abs(x)))} factors (limit |x| <= {limits.max_factorial:,} "
        "when an argument is not an integer)"
    )


def check_terms(what: str, terms: int, limits: Limits) -> None:
    """Refuse `what` (a sum or product over a range, a binomial of a non-integer) when SymPy
    would work it out one term at a time over more than `max_factorial` terms."""
    if terms > limits.max_factorial:
        raise CalculatorError(
            f"expression too large: {what} would be worked out term by term, "
            f"{_approx(terms)} terms (limit {limits.max_factorial:,}); use a symbolic "
            "bound such as n, or fewer terms"
        )


def check_precision(digits: int, limits: Limits) -> None:
    """Refuse a requested precision outside 1..max_precision digits."""
    if not 1 <= digits <= limits.max_precision:
        raise CalculatorError(
            f"precision must be between 1 and {limits.max_precision} digits, "
            f"not {_approx(digits) if digits > 0 else digits}"
        )


def check_matrix_dims(rows: int, cols: int, limits: Limits) -> None:
    """Refuse matrices bigger than max_matrix_dim in either direction."""
    if rows < 0 or cols < 0:
        raise CalculatorError("matrix dimensions must not be negative")
    if rows > limits.max_matrix_dim or cols > limits.max_matrix_dim:
        raise CalculatorError(
            f"matrix too large: {_approx(rows)} x {_approx(cols)} "
            f"(limit {limits.max_matrix_dim} x {limits.max_matrix_dim})"
        )


def check_int_cap(name: str, n: int, cap: int) -> None:
    """Refuse an integer argument `n` of `name` above `cap`."""
    if n > cap:
        raise CalculatorError(
            f"expression too large: {name}({_approx(n)}) is over the limit of {cap:,}"
        )


class _Tok(NamedTuple):
    kind: str  # "num", "name", "str" or "op"
    text: str


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<str>'[^'\\\n]{0,200}'|"[^"\\\n]{0,200}")
  | (?P<op>\*\*|//|==|!=|<=|>=|=>|[-+*/%^()\[\],=<>!|{}:]|\.(?=[A-Za-z_]))
    """,
    re.VERBOSE,
)
_UNICODE = str.maketrans(
    {
        "×": "*",
        "·": "*",
        "⋅": "*",
        "÷": "/",
        "−": "-",
        "–": "-",
        "π": " pi ",
        "∞": "oo",
        "√": " sqrt ",
        "∛": " cbrt ",
        "°": " deg ",
        "⇒": "=>",
        "→": "=>",
        "⟹": "=>",
        "∣": "|",
        "≤": "<=",
        "≥": ">=",
        "≠": "!=",
        "\u00a0": " ",
    }
)
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}


def _check_brackets(text: str, limits: Limits) -> None:
    """Check nesting depth on the raw text, before anything recursive sees it."""
    depth = 0
    stack: list[str] = []
    for ch in text:
        if ch in _OPENERS:
            stack.append(ch)
            depth = max(depth, len(stack))
            if depth > limits.max_bracket_depth:
                raise CalculatorError(
                    f"expression too deeply nested (more than {limits.max_bracket_depth} "
                    "levels of brackets)"
                )
        elif ch in _CLOSERS and (not stack or stack.pop() != _CLOSERS[ch]):
            raise CalculatorError(f"could not parse: unbalanced brackets at {ch!r}")
    if stack:
        raise CalculatorError("could not parse: a bracket is never closed")


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            ch = text[pos]
            if ch == ".":
                raise CalculatorError("not allowed: attribute access ('.')")
            if ch in "'\"":
                raise CalculatorError("not allowed: strings")
            if ch == "&":
                raise CalculatorError("not allowed: & (use a list for several conditions)")
            raise CalculatorError(f"could not parse: unexpected character {ch!r}")
        kind = match.lastgroup
        if kind != "ws" and kind is not None:
            tokens.append(_Tok(kind, match.group()))
        pos = match.end()
    return tokens


def _match(tokens: list[_Tok]) -> dict[int, int]:
    """Map each bracket token's index to its partner's (brackets are known to balance)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for i, tok in enumerate(tokens):
        if tok.text in ("(", "["):
            stack.append(i)
        elif tok.text in (")", "]"):
            j = stack.pop()
            pairs[i], pairs[j] = j, i
    return pairs


def _implicit_multiplication(tokens: list[_Tok]) -> list[_Tok]:
    """Insert `*` in `2x`, `2(x+1)`, `(x+1)(x-1)`, `(x+1)x`, `pi x` and `x(x+1)` (but not
    `x(t)`, which may mean a function of t: that stays a call and is refused by name)."""
    out: list[_Tok] = []
    for n, tok in enumerate(tokens):
        if out:
            prev = out[-1]
            if (
                (prev.kind == "num" and (tok.kind == "name" or tok.text == "("))
                or (prev.text == ")" and (tok.kind in ("num", "name") or tok.text == "("))
                or (prev.kind == "name" and tok.kind in ("name", "num") and _joinable(prev, tok))
                or (
                    prev.kind == "name"
                    and tok.text == "("
                    and len(prev.text) == 1
                    and prev.text not in FUNCTION_LETTERS
                    and prev.text not in FUNCTIONS
                    and is_symbol_name(prev.text)
                    and not (
                        n + 2 < len(tokens)
                        and tokens[n + 1].kind == "name"
                        and tokens[n + 2].text == ")"
                    )
                )
            ):
                out.append(_Tok("op", "*"))
        out.append(tok)
    return out


def _joinable(prev: _Tok, tok: _Tok) -> bool:
    """Whether two adjacent names (or a name and a number) multiply: `pi x`, `x y`."""
    words = _WORD_NAMES | {"Abs"}
    if prev.text in FUNCTIONS or prev.text in words or tok.text in words:
        return False
    if _keyword.iskeyword(prev.text) or _keyword.iskeyword(tok.text):
        return False
    if tok.kind == "num":
        return prev.text in CONSTANTS or prev.text.startswith("unit_")
    return True


def _rewrite_equations(tokens: list[_Tok]) -> list[_Tok]:
    """Rewrite `lhs = rhs` (at any level, one per comma-separated item) to `Eq(lhs, rhs)`.

    `name=value` directly inside the call of a function that takes that keyword stays a
    keyword argument (`limit(1/x, x, 0, dir='+')`, `N(pi, n=30)`).
    """
    pairs = _match(tokens)
    comma = _Tok("op", ",")

    def group(lo: int, hi: int, callee: str | None) -> list[_Tok]:
        """Rewrite tokens[lo:hi], the inside of one pair of brackets (or everything)."""
        bounds: list[tuple[int, int]] = []
        start = i = lo
        while i < hi:
            if tokens[i].text in ("(", "["):
                i = pairs[i] + 1
                continue
            if tokens[i].text == ",":
                bounds.append((start, i))
                start = i + 1
            i += 1
        bounds.append((start, hi))
        out: list[_Tok] = []
        for n, (a, b) in enumerate(bounds):
            if n:
                out.append(comma)
            out += item(a, b, callee)
        return out

    def item(lo: int, hi: int, callee: str | None) -> list[_Tok]:
        """Rewrite one comma-separated item tokens[lo:hi]."""
        pieces: list[_Tok] = []
        equals: list[int] = []
        j = lo
        while j < hi:
            tok = tokens[j]
            if tok.text in ("(", "["):
                close = pairs[j]
                inner = None
                if tok.text == "(" and j > 0 and tokens[j - 1].kind == "name":
                    inner = tokens[j - 1].text
                pieces += [tok, *group(j + 1, close, inner), tokens[close]]
                j = close + 1
                continue
            if tok.text == "=":
                equals.append(len(pieces))
            pieces.append(tok)
            j += 1
        if not equals:
            return pieces
        spec = FUNCTIONS.get(callee) if callee is not None else None
        if (
            spec is not None
            and equals == [1]
            and pieces[0].kind == "name"
            and pieces[0].text in spec.keywords
        ):
            return pieces  # a keyword argument
        if len(equals) > 1:
            raise CalculatorError("could not parse: more than one '=' in one equation")
        lhs, rhs = pieces[: equals[0]], pieces[equals[0] + 1 :]
        if not lhs or not rhs:
            raise CalculatorError("could not parse: '=' needs an expression on each side")
        return [_Tok("name", "Eq"), _Tok("op", "("), *lhs, comma, *rhs, _Tok("op", ")")]

    return group(0, len(tokens), None)


_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_SUPERSCRIPT_RUN = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻]+")
_SUBSCRIPT_RUN = re.compile(r"[₀₁₂₃₄₅₆₇₈₉]+")
_GREEK_LETTERS = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ϵ": "epsilon",
    "ζ": "zeta", "η": "eta", "θ": "theta", "ϑ": "theta", "ι": "iota", "κ": "kappa",
    "λ": "lamda", "μ": "mu", "ν": "nu", "ξ": "xi", "ρ": "rho", "σ": "sigma", "τ": "tau",
    "υ": "upsilon", "φ": "phi", "ϕ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega",
    "Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda", "Ξ": "Xi", "Σ": "Sigma",
    "Φ": "Phi", "Ψ": "Psi", "Ω": "Omega",
}  # fmt: skip
_GREEK_TABLE = str.maketrans({k: f" {v} " for k, v in _GREEK_LETTERS.items()})
#: Letters `y'`, `dy/dx` and `y(x)` may name as unknown functions.
FUNCTION_LETTERS = frozenset("fghyuvwFGY")
_PRIMES = re.compile(r"(?<![A-Za-z_])([fghyuvwFGY])('{1,3})(?:\(\s*([A-Za-z0-9]+)\s*\))?")
_LEIBNIZ = re.compile(
    r"(?<![A-Za-z0-9_])d(?:\^([23]))?([fghyuvwFGY])\s*/\s*d([a-z])(?:\^([23]))?(?![A-Za-z0-9_])"
)
_D_OPERATOR = re.compile(r"(?<![A-Za-z0-9_])d\s*/\s*d([a-z])(?![A-Za-z0-9_])")
#: Names the model writes for functions the language has under another name.
ALIASES = {
    **{f"arc{n}": f"a{n}" for n in ["sin", "cos", "tan", "cot", "sec", "csc"]},
    **{f"ar{n}": f"a{n}" for n in ["sinh", "cosh", "tanh", "coth", "sech", "csch"]},
    **{f"arc{n}": f"a{n}" for n in ["sinh", "cosh", "tanh", "coth", "sech", "csch"]},
    "cosec": "csc", "sgn": "sign", "nCr": "binomial", "choose": "binomial", "C": "binomial",
    "nPr": "perm", "P": "perm", "Derivative": "diff", "Integral": "integrate",
    "Sum": "summation", "Product": "product", "Limit": "limit", "avg": "mean",
    "average": "mean", "std": "stdev", "stddev": "stdev", "var": "variance",
    "mod_inverse": "modinv", "invmod": "modinv", "inverse_mod": "modinv",
    "sqr": "sqrt", "fact": "factorial", "normalCdf": "normalcdf", "invnorm": "invNorm",
    "normcdf": "normal_cdf", "normpdf": "normal_pdf", "norminv": "normal_inv",
    "to_base": "base", "baseconv": "base", "eigenvalues": "eigenvals",
    "eigenvectors": "eigenvects", "null_space": "nullspace", "column_space": "columnspace",
    "charpoly": "charpoly", "cross_product": "cross", "dot_product": "dot",
    "Interval": "interval", "LinearRegression": "linregress", "regression": "linregress",
}  # fmt: skip
#: `obj.method(args)` forms rewritten to `function(obj, args)`: method name -> function.
METHODS = {
    "diff": "diff", "subs": "subs", "inv": "inv", "det": "det", "T": "transpose",
    "transpose": "transpose", "simplify": "simplify", "expand": "expand",
    "factor": "factor", "evalf": "N", "n": "N", "eigenvals": "eigenvals",
    "eigenvects": "eigenvects", "rref": "rref", "nullspace": "nullspace",
    "columnspace": "columnspace", "rank": "rank", "trace": "trace",
    "integrate": "integrate", "limit": "limit", "series": "series", "doit": "doit",
    "inverse": "inv", "adjugate": "adjugate", "charpoly": "charpoly", "norm": "norm",
    "dot": "dot", "cross": "cross", "cancel": "cancel", "together": "together",
    "apart": "apart", "collect": "collect", "trigsimp": "trigsimp", "rewrite": "rewrite",
}  # fmt: skip
#: Unit names (multi-letter ones are units everywhere; single letters only in conversions).
UNITS = frozenset(
    (  # noqa: SIM905 (a word list reads better as text)
        "meter meters metre metres m km kilometer kilometers cm centimeter centimeters mm "
        "millimeter millimeters mile miles mi foot feet ft inch inches yard yards yd "
        "nmi nautical_mile au lightyear ly "
        "second seconds s sec minute minutes min hour hours h hr day days week weeks year years "
        "ms millisecond milliseconds "
        "kg kilogram kilograms gram grams g mg milligram pound pounds lb lbs ounce ounces oz "
        "tonne tonnes "
        "newton newtons N joule joules J kJ kilojoule watt watts W kW kilowatt pascal Pa "
        "kPa atm calorie calories cal kcal eV electronvolt "
        "liter liters litre litres L l mL ml milliliter gallon gallons gal "
        "hertz Hz volt volts V ampere amperes A ohm ohms coulomb coulombs kelvin K "
        "mph kph kmh knot knots degree_rad rad radian radians"
    ).split()
)
_SINGLE_LETTER_UNITS = frozenset(u for u in UNITS if len(u) == 1)
_VALUE_END_KINDS = ("num", "name")
_NO_BRACKET = frozenset(
    (  # noqa: SIM905
        "sin cos tan cot sec csc asin acos atan acot asec acsc sinh cosh tanh coth sech csch "
        "asinh acosh atanh acoth sqrt cbrt exp log ln log10 log2 abs floor ceil ceiling "
        "factorial deriv_op"
    ).split()
)
_LOG_BASE = re.compile(r"log_([0-9]{1,3}|e)")
_WORD_NAMES = frozenset({"of", "mod", "deg", "degree", "degrees", "in", "to"})


def _value_end(tok: _Tok | None) -> bool:
    """Whether `tok` can end a value (so a following `|` closes, `%` is postfix...)."""
    return tok is not None and (tok.kind in _VALUE_END_KINDS or tok.text in (")", "]"))


def _string_rewrites(text: str, notes: list[str]) -> tuple[str, dict[str, str]]:
    """Rewrites on the text, each one regular-expression pass (linear in its length)."""
    text = _SUPERSCRIPT_RUN.sub(lambda m: f"^({m.group().translate(_SUPERSCRIPTS)})", text)
    text = _SUBSCRIPT_RUN.sub(lambda m: f"_{m.group().translate(_SUBSCRIPTS)}", text)
    text = text.translate(_GREEK_TABLE)
    functions: set[str] = set()
    variable = (
        "t"
        if re.search(r"(?<![A-Za-z_])t(?![A-Za-z_0-9])", text)
        and not re.search(r"(?<![A-Za-z_])x(?![A-Za-z_0-9])", text)
        else "x"
    )

    def leibniz(m: re.Match[str]) -> str:
        order = m.group(1) or m.group(4) or "1"
        functions.add(m.group(2))
        var = m.group(3)
        return f" diff({m.group(2)}({var}), {var}, {order}) "

    def primes(m: re.Match[str]) -> str:
        name, order, at = m.group(1), len(m.group(2)), m.group(3)
        functions.add(name)
        derivative = f"diff({name}({variable}), {variable}, {order})"
        if at is None or at == variable:
            return f" {derivative} "
        return f" subs({derivative}, {variable}, {at}) "

    text = _LEIBNIZ.sub(leibniz, text)
    text = _D_OPERATOR.sub(lambda m: f" deriv_op_{m.group(1)} ", text)
    if "'" in text:
        text = _PRIMES.sub(primes, text)
    if functions:
        notes.append(
            f"{', '.join(sorted(functions))} read as function(s) of {variable} (y' = diff(y(x), x))"
        )
    return text, dict.fromkeys(functions, variable)


def _rewrite_bars(tokens: list[_Tok], limits: Limits) -> list[_Tok]:
    """Turn `|x - 1|` into `Abs(x - 1)`; refuse bars that do not pair up."""
    if not any(tok.text == "|" for tok in tokens):
        return tokens
    out: list[_Tok] = []
    stack: list[str] = []  # "|" for an open bar, or a bracket
    for tok in tokens:
        if tok.text == "|":
            prev = out[-1] if out else None
            if stack and stack[-1] == "|" and _value_end(prev):
                stack.pop()
                out.append(_Tok("op", ")"))
                continue
            stack.append("|")
            if len(stack) > limits.max_bracket_depth:
                raise CalculatorError(
                    f"expression too deeply nested (more than {limits.max_bracket_depth} "
                    "levels of brackets)"
                )
            out += [_Tok("name", "Abs"), _Tok("op", "(")]
            continue
        if tok.text in ("(", "["):
            stack.append(tok.text)
        elif tok.text in (")", "]"):
            if not stack or stack[-1] == "|":
                raise CalculatorError("could not parse: an absolute value |...| is never closed")
            stack.pop()
        out.append(tok)
    if stack:
        raise CalculatorError("could not parse: an absolute value |...| is never closed")
    return out


def _rewrite_braces(tokens: list[_Tok]) -> list[_Tok]:
    """Turn dsolve's `ics={y(0): 1, ...}` into `ics=[y(0) = 1, ...]`; refuse other braces."""
    if not any(tok.text in ("{", "}") for tok in tokens):
        return tokens
    out: list[_Tok] = []
    depth = 0
    for n, tok in enumerate(tokens):
        if tok.text == "{":
            if depth or n < 2 or tokens[n - 1].text != "=" or tokens[n - 2].text != "ics":
                raise CalculatorError(
                    "not allowed: braces (use [...] for lists; initial conditions as "
                    "ics=[y(0) = 1])"
                )
            depth += 1
            out.append(_Tok("op", "["))
        elif tok.text == "}":
            depth -= 1
            out.append(_Tok("op", "]"))
        elif tok.text == ":" and depth:
            out.append(_Tok("op", "="))
        else:
            out.append(tok)
    return out


def _decimal_tokens(text: str) -> list[_Tok]:
    """An exact decimal or hex/binary/octal literal as integer tokens: 0.25 -> (25 / 10 ** 2)."""
    if text[:2].lower() in ("0x", "0b", "0o"):
        return [_Tok("num", str(int(text, 0)))] if len(text) <= 200 else [_Tok("num", text)]
    mantissa, _, exponent = text.lower().partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0") or "0"
    power = (int(exponent) if exponent else 0) - len(fraction)
    if power == 0:
        return [_Tok("num", digits)]
    op = "*" if power > 0 else "/"
    return [
        _Tok("op", "("), _Tok("num", digits), _Tok("op", op), _Tok("num", "10"),
        _Tok("op", "**"), _Tok("num", str(abs(power))), _Tok("op", ")"),
    ]  # fmt: skip


def _rewrite_numbers(tokens: list[_Tok], notes: list[str]) -> list[_Tok]:
    out: list[_Tok] = []
    decimals = False
    for tok in tokens:
        if tok.kind == "num" and not tok.text.isdigit():
            decimals = decimals or tok.text[:2].lower() not in ("0x", "0b", "0o")
            out += _decimal_tokens(tok.text)
        else:
            out.append(tok)
    if decimals:
        notes.append("decimals read as exact fractions (0.1 = 1/10); N(expr) for a decimal")
    return out


def _rewrite_names(tokens: list[_Tok], notes: list[str], odes: dict[str, str]) -> list[_Tok]:
    """Aliases, `i`/`j` as the imaginary unit, `xy` as `x*y`, units, `log_2`, `mod`."""
    out: list[_Tok] = []
    split: list[str] = []
    conversion = any(t.text in ("in", "convert_to") for t in tokens if t.kind == "name")
    imaginary = {
        letter
        for letter in ("i", "j")
        if any(t == _Tok("name", letter) for t in tokens) and not _bound(tokens, letter)
    }
    for n, tok in enumerate(tokens):
        nxt = tokens[n + 1] if n + 1 < len(tokens) else None
        called = nxt is not None and nxt.text == "("
        if tok.kind != "name":
            out.append(tok)
            continue
        name = ALIASES.get(tok.text, tok.text) if called or tok.text not in ("C", "P") else tok.text
        if name in imaginary:
            out.append(_Tok("name", "I"))
        elif name in odes and not called:
            var = odes[name]
            out += [_Tok("name", name), _Tok("op", "("), _Tok("name", var), _Tok("op", ")")]
        elif (
            name in UNITS
            and not called
            and (len(name) > 1 or conversion)
            and (
                (name not in FUNCTIONS and name not in CONSTANTS and not is_symbol_name(name))
                or conversion
            )
        ):
            out.append(_Tok("name", f"unit_{name}"))
        elif name == "mod" and not called:
            out.append(_Tok("op", "%"))
        elif (
            not called
            and (len(name) == 2 or (n > 0 and tokens[n - 1].kind == "num"))
            and name.isalpha()
            and name.islower()
            and 2 <= len(name) <= 4
            and name not in FUNCTIONS
            and name not in CONSTANTS
            and name not in _WORD_NAMES
            and name not in UNITS
            and not is_symbol_name(name)
            and not _keyword.iskeyword(name)
            and not set(name) & set("eijo")
        ):
            split.append(name)
            for k, letter in enumerate(name):
                if k:
                    out.append(_Tok("op", "*"))
                out.append(_Tok("name", letter))
        else:
            out.append(_Tok("name", name))
    if imaginary:
        notes.append(f"{' and '.join(sorted(imaginary))} read as the imaginary unit I")
    if split:
        notes.append(f"{', '.join(split)} read as a product of one-letter variables")
    return out


def _bound(tokens: list[_Tok], letter: str) -> bool:
    """Whether `letter` is used as a variable: an argument of its own after a comma in a
    call (`solve(2i - 4, i)`), or the first item of a tuple `(i, 1, n)`; inside a list
    (`Matrix([[1, i]])`) it stays the imaginary unit."""
    openers: list[str] = []
    for n, tok in enumerate(tokens):
        if tok.text in ("(", "["):
            openers.append(tok.text)
            continue
        if tok.text in (")", "]"):
            if openers:
                openers.pop()
            continue
        if tok != _Tok("name", letter) or n == 0 or n + 1 >= len(tokens):
            continue
        prev, nxt = tokens[n - 1].text, tokens[n + 1].text
        in_call = bool(openers) and openers[-1] == "("
        if in_call and prev == "," and nxt in (",", ")"):
            return True
        if prev == "(" and nxt == "," and not (n >= 2 and tokens[n - 2].kind == "name"):
            return True
    return False


def _postfix_kind(tokens: list[_Tok], i: int, prev: _Tok | None) -> str | None:
    """Which postfix operator `tokens[i]` is (`!`, `!!`, `deg`, `%`), if any; `prev` is the
    token written just before it."""
    tok = tokens[i]
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if tok == _Tok("op", "!"):
        return "!!" if nxt == _Tok("op", "!") else "!"
    if tok.kind == "name" and tok.text in ("deg", "degree", "degrees"):
        return "deg" if nxt is None or nxt.text != "(" else None
    if tok == _Tok("op", "%") and (
        nxt is None
        or nxt == _Tok("name", "of")
        or (nxt.kind == "op" and nxt.text not in ("(", "[", "-", "+", "|"))
        or (nxt.text in ("-", "+") and prev is not None and prev.kind == "num")
    ):
        return "%"
    return None


#: What each postfix operator puts before and after its operand.
_POSTFIX_WRAP: dict[str, tuple[tuple[_Tok, ...], tuple[_Tok, ...]]] = {
    "!": ((_Tok("name", "factorial"), _Tok("op", "(")), (_Tok("op", ")"),)),
    "!!": ((_Tok("name", "factorial2"), _Tok("op", "(")), (_Tok("op", ")"),)),
    "deg": (
        (_Tok("op", "("), _Tok("op", "(")),
        (
            _Tok("op", ")"),
            _Tok("op", "*"),
            _Tok("name", "pi"),
            _Tok("op", "/"),
            _Tok("num", "180"),
            _Tok("op", ")"),
        ),
    ),
    "%": (
        (_Tok("op", "("), _Tok("op", "(")),
        (_Tok("op", ")"), _Tok("op", "/"), _Tok("num", "100"), _Tok("op", ")")),
    ),
}


def _postfix(tokens: list[_Tok]) -> list[_Tok]:
    """Postfix operators: `n!`, `n!!`, `30 deg`/`30°`, `15%` (and `15% of 80`).

    One pass, linear: an operator's operand starts at the number or name just before it, or
    at the bracket (with its function name) that the bracket just before it closes; the
    operator's opening tokens are recorded at that start and written out at the end.
    """
    out: list[_Tok] = []
    before: dict[int, list[tuple[_Tok, ...]]] = {}  # out index -> openings, innermost first
    openers: list[int] = []  # out indexes of the brackets still open
    starts: dict[int, int] = {}  # out index of a closing token -> where its operand starts
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        prev = out[-1] if out else None
        kind = _postfix_kind(tokens, i, prev)
        if kind is None:
            if tok.text in ("(", "["):
                openers.append(len(out))
            elif tok.text in (")", "]") and openers:
                start = openers.pop()
                if start > 0 and out[start - 1].kind == "name":
                    start -= 1
                starts[len(out)] = start
            out.append(tok)
            i += 1
            continue
        if prev is not None and prev.kind in ("num", "name"):
            start = len(out) - 1
        elif prev is not None and len(out) - 1 in starts:
            start = starts[len(out) - 1]
        else:
            raise CalculatorError(
                f"could not parse: {'!' if kind in ('!', '!!') else kind} must follow a "
                "number, name or ')'"
            )
        opening, closing = _POSTFIX_WRAP[kind]
        before.setdefault(start, []).append(opening)
        out.extend(closing)
        starts[len(out) - 1] = start
        width = 2 if kind == "!!" else 1
        if kind == "%" and i + 1 < len(tokens) and tokens[i + 1] == _Tok("name", "of"):
            width = 2
            out.append(_Tok("op", "*"))
        i += width
    result: list[_Tok] = []
    for n, tok in enumerate(out):
        for opening in reversed(before.get(n, ())):
            result.extend(opening)
        result.append(tok)
    return result


def _operand_end(tokens: list[_Tok], start: int, pairs: dict[int, int]) -> int:
    """The end of the operand of a function written without brackets (`sin 2x`)."""
    k = start
    while k < len(tokens):
        tok = tokens[k]
        if tok.text in ("(", "["):
            k = pairs[k] + 1
        elif tok.kind == "num":
            k += 1
        elif tok.kind == "name":
            if tok.text in FUNCTIONS or tok.text in _NO_BRACKET or tok.text.startswith("deriv_op_"):
                if k != start or k + 1 >= len(tokens) or tokens[k + 1].text != "(":
                    break
                k = pairs[k + 1] + 1
                break
            k += 1
        else:
            break
        if k < len(tokens) - 1 and tokens[k].text == "**":
            nxt = tokens[k + 1]
            if nxt.text in ("(", "["):
                k = pairs[k + 1] + 1
            elif nxt.kind in ("num", "name") and nxt.text not in FUNCTIONS:
                k += 2
    return k


def _is_unary_function(tok: _Tok) -> bool:
    return tok.kind == "name" and (
        tok.text in _NO_BRACKET
        or tok.text.startswith("deriv_op_")
        or _LOG_BASE.fullmatch(tok.text) is not None
    )


#: At most this many functions written without brackets (`ln sin x`): each costs O(length).
_MAX_BARE_FUNCTIONS = 8


def _function_notation(tokens: list[_Tok]) -> list[_Tok]:
    """`sin^2(x)` -> `sin(x)^2`, `sin^-1(x)` -> `asin(x)`, `sin x` -> `sin(x)`,
    `log_2(8)` -> `log(8, 2)`, `d/dx f` -> `diff(f, x)`; right to left, so `ln sin x` nests."""
    bare = sum(
        _is_unary_function(tok) and (n + 1 >= len(tokens) or tokens[n + 1].text != "(")
        for n, tok in enumerate(tokens)
    )
    if bare > _MAX_BARE_FUNCTIONS:
        raise CalculatorError(
            f"expression too large: more than {_MAX_BARE_FUNCTIONS} functions without brackets; "
            "write them with brackets, e.g. sin(x)"
        )
    i = len(tokens) - 1
    while i >= 0:
        tok = tokens[i]
        if not _is_unary_function(tok) or i + 1 >= len(tokens):
            i -= 1
            continue
        if tokens[i + 1].text == "(" and tok.text in FUNCTIONS:  # an ordinary call
            i -= 1
            continue
        pairs = _match(tokens)
        power: list[_Tok] = []
        j = i + 1
        if tokens[j].text == "**" and j + 1 < len(tokens):
            exp_end = j + 2
            if tokens[j + 1].text == "(":
                exp_end = pairs[j + 1] + 1
            elif tokens[j + 1].text == "-" and j + 2 < len(tokens):
                exp_end = j + 3
            power = tokens[j + 1 : exp_end]
            j = exp_end
        if j >= len(tokens):
            i -= 1
            continue
        if tokens[j].text == "(":
            end = pairs[j] + 1
            inner = tokens[j + 1 : end - 1]
        else:
            end = _operand_end(tokens, j, pairs)
            if end == j:
                i -= 1
                continue
            inner = tokens[j:end]
        name = tok.text
        texts = "".join(t.text for t in power).strip("()")
        if texts == "-1" and name in TRIG_NAMES:
            name, power = f"a{name}", []
        call = _call_tokens(name, inner)
        if power:
            call = [_Tok("op", "("), *call, _Tok("op", ")"), _Tok("op", "**"), *power]
        tokens = [*tokens[:i], *call, *tokens[end:]]
        i -= 1
    return tokens


def _call_tokens(name: str, inner: list[_Tok]) -> list[_Tok]:
    comma = _Tok("op", ",")
    if name.startswith("deriv_op_"):
        var = name.removeprefix("deriv_op_")
        return [_Tok("name", "diff"), _Tok("op", "("), *inner, comma, _Tok("name", var),
                _Tok("op", ")")]  # fmt: skip
    base = _LOG_BASE.fullmatch(name)
    if base is not None:
        b = _Tok("name", "E") if base.group(1) == "e" else _Tok("num", base.group(1))
        return [_Tok("name", "log"), _Tok("op", "("), *inner, comma, b, _Tok("op", ")")]
    return [_Tok("name", name), _Tok("op", "("), *inner, _Tok("op", ")")]


#: At most this many method calls and postfix operators (each is rewritten in O(length)).
_MAX_REWRITES = 40


def _count_rewrites(tokens: list[_Tok]) -> None:
    """Refuse, before any quadratic work, more method calls or postfix operators than allowed."""
    dots = sum(tok.text == "." for tok in tokens)
    postfix = sum(
        tok.text == "!" or (tok.kind == "name" and tok.text in ("deg", "degree", "degrees"))
        for tok in tokens
    )
    if dots > _MAX_REWRITES or postfix > _MAX_REWRITES * 2:
        raise CalculatorError(
            f"expression too large: more than {_MAX_REWRITES} method calls or "
            f"{_MAX_REWRITES * 2} postfix operators (!, °); split it into several calls"
        )


def _rewrite_methods(tokens: list[_Tok]) -> list[_Tok]:
    """`M.inv()` -> `inv(M)`, `f.subs(x, 2)` -> `subs(f, x, 2)`, `M.T` -> `transpose(M)`."""
    while True:
        try:
            i = next(i for i, tok in enumerate(tokens) if tok == _Tok("op", "."))
        except StopIteration:
            return tokens
        method = tokens[i + 1].text if i + 1 < len(tokens) else ""
        function = METHODS.get(method)
        if function is None:
            raise CalculatorError(
                f"not allowed: attribute access (.{method}); write it as a function, e.g. "
                f"{method}(expr, ...), or use one of the methods "
                f"{', '.join(sorted(METHODS))}"
            )
        prev = tokens[i - 1] if i > 0 else None
        pairs = _match(tokens)
        if prev is not None and prev.kind in ("num", "name"):
            start = i - 1
        elif prev is not None and prev.text in (")", "]"):
            start = pairs[i - 1]
            if start > 0 and tokens[start - 1].kind == "name":
                start -= 1
        else:
            raise CalculatorError("could not parse: '.' must follow a name or ')'")
        receiver = tokens[start:i]
        j = i + 2
        args: list[_Tok] = []
        if j < len(tokens) and tokens[j].text == "(":
            close = pairs[j]
            args = tokens[j + 1 : close]
            j = close + 1
        elif method != "T":
            raise CalculatorError(f"could not parse: .{method} needs brackets, as in .{method}()")
        if function == "doit":
            call = [_Tok("op", "("), *receiver, _Tok("op", ")")]
        else:
            call = [_Tok("name", function), _Tok("op", "("), *receiver]
            if args:
                call += [_Tok("op", ","), *args]
            call.append(_Tok("op", ")"))
        tokens = [*tokens[:start], *call, *tokens[j:]]


def _rewrite_conversion(tokens: list[_Tok]) -> list[_Tok]:
    """`60 mph in m/s` (or `to`) at the top level -> `convert_to(60 mph, m/s)`."""
    depth = 0
    for n, tok in enumerate(tokens):
        if tok.text in ("(", "["):
            depth += 1
        elif tok.text in (")", "]"):
            depth -= 1
        elif depth == 0 and tok.kind == "name" and tok.text in ("in", "to") and n > 0:
            lhs, rhs = tokens[:n], tokens[n + 1 :]
            if not rhs:
                raise CalculatorError("could not parse: write a conversion as '60 mph in m/s'")
            return [_Tok("name", "convert_to"), _Tok("op", "("), *lhs, _Tok("op", ","), *rhs,
                    _Tok("op", ")")]  # fmt: skip
    return tokens


def _rewrite_implication(tokens: list[_Tok]) -> list[_Tok]:
    """`premise => conclusion` (for check) -> `implies(premise, conclusion)`."""
    arrows = [n for n, tok in enumerate(tokens) if tok.text == "=>"]
    if not arrows:
        return tokens
    if len(arrows) > 1:
        raise CalculatorError("could not parse: check one step at a time (one '=>')")
    n = arrows[0]
    return [_Tok("name", "implies"), _Tok("op", "("), *tokens[:n], _Tok("op", ","),
            *tokens[n + 1 :], _Tok("op", ")")]  # fmt: skip


def prepare_expression(expression: str, limits: Limits | None = None) -> str:
    """Check the raw text and return canonical Python-syntax source for it.

    Raises CalculatorError for text that is too long, too deeply nested or has a character
    or string the language does not have.
    """
    return prepare_with_notes(expression, limits)[0]


def prepare_with_notes(
    expression: str, limits: Limits | None = None
) -> tuple[str, tuple[str, ...]]:
    """Like `prepare_expression`, with notes on how the text was read (`i` as I...)."""
    limits = limits or Limits()
    if not isinstance(expression, str):
        raise CalculatorError("could not parse: the expression must be text")
    text = expression.strip()
    if not text:
        raise CalculatorError("could not parse: empty expression")
    if len(text) > limits.max_length:
        raise CalculatorError(
            f"expression too large: {len(text):,} characters (limit {limits.max_length})"
        )
    _check_brackets(text, limits)
    notes: list[str] = []
    text, odes = _string_rewrites(text, notes)
    text = text.translate(_UNICODE)
    for ch in text:
        if not (ch.isascii() and (ch.isprintable() or ch.isspace())):
            raise CalculatorError(f"could not parse: unsupported character {ch!r}")
    tokens = _tokenize(text)
    if not tokens:
        raise CalculatorError("could not parse: empty expression")
    if len(tokens) > limits.max_length * 2:
        raise CalculatorError("expression too large: too many terms")
    tokens = [_Tok("op", "**") if tok.text == "^" else tok for tok in tokens]
    _count_rewrites(tokens)
    tokens = _rewrite_numbers(tokens, notes)
    tokens = _rewrite_bars(tokens, limits)
    tokens = _rewrite_braces(tokens)
    tokens = _rewrite_names(tokens, notes, odes)
    tokens = _rewrite_methods(tokens)
    tokens = _postfix(tokens)
    tokens = _function_notation(tokens)
    tokens = _implicit_multiplication(tokens)
    tokens = _rewrite_conversion(tokens)
    tokens = _rewrite_implication(tokens)
    tokens = _rewrite_equations(tokens)
    source = " ".join(tok.text for tok in tokens)
    # What follows (parsing, the checks) is linear in the length checked here.
    if len(source) > limits.max_source:
        raise CalculatorError(
            f"expression too large: it reads as {len(source):,} characters once its shorthand "
            f"(n!, 30°, 2x, Greek letters) is written out (limit {limits.max_source:,}); "
            "split it into several calls"
        )
    return source, tuple(notes)


_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.Mod: "%",
    ast.FloorDiv: "//",
}
_CMPOPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_FORBIDDEN: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Starred: "starred arguments",
    ast.JoinedStr: "f-strings",
    ast.IfExp: "conditional expressions",
    ast.BoolOp: "and/or (use a list for several equations)",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.NamedExpr: "assignment",
    ast.Await: "await",
    ast.Slice: "slices",
}


class ParsedExpression(NamedTuple):
    """A vetted expression: its canonical source and the AST parsed from that source."""

    source: str
    tree: ast.Expression


def parse_expression(expression: str, limits: Limits | None = None) -> ParsedExpression:
    """Parse and vet an expression; return its canonical source and whitelisted AST.

    Also estimates the size of exact integer results, so that `9**9**9**9` or
    `factorial(10**8)` are refused here, in microseconds, rather than in a worker.
    Raises CalculatorError with a message the model can act on.
    """
    limits = limits or Limits()
    source = prepare_expression(expression, limits)
    return ParsedExpression(source, _parse_source(source, limits))


def vet_with_notes(expression: str, limits: Limits | None = None) -> tuple[str, tuple[str, ...]]:
    """Like `vet_expression`, with the notes on how the text was read."""
    limits = limits or Limits()
    source, notes = prepare_with_notes(expression, limits)
    _parse_source(source, limits)
    return source, notes


def vet_expression(expression: str, limits: Limits | None = None) -> str:
    """Run every in-process check on an expression; return its canonical source."""
    limits = limits or Limits()
    source = prepare_expression(expression, limits)
    _parse_source(source, limits)
    return source


def _parse_source(source: str, limits: Limits) -> ast.Expression:
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"could not parse: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError):
        raise CalculatorError("could not parse: expression too complex") from None
    try:
        _Validator(limits).check(tree)
        _Estimator(limits).visit(tree.body)
    except RecursionError:  # only with limits far above the defaults
        raise CalculatorError(TOO_DEEP) from None
    return tree


class _Validator:
    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._nodes = 0

    def check(self, tree: ast.Expression) -> None:
        self._visit(tree.body, 1)

    def _visit(self, node: ast.AST, depth: int) -> None:
        self._nodes += 1
        if self._nodes > self._limits.max_nodes:
            raise CalculatorError(
                f"expression too large: more than {self._limits.max_nodes} terms and operators"
            )
        if depth > self._limits.max_ast_depth:
            raise CalculatorError(TOO_DEEP)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, str):
                raise CalculatorError("not allowed: strings")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CalculatorError(f"not allowed: the constant {value!r}")
        elif isinstance(node, ast.Name):
            self._check_name(node.id)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise CalculatorError(f"not allowed: operator {_op_text(node.op)}")
            # a + b + c + ... is a flat chain to a reader, though a deep tree to ast.
            chained = isinstance(node.left, ast.BinOp) and _same_level(node.op, node.left.op)
            self._visit(node.left, depth if chained else depth + 1)
            self._visit(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub | ast.UAdd):
                raise CalculatorError(f"not allowed: operator {_op_text(node.op)}")
            self._visit(node.operand, depth + 1)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if not isinstance(op, _CMPOPS):
                    raise CalculatorError(f"not allowed: comparison {_op_text(op)}")
            for part in (node.left, *node.comparators):
                self._visit(part, depth + 1)
        elif isinstance(node, ast.List | ast.Tuple):
            if len(node.elts) > self._limits.max_sequence:
                raise CalculatorError(
                    f"expression too large: a list of more than {self._limits.max_sequence} items"
                )
            for elt in node.elts:
                self._visit(elt, depth + 1)
        elif isinstance(node, ast.Call):
            self._check_call(node, depth)
        else:
            what = _FORBIDDEN.get(type(node), type(node).__name__)
            raise CalculatorError(f"not allowed: {what}")

    @staticmethod
    def _check_name(name: str) -> None:
        if name in CONSTANTS or is_symbol_name(name) or is_unit_name(name):
            return
        if name in FUNCTIONS:
            raise CalculatorError(f"{name} is a function: call it, as in {name}(x)")
        if name.startswith("deriv_op_"):
            raise CalculatorError("d/dx needs something to differentiate: d/dx (x^3)")
        if name in ("in", "to", "of"):
            raise CalculatorError(f"could not parse '{name}': write '60 mph in m/s' or '15% of 80'")
        raise CalculatorError(
            f"unknown name: {name} (variables are single letters such as x, x1, x_1 or "
            "Greek names such as theta; units such as km, mile, hour)"
        )

    def _check_call(self, node: ast.Call, depth: int) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            raise CalculatorError("not allowed: attribute access")
        if not isinstance(func, ast.Name):
            raise CalculatorError("not allowed: calling something that is not a function name")
        name = func.id
        spec = FUNCTIONS.get(name)
        if spec is None and name in FUNCTION_LETTERS:
            if len(node.args) == 1 and not node.keywords and _is_atom(node.args[0]):
                self._visit(node.args[0], depth + 1)
                return
            raise CalculatorError(
                f"{name}(...) is an unknown function of one variable, as in {name}(x) or "
                f"{name}(0); write {name}*(...) to multiply"
            )
        if spec is None:
            if is_symbol_name(name) or name in CONSTANTS:
                raise CalculatorError(f"unknown function: {name} (write {name}*(...) to multiply)")
            raise CalculatorError(f"unknown function: {name}{_nearest(name)}")
        count = len(node.args)
        if name == "perm" and count == 1:
            raise CalculatorError(
                "P(...) of one argument is not a probability function here: write P(X > a) "
                "as 1 - normal_cdf(a, mu, sigma) or 1 - binomial_cdf(a, n, p); P(n, k) is nPr"
            )
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            if spec.max_args is None:
                wanted = f"at least {spec.min_args}"
            elif spec.min_args == spec.max_args:
                wanted = str(spec.min_args)
            else:
                wanted = f"{spec.min_args} to {spec.max_args}"
            raise CalculatorError(f"{name} takes {wanted} argument(s), not {count}")
        for index, arg in enumerate(node.args):
            if index in spec.string_args and _is_str(arg):
                _check_direction(arg)
            else:
                self._visit(arg, depth + 1)
        for keyword in node.keywords:
            if keyword.arg is None:
                raise CalculatorError("not allowed: ** arguments")
            if keyword.arg not in spec.keywords:
                raise CalculatorError(f"{name} has no keyword argument {keyword.arg!r}")
            if keyword.arg == "dir":
                _check_direction(keyword.value)
            else:
                self._visit(keyword.value, depth + 1)


def _is_atom(node: ast.AST) -> bool:
    """A variable or a number, as in y(x) or y(0)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div | ast.Mult | ast.Pow):
        return _is_atom(node.left) and _is_atom(node.right)
    return isinstance(node, ast.Name | ast.Constant)


def is_unit_name(name: str) -> bool:
    """Whether `name` is a unit as the rewrites spell it (unit_km)."""
    return name.startswith("unit_") and name.removeprefix("unit_") in UNITS


def _nearest(name: str) -> str:
    """A hint naming the nearest function the language has."""
    import difflib

    if len(name) > 40:
        return ""
    close = difflib.get_close_matches(name, [*FUNCTIONS, *ALIASES], n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else " (see the tool's function list)"


def _same_level(op: ast.operator, other: ast.operator) -> bool:
    additive = (ast.Add, ast.Sub)
    multiplicative = (ast.Mult, ast.Div, ast.Mod, ast.FloorDiv)
    return (isinstance(op, additive) and isinstance(other, additive)) or (
        isinstance(op, multiplicative) and isinstance(other, multiplicative)
    )


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _check_direction(node: ast.AST) -> None:
    if not (_is_str(node) and node.value in _DIRECTIONS):  # type: ignore[attr-defined]
        raise CalculatorError("the limit direction must be '+', '-' or '+-'")


def _op_text(op: ast.AST) -> str:
    symbols = {
        ast.BitXor: "^",
        ast.BitAnd: "&",
        ast.BitOr: "|",
        ast.LShift: "<<",
        ast.RShift: ">>",
        ast.MatMult: "@",
        ast.Invert: "~",
        ast.Not: "not",
        ast.Is: "is",
        ast.IsNot: "is not",
        ast.In: "in",
        ast.NotIn: "not in",
    }
    return repr(symbols.get(type(op), type(op).__name__))


class _Est(NamedTuple):
    """What is statically known of a sub-expression.

    `numeric` says it is a plain rational number; `value` is that number while it is
    small enough to track cheaply (None otherwise); `bits` bounds log2 of the number, or,
    for a symbolic expression, of the numeric coefficient SymPy computes eagerly for it;
    `spreads` says whether a power of it raises that coefficient to the power too
    (products and powers do; SymPy leaves `(x + 2)**n` alone).
    """

    value: Fraction | None
    bits: float
    numeric: bool
    spreads: bool


_UNKNOWN = _Est(None, 0.0, False, False)
_POWER_LIKE = frozenset({"sqrt", "cbrt", "root", "Rational"})
#: Exact values are tracked up to this size, so the estimate stays microseconds-cheap.
_EXACT_BITS = 4_096
#: Factorials are computed exactly here up to this n (170! has 307 digits: microseconds).
_EXACT_FACTORIAL = 170


def _frac_log2(value: Fraction) -> float:
    return log2_size(value.numerator, value.denominator)


class _Estimator:
    """Static size estimate of exact arithmetic: cheap, bounded, done before any dispatch.

    It only refuses what would certainly be too large; the worker checks actual values.
    """

    def __init__(self, limits: Limits) -> None:
        self._limits = limits

    def visit(self, node: ast.AST) -> _Est:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, int):
                return self._number(Fraction(node.value))
            return _UNKNOWN
        if isinstance(node, ast.UnaryOp):
            inner = self.visit(node.operand)
            if inner.value is not None and isinstance(node.op, ast.USub):
                return inner._replace(value=-inner.value)
            return inner
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.List | ast.Tuple):
            return self._most(node.elts)
        if isinstance(node, ast.Compare):
            return self._most([node.left, *node.comparators])
        return _UNKNOWN

    def _most(self, parts: list[ast.expr]) -> _Est:
        return _Est(None, max((self.visit(p).bits for p in parts), default=0.0), False, False)

    def _number(self, value: Fraction | None, bits: float | None = None) -> _Est:
        """A rational number, given exactly or (when big) only by its size bound."""
        if value is not None:
            bits = _frac_log2(value)
        bits = bits or 0.0
        check_bits(bits, self._limits)
        exact = value if value is not None and bits <= _EXACT_BITS else None
        return _Est(exact, bits, True, True)

    def _binop(self, node: ast.BinOp) -> _Est:
        # The exponent first: a power tower is evaluated from the right.
        right = self.visit(node.right)
        left = self.visit(node.left)
        a, b = left.value, right.value
        op = node.op
        if isinstance(op, ast.Div | ast.Mod | ast.FloorDiv) and b == 0 and right.numeric:
            raise CalculatorError("division by zero")
        if isinstance(op, ast.Pow):
            return self._power(left, right)
        if left.numeric and right.numeric:
            if a is not None and b is not None:
                return self._number(_exact_binop(op, a, b))
            if isinstance(op, ast.Add | ast.Sub):
                return self._number(None, max(left.bits, right.bits) + 1)
            if isinstance(op, ast.Mod):
                return self._number(None, max(left.bits, right.bits))
            return self._number(None, left.bits + right.bits)
        if isinstance(op, ast.Mult | ast.Div):
            bits = left.bits + right.bits
            check_bits(bits, self._limits, "a coefficient")
            return _Est(None, bits, False, True)
        return _Est(None, max(left.bits, right.bits), False, False)

    def _power(self, base: _Est, exponent: _Est) -> _Est:
        e = exponent.value
        if not exponent.numeric:
            return _Est(None, base.bits, False, False)
        b = base.value
        if e is None:  # an exponent of thousands of digits
            if base.numeric and b is not None and abs(b) <= 1:
                return _UNKNOWN  # 0, 1 or -1 to a huge power: SymPy copes
            if base.spreads and (base.bits > 0 or not base.numeric):
                raise CalculatorError(
                    "expression too large: the power would have about "
                    f"10^{exponent.bits / _LOG2_10:.0f} digits "
                    f"(limit {self._limits.max_digits:,})"
                )
            return _Est(None, base.bits, False, False)
        if b == 0 and e < 0:
            raise CalculatorError("division by zero")
        if not base.spreads:
            return _Est(None, base.bits, False, False)
        check_power(base.bits, e, self._limits)
        bits = base.bits * math.ceil(abs(e))
        if base.numeric and e.denominator == 1:
            if b is not None and bits <= _EXACT_BITS:
                return self._number(b ** int(e))
            return self._number(None, bits)
        return _Est(None, bits, False, True)

    def _call(self, node: ast.Call) -> _Est:
        name = node.func.id  # type: ignore[attr-defined]  # vetted: a Name
        args = [_UNKNOWN if _is_str(arg) else self.visit(arg) for arg in node.args]
        keywords = {kw.arg: self.visit(kw.value) for kw in node.keywords if not _is_str(kw.value)}
        ints = [_as_int(a.value) for a in args]
        limits = self._limits
        if name == "factorial" and ints[0] is not None:
            check_factorial(ints[0], limits)
            if 0 <= ints[0] <= _EXACT_FACTORIAL:  # small: exact, so (5!)! is judged exactly
                return self._number(Fraction(math.factorial(ints[0])))
            bits = math.lgamma(ints[0] + 1) / math.log(2) if ints[0] > 0 else 0.0
            return self._number(None, bits)
        if name == "factorial2" and ints[0] is not None:
            check_factorial(ints[0] // 2, limits)
            if 0 <= ints[0] <= _EXACT_FACTORIAL:
                return self._number(Fraction(math.prod(range(ints[0], 0, -2))))
            bits = math.lgamma(ints[0] + 1) / math.log(2) / 2 + 1 if ints[0] > 0 else 0.0
            return self._number(None, bits)
        self._check_term_by_term(name, node, args, ints)
        if name == "pow" and len(args) == 2:
            return self._power(args[0], args[1])
        if name == "perm" and ints[0] is not None and ints[1] is not None:
            check_factorial(min(ints[0], ints[1]), limits)
            check_bits(max(ints[1], 0) * math.log2(max(abs(ints[0]), 2)), limits)
        if name in ("factorial", "factorial2") and args[0].numeric and args[0].value is None:
            raise CalculatorError(
                f"expression too large: factorial of a number with about "
                f"{args[0].bits / _LOG2_10:,.0f} digits (factorial is limited to n <= "
                f"{limits.max_factorial:,})"
            )
        if name == "binomial" and ints[0] is not None and ints[1] is not None:
            check_binomial(ints[0], ints[1], limits)
        elif name in ("N", "evalf"):
            digits = ints[1] if len(ints) > 1 else _as_int(_value(keywords.get("n")))
            if digits is not None:
                check_precision(digits, limits)
        elif name in ("eye", "zeros", "ones") and any(i is not None for i in ints):
            known = [i for i in ints if i is not None]
            check_matrix_dims(max(known), min(known), limits)
        elif name == "prime" and ints[0] is not None:
            check_int_cap(name, ints[0], limits.max_prime_index)
        elif name == "primepi" and ints[0] is not None:
            check_int_cap(name, ints[0], limits.max_primepi)
        elif name == "Rational" and all(a.numeric for a in args):
            if len(args) == 2 and args[1].value == 0:
                raise CalculatorError("division by zero")
            return self._number(None, sum(a.bits for a in args))
        bits = max((a.bits for a in args), default=0.0)
        return _Est(None, bits, False, name in _POWER_LIKE)

    def _check_term_by_term(
        self, name: str, node: ast.Call, args: list[_Est], ints: list[int | None]
    ) -> None:
        """Refuse what SymPy would work out one factor or term at a time over too many: gamma
        and its kin of big non-integers, sums and products over long numeric ranges."""
        if name in _SUMS and len(node.args) >= 2:
            self._check_ranges(name, node.args[0], node.args[1:])
        if name not in _NON_INTEGER_CHECKED:
            return
        known = [a.value for a in args[:2] if a.numeric and a.value is not None]
        for value in known if any(v.denominator != 1 for v in known) else ():
            check_non_integer(name, value, self._limits)

    def _check_ranges(self, name: str, summand: ast.expr, ranges: list[ast.expr]) -> None:
        """Refuse a sum or product over a numeric range of too many terms."""
        for bounds in ranges:
            if not isinstance(bounds, ast.Tuple) or len(bounds.elts) != 3:
                continue
            low, high = (_as_int(self.visit(end).value) for end in bounds.elts[1:])
            if low is None or high is None:
                continue
            if _SUMS[name] == "sum" and _is_polynomial(summand):
                continue
            check_terms(f"this {_SUMS[name]}", high - low + 1, self._limits)


#: The functions whose non-integer arguments `check_non_integer` bounds.
_NON_INTEGER_CHECKED = frozenset({"gamma", "factorial", "binomial", "perm"})
#: Sums and products over a range, and what a refusal calls them (sums of polynomials are
#: summed in closed form, at any length).
_SUMS = {"summation": "sum", "sum": "sum", "product": "product"}


def _is_polynomial(node: ast.expr) -> bool:
    """Whether the expression is a polynomial in its names (which SymPy sums in closed form)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int)
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, ast.UnaryOp):
        return _is_polynomial(node.operand)
    if not isinstance(node, ast.BinOp) or not _is_polynomial(node.left):
        return False
    if isinstance(node.op, ast.Add | ast.Sub | ast.Mult):
        return _is_polynomial(node.right)
    if isinstance(node.op, ast.Div):
        return isinstance(node.right, ast.Constant)
    if isinstance(node.op, ast.Pow):
        return isinstance(node.right, ast.Constant) and isinstance(node.right.value, int)
    return False


def _exact_binop(op: ast.operator, a: Fraction, b: Fraction) -> Fraction:
    if isinstance(op, ast.Add):
        return a + b
    if isinstance(op, ast.Sub):
        return a - b
    if isinstance(op, ast.Mult):
        return a * b
    if isinstance(op, ast.Div):
        return a / b
    if isinstance(op, ast.Mod):
        return a % b
    return Fraction(a // b)


def _value(est: _Est | None) -> Fraction | None:
    return None if est is None else est.value


def _as_int(value: Fraction | None) -> int | None:
    if value is not None and value.denominator == 1:
        return int(value)
    return None
