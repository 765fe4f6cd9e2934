"""The worker side of the students' families: statistics, probability, differential equations,
sets, number theory, linear algebra, complex numbers, units and checking a step of working."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import sympy
from sympy.matrices import MatrixBase

from .functions import arith, rational_log2
from .language import CalculatorError, Limits, check_bits, check_factorial, check_power

__all__ = ["FAMILIES", "Noted", "unit"]

#: Largest n of an exact binomial or Poisson cdf (a sum of n + 1 exact terms).
_MAX_CDF_TERMS = 1_000
#: Largest exponent `pow(a, b)` computes without a modulus is checked by check_power.


class Noted(NamedTuple):
    """A value with a remark for the answer's note (e.g. which variance it is)."""

    value: Any
    note: str


def _int(value: Any, what: str) -> int:
    if isinstance(value, sympy.Integer):
        return int(value)
    if isinstance(value, sympy.Rational | sympy.Float) and value == int(value):
        return int(value)
    raise CalculatorError(f"{what} must be an integer")


def _data(args: tuple[Any, ...], name: str) -> list[Any]:
    values = list(args[0]) if len(args) == 1 and isinstance(args[0], list | tuple) else list(args)
    if len(args) == 1 and isinstance(args[0], MatrixBase):
        values = list(args[0])
    if not values:
        raise CalculatorError(f"{name} needs data, as in {name}([1, 2, 3])")
    for v in values:
        if isinstance(v, list | tuple) or not isinstance(v, sympy.Expr):
            raise CalculatorError(f"{name} needs a flat list of numbers, as in {name}([1, 2, 3])")
    return values


def _mean(limits: Limits, *args: Any) -> Any:
    values = _data(args, "mean")
    return sympy.Add(*values) / len(values)


def _median(limits: Limits, *args: Any) -> Any:
    values = sorted(_data(args, "median"), key=_sort_key)
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2


def _sort_key(value: Any) -> Any:
    if not value.is_number or not value.is_real:
        raise CalculatorError("sorting needs real numbers")
    return value.evalf(30)


def _mode(limits: Limits, *args: Any) -> Any:
    counts = Counter(_data(args, "mode"))
    top = max(counts.values())
    modes = [v for v, c in counts.items() if c == top]
    if len(modes) == 1:
        return modes[0]
    return Noted(modes, f"{len(modes)} values are equally common (each {top} times)")


def _variance(sample: bool, root: bool) -> Callable[..., Any]:
    name = ("stdev" if root else "variance") if sample else ("pstdev" if root else "pvariance")

    def call(limits: Limits, *args: Any) -> Any:
        values = _data(args, name)
        n = len(values)
        if sample and n < 2:
            raise CalculatorError(f"{name} (sample) needs at least two values")
        mean = sympy.Add(*values) / n
        ss = sympy.Add(*((v - mean) ** 2 for v in values))
        result = ss / (n - 1 if sample else n)
        result = sympy.sqrt(result) if root else result
        kind = "sample (divides by n - 1)" if sample else "population (divides by n)"
        other = {"variance": "pvariance", "stdev": "pstdev", "pvariance": "variance",
                 "pstdev": "stdev"}[name]  # fmt: skip
        return Noted(sympy.simplify(result), f"{kind}; {other} gives the other one")

    return call


def _quantile(limits: Limits, data: Any, q: Any, scale: int = 1) -> Any:
    values = sorted(_data((data,), "quantile"), key=_sort_key)
    q = arith(q) / scale
    if not (isinstance(q, sympy.Rational) and 0 <= q <= 1):
        raise CalculatorError(
            "quantile(data, q) needs 0 <= q <= 1 (percentile(data, p) takes 0..100)"
        )
    h = (len(values) - 1) * q
    lo = int(sympy.floor(h))
    hi = min(lo + 1, len(values) - 1)
    value = values[lo] + (h - lo) * (values[hi] - values[lo])
    return Noted(value, "linear interpolation between order statistics (NumPy's default)")


def _pair(xs: Any, ys: Any, name: str) -> tuple[list[Any], list[Any]]:
    a, b = _data((xs,), name), _data((ys,), name)
    if len(a) != len(b) or len(a) < 2:
        raise CalculatorError(f"{name}(xs, ys) needs two lists of the same length (at least 2)")
    return a, b


def _covariance(limits: Limits, xs: Any, ys: Any) -> Any:
    a, b = _pair(xs, ys, "covariance")
    ma, mb = sympy.Add(*a) / len(a), sympy.Add(*b) / len(b)
    value = sympy.Add(*((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))) / (len(a) - 1)
    return Noted(value, "sample covariance (divides by n - 1)")


def _sums(xs: Any, ys: Any, name: str) -> tuple[Any, Any, Any, int]:
    a, b = _pair(xs, ys, name)
    n = len(a)
    ma, mb = sympy.Add(*a) / n, sympy.Add(*b) / n
    sxy = sympy.Add(*((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)))
    sxx = sympy.Add(*((x - ma) ** 2 for x in a))
    syy = sympy.Add(*((y - mb) ** 2 for y in b))
    return sxy, sxx, syy, n


def _correlation(limits: Limits, xs: Any, ys: Any) -> Any:
    sxy, sxx, syy, _ = _sums(xs, ys, "correlation")
    if sxx == 0 or syy == 0:
        raise CalculatorError("correlation is undefined when one list is constant")
    return Noted(sympy.simplify(sxy / sympy.sqrt(sxx * syy)), "Pearson correlation r")


def _linregress(limits: Limits, xs: Any, ys: Any) -> Any:
    sxy, sxx, _, _ = _sums(xs, ys, "linregress")
    if sxx == 0:
        raise CalculatorError("linregress needs at least two different x values")
    a, b = _data((xs,), "linregress"), _data((ys,), "linregress")
    slope = sxy / sxx
    intercept = sympy.Add(*b) / len(b) - slope * sympy.Add(*a) / len(a)
    x = sympy.Symbol("x")
    return Noted(
        slope * x + intercept, f"least-squares line y = m*x + b, m = {slope}, b = {intercept}"
    )


# Distributions: exact where SymPy is exact, with the decimal alongside.


def _normal_args(mu: Any, sigma: Any) -> tuple[Any, Any]:
    sigma = arith(sigma)
    if sigma.is_positive is False:
        raise CalculatorError("the standard deviation sigma must be positive")
    return arith(mu), sigma


def _phi(z: Any) -> Any:
    return (1 + sympy.erf(z / sympy.sqrt(2))) / 2


def _normal_pdf(limits: Limits, x: Any, mu: Any = 0, sigma: Any = 1) -> Any:
    mu, sigma = _normal_args(sympy.sympify(mu), sympy.sympify(sigma))
    return sympy.exp(-((arith(x) - mu) ** 2) / (2 * sigma**2)) / (sigma * sympy.sqrt(2 * sympy.pi))


def _normal_cdf(limits: Limits, x: Any, mu: Any = 0, sigma: Any = 1) -> Any:
    mu, sigma = _normal_args(sympy.sympify(mu), sympy.sympify(sigma))
    return Noted(_phi((arith(x) - mu) / sigma), "P(X <= x) for X ~ Normal(mu, sigma)")


def _normalcdf(limits: Limits, lo: Any, hi: Any, mu: Any = 0, sigma: Any = 1) -> Any:
    mu, sigma = _normal_args(sympy.sympify(mu), sympy.sympify(sigma))
    value = _phi((arith(hi) - mu) / sigma) - _phi((arith(lo) - mu) / sigma)
    return Noted(value, "P(lo <= X <= hi) for X ~ Normal(mu, sigma) (TI order)")


def _normal_inv(limits: Limits, p: Any, mu: Any = 0, sigma: Any = 1) -> Any:
    mu, sigma = _normal_args(sympy.sympify(mu), sympy.sympify(sigma))
    p = arith(p)
    if p.is_number and not (0 < p < 1):
        raise CalculatorError("the inverse normal cdf needs 0 < p < 1")
    value = mu + sigma * sympy.sqrt(2) * sympy.erfinv(2 * p - 1)
    return Noted(value, "x with P(X <= x) = p for X ~ Normal(mu, sigma)")


def _probability(p: Any) -> Any:
    p = arith(p)
    if p.is_number and not (0 <= p <= 1):
        raise CalculatorError("a probability p must be between 0 and 1")
    return p


def _count(n: Any, what: str) -> int:
    value = _int(n, what)
    if value < 0:
        raise CalculatorError(f"{what} must not be negative")
    if value > _MAX_CDF_TERMS * 100:
        raise CalculatorError(f"{what} is over the limit of {_MAX_CDF_TERMS * 100:,}")
    return value


def _binomial_pmf(limits: Limits, k: Any, n: Any, p: Any) -> Any:
    kk, nn, p = _count(k, "k"), _count(n, "n"), _probability(p)
    if kk > nn:
        return sympy.S.Zero
    return sympy.binomial(nn, kk) * p**kk * (1 - p) ** (nn - kk)


def _binomial_cdf(limits: Limits, k: Any, n: Any, p: Any) -> Any:
    kk, nn, p = _count(k, "k"), _count(n, "n"), _probability(p)
    if min(kk, nn) > _MAX_CDF_TERMS:
        raise CalculatorError(
            f"binomial_cdf sums at most {_MAX_CDF_TERMS} terms; use "
            "normal_cdf(k + 1/2, n*p, sqrt(n*p*(1-p))) as an approximation"
        )
    terms = [sympy.binomial(nn, i) * p**i * (1 - p) ** (nn - i) for i in range(min(kk, nn) + 1)]
    return Noted(sympy.Add(*terms), "P(X <= k) for X ~ Binomial(n, p)")


def _poisson_pmf(limits: Limits, k: Any, lam: Any) -> Any:
    kk = _count(k, "k")
    check_factorial(kk, limits)
    lam = arith(lam)
    return sympy.exp(-lam) * lam**kk / sympy.factorial(kk)


def _poisson_cdf(limits: Limits, k: Any, lam: Any) -> Any:
    kk = _count(k, "k")
    if kk > _MAX_CDF_TERMS:
        raise CalculatorError(f"poisson_cdf sums at most {_MAX_CDF_TERMS} terms")
    lam = arith(lam)
    terms = [lam**i / sympy.factorial(i) for i in range(kk + 1)]
    return Noted(sympy.exp(-lam) * sympy.Add(*terms), "P(X <= k) for X ~ Poisson(lambda)")


def _uniform(cdf: bool) -> Callable[..., Any]:
    def call(limits: Limits, x: Any, a: Any, b: Any) -> Any:
        x, a, b = arith(x), arith(a), arith(b)
        if (b - a).is_positive is not True:
            raise CalculatorError("a uniform distribution on [a, b] needs a < b")
        if cdf:
            return sympy.Piecewise((0, x < a), ((x - a) / (b - a), x <= b), (1, True))
        return sympy.Piecewise((1 / (b - a), (x >= a) & (x <= b)), (0, True))

    return call


def _ti(function: Callable[..., Any], order: tuple[int, ...]) -> Callable[..., Any]:
    """A TI calculator's argument order (binompdf(n, p, k)) onto ours."""

    def call(limits: Limits, *args: Any) -> Any:
        return function(limits, *(args[i] for i in order))

    return call


# Number theory


def _factorial2(limits: Limits, n: Any) -> Any:
    if isinstance(n, sympy.Integer):
        if n < -1:
            raise CalculatorError("the double factorial n!! needs n >= -1")
        check_factorial(int(n) // 2, limits)
    return sympy.factorial2(arith(n))


def _perm(limits: Limits, n: Any, k: Any) -> Any:
    if isinstance(n, sympy.Integer) and isinstance(k, sympy.Integer):
        check_factorial(min(int(n), int(k)), limits)
        if k < 0 or k > n:
            return sympy.S.Zero
    return sympy.ff(arith(n), arith(k))


def _pow(limits: Limits, base: Any, exponent: Any, modulus: Any = None) -> Any:
    if modulus is None:
        if isinstance(base, sympy.Rational) and isinstance(exponent, sympy.Integer):
            from fractions import Fraction

            check_power(rational_log2(base), Fraction(int(exponent)), limits)
        return arith(base) ** arith(exponent)
    b, e, m = _int(base, "pow's base"), _int(exponent, "pow's exponent"), _int(modulus, "modulus")
    if m == 0:
        raise CalculatorError("division by zero: the modulus is 0")
    check_bits(max(math.log2(abs(m) + 1), 1.0), limits)
    try:
        return sympy.Integer(pow(b, e, m))
    except ValueError:
        raise CalculatorError(f"{b} has no inverse modulo {m} (they share a factor)") from None


def _modinv(limits: Limits, a: Any, m: Any) -> Any:
    return _pow(limits, a, sympy.Integer(-1), m)


def _crt(limits: Limits, moduli: Any, residues: Any) -> Any:
    from sympy.ntheory.modular import crt

    if not isinstance(moduli, list | tuple) or not isinstance(residues, list | tuple):
        raise CalculatorError("crt(moduli, residues) takes two lists: crt([3, 5, 7], [2, 3, 2])")
    ms = [_int(v, "a modulus") for v in moduli]
    rs = [_int(v, "a residue") for v in residues]
    if len(ms) != len(rs) or not ms:
        raise CalculatorError("crt needs as many residues as moduli")
    check_bits(sum(math.log2(abs(m) + 1) for m in ms), limits)
    solution = crt(ms, rs)
    if solution is None:
        raise CalculatorError("these congruences have no common solution")
    x, m = solution
    return Noted(sympy.Integer(x), f"x = {x} (mod {m}); the smallest non-negative solution")


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base(limits: Limits, n: Any, b: Any) -> Any:
    value, radix = _int(n, "the number"), _int(b, "the base")
    if not 2 <= radix <= 36:
        raise CalculatorError("base(n, b) needs 2 <= b <= 36")
    digits = []
    v = abs(value)
    while True:
        v, r = divmod(v, radix)
        digits.append(_DIGITS[r])
        if v == 0:
            break
    text = ("-" if value < 0 else "") + "".join(reversed(digits))
    return Noted(sympy.Symbol(text), f"{value} written in base {radix} (digits 0-9a-z)")


# Equations, sets, differential equations


def _subs(limits: Limits, f: Any, *args: Any) -> Any:
    if len(args) == 2:
        pairs = [(args[0], args[1])]
    elif isinstance(args[0], sympy.Equality):
        pairs = [(args[0].lhs, args[0].rhs)]
    elif isinstance(args[0], list | tuple):
        pairs = []
        for item in args[0]:
            if isinstance(item, sympy.Equality):
                pairs.append((item.lhs, item.rhs))
            elif isinstance(item, tuple) and len(item) == 2:
                pairs.append((item[0], item[1]))
            else:
                raise CalculatorError("subs takes subs(f, x, 2) or subs(f, [(x, 2), (y, 3)])")
    else:
        raise CalculatorError("subs takes subs(f, x, 2) or subs(f, [(x, 2), (y, 3)])")
    if isinstance(f, list | tuple):
        return [_subs(limits, v, *args) for v in f]
    if not isinstance(f, sympy.Basic | MatrixBase):
        raise CalculatorError("subs needs an expression")
    result = f.subs(pairs)
    return result.doit() if isinstance(result, sympy.Basic) else result


def _dsolve(limits: Limits, eq: Any, func: Any = None, ics: Any = None) -> Any:
    equations = list(eq) if isinstance(eq, list | tuple) else [eq]
    for e in equations:
        if not isinstance(e, sympy.Equality | sympy.Expr) or not e.atoms(sympy.Derivative):
            raise CalculatorError(
                "dsolve needs a differential equation, as in dsolve(y'' + y = 0, y(x)) or "
                "dsolve(diff(f(x), x) = f(x), f(x))"
            )
    conditions: dict[Any, Any] | None = None
    if ics is not None:
        items = ics if isinstance(ics, list | tuple) else [ics]
        conditions = {}
        for item in items:
            if not isinstance(item, sympy.Equality):
                raise CalculatorError("ics takes conditions such as ics=[y(0) = 1, y'(0) = 0]")
            conditions[item.lhs] = item.rhs
    if isinstance(func, list | tuple):
        func = list(func)
    target = equations if len(equations) > 1 else equations[0]
    if func is None:
        return sympy.dsolve(target, ics=conditions)
    return sympy.dsolve(target, func, ics=conditions)


def _domain(value: Any) -> Any:
    if value is None:
        return sympy.S.Reals
    if isinstance(value, sympy.Set):
        return value
    raise CalculatorError("the domain is one of Reals, Integers, Naturals, Complexes")


def _solveset(limits: Limits, f: Any, x: Any = None, domain: Any = None, **kw: Any) -> Any:
    domain = _domain(kw.get("domain", domain))
    if x is None:
        symbols = sorted(getattr(f, "free_symbols", set()), key=str)
        if len(symbols) != 1:
            raise CalculatorError("solveset(f, x, Reals) needs the variable when there are several")
        x = symbols[0]
    return sympy.solveset(arith(f) if not isinstance(f, sympy.Basic) else f, x, domain)


def solve_inequalities(value: Any, symbol: Any = None) -> Any:
    """Solve an inequality or a chain/list of them in one variable, as a set of reals."""
    relations: list[Any] = []
    for item in value if isinstance(value, list | tuple) else [value]:
        relations += list(item.args) if isinstance(item, sympy.And) else [item]
    symbols = set().union(*(r.free_symbols for r in relations))
    if len(symbols) > 1 or symbol is None:
        if len(symbols) != 1:
            raise CalculatorError("solve the inequality for one variable: solve(x^2 - 4 < 0, x)")
        symbol = next(iter(symbols))
    result: Any = sympy.S.Reals
    for relation in relations:
        result = result.intersect(sympy.solveset(relation, symbol, sympy.S.Reals))
    return result


def is_inequality(value: Any) -> bool:
    """An inequality, a chain of them (And) or a list of them."""
    if isinstance(value, list | tuple):
        return bool(value) and all(is_inequality(v) for v in value)
    if isinstance(value, sympy.And):
        return all(is_inequality(a) for a in value.args)
    return isinstance(value, sympy.Rel) and not isinstance(value, sympy.Eq | sympy.Ne)


def _interval(limits: Limits, a: Any, b: Any) -> Any:
    return sympy.Interval(arith(a), arith(b))


# Linear algebra, complex numbers


def _matrix(value: Any, name: str) -> MatrixBase:
    if isinstance(value, list | tuple):
        value = sympy.Matrix(value)
    if not isinstance(value, MatrixBase):
        raise CalculatorError(f"{name} needs a matrix, e.g. {name}(Matrix([[1, 2], [3, 4]]))")
    return value


def _eigenvects(limits: Limits, m: Any) -> Any:
    matrix = _matrix(m, "eigenvects")
    if not matrix.is_square:
        raise CalculatorError("eigenvects needs a square matrix")
    return Noted(
        [(val, mult, vecs) for val, mult, vecs in matrix.eigenvects()],
        "each item is (eigenvalue, multiplicity, [eigenvectors])",
    )


def _linsolve(limits: Limits, system: Any, symbols: Any = None) -> Any:
    if isinstance(system, tuple) and len(system) == 2:
        a, b = _matrix(system[0], "linsolve"), _matrix(system[1], "linsolve")
        system = (a, b)
    elif isinstance(system, MatrixBase):
        pass
    elif isinstance(system, sympy.Basic):
        system = [system]
    if symbols is None:
        if isinstance(system, tuple):
            symbols = sympy.symbols(f"x1:{system[0].cols + 1}")
        else:
            symbols = sorted(set().union(*(e.free_symbols for e in system)), key=str)
    elif not isinstance(symbols, list | tuple):
        symbols = [symbols]
    return sympy.linsolve(system, *symbols)


def _charpoly(limits: Limits, m: Any, symbol: Any = None) -> Any:
    matrix = _matrix(m, "charpoly")
    if not matrix.is_square:
        raise CalculatorError("charpoly needs a square matrix")
    lam = symbol if symbol is not None else sympy.Symbol("lamda")
    return matrix.charpoly(lam).as_expr()


def _vector(value: Any, name: str) -> MatrixBase:
    matrix = _matrix(value, name)
    if 1 not in matrix.shape:
        raise CalculatorError(f"{name} needs vectors, as in {name}([1, 2, 3], [4, 5, 6])")
    return matrix.reshape(len(matrix), 1)


def _polar(limits: Limits, z: Any) -> Any:
    z = arith(z)
    r, theta = sympy.simplify(sympy.Abs(z)), sympy.simplify(sympy.arg(z))
    return Noted((r, theta), f"(r, theta): z = {r}*exp(I*{theta}), theta in (-pi, pi]")


def _rect(limits: Limits, r: Any, theta: Any) -> Any:
    return sympy.expand_complex(arith(r) * sympy.exp(sympy.I * arith(theta)))


# Units


_UNIT_NAMES = {
    "meters": "meter", "metre": "meter", "metres": "meter", "kilometers": "kilometer",
    "centimeters": "centimeter", "millimeters": "millimeter", "miles": "mile", "mi": "mile",
    "feet": "foot", "ft": "foot", "inches": "inch", "yards": "yard", "yd": "yard",
    "nmi": "nautical_mile", "ly": "lightyear", "seconds": "second", "sec": "second",
    "minutes": "minute", "min": "minute", "hours": "hour", "hr": "hour", "days": "day",
    "weeks": "week", "years": "year", "milliseconds": "millisecond", "kilograms": "kilogram",
    "grams": "gram", "milligram": "milligram", "pounds": "pound", "lbs": "pound",
    "lb": "pound", "ounces": "ounce", "oz": "ounce", "tonnes": "tonne", "newtons": "newton",
    "joules": "joule", "kJ": "kilojoule", "watts": "watt", "kW": "kilowatt",
    "Pa": "pascal", "kPa": "kilopascal", "calories": "calorie", "cal": "calorie",
    "eV": "electronvolt", "liters": "liter", "litre": "liter", "litres": "liter",
    "L": "liter", "l": "liter", "mL": "milliliter", "ml": "milliliter", "gallons": "gallon",
    "gal": "gallon", "Hz": "hertz", "volts": "volt", "amperes": "ampere", "ohms": "ohm",
    "coulombs": "coulomb", "knots": "knot", "radians": "radian", "rad": "radian",
    "N": "newton", "J": "joule", "W": "watt", "V": "volt", "A": "ampere", "K": "kelvin",
    "m": "meter", "s": "second", "g": "gram", "h": "hour", "kg": "kilogram", "km": "kilometer",
    "cm": "centimeter", "mm": "millimeter", "ms": "millisecond",
}  # fmt: skip


def unit(name: str) -> Any:
    """The SymPy unit a `unit_<name>` of the language stands for."""
    from sympy.physics import units

    name = _UNIT_NAMES.get(name, name)
    derived = {
        "mph": units.mile / units.hour,
        "kph": units.kilometer / units.hour,
        "kmh": units.kilometer / units.hour,
        "knot": units.nautical_mile / units.hour,
        "kcal": sympy.Rational(4184) * units.joule,
        "calorie": sympy.Rational(4184, 1000) * units.joule,
        "gallon": sympy.Rational(3785411784, 10**9) * units.liter,
        "ounce": sympy.Rational(28349523125, 10**12) * units.kilogram,
        "kilopascal": 1000 * units.pascal,
        "kilojoule": 1000 * units.joule,
        "kilowatt": 1000 * units.watt,
        "bar": 100000 * units.pascal,
    }
    if name in derived:
        return derived[name]
    found = getattr(units, name, None)
    if not isinstance(found, sympy.Expr):
        raise CalculatorError(f"unknown unit: {name}")
    return found


def _convert_to(limits: Limits, quantity: Any, target: Any) -> Any:
    from sympy.physics.units import Quantity, convert_to

    quantity, target = arith(quantity), arith(target)
    if not quantity.atoms(Quantity) or not target.atoms(Quantity):
        raise CalculatorError(
            "convert_to(quantity, unit) needs units on both sides: convert_to(5*mile, km) "
            "or 60 mph in m/s"
        )
    result = convert_to(quantity, target)
    wanted = target.atoms(Quantity)
    if not result.atoms(Quantity) <= wanted:
        have = ", ".join(sorted(str(q) for q in quantity.atoms(Quantity)))
        want = ", ".join(sorted(str(q) for q in wanted))
        raise CalculatorError(f"incompatible units: cannot convert {have} to {want}")
    return Noted(result, f"= {result.evalf(10)}")


# Checking one step of working


def _implies(limits: Limits, premise: Any, conclusion: Any) -> Any:
    """`premise => conclusion`: every solution of the premise satisfies the conclusion."""
    return Noted(*check_implication(premise, conclusion))


def check_implication(premise: Any, conclusion: Any) -> tuple[Any, str]:
    """Verified / false (with a counterexample) / unknown, as (truth value, explanation)."""
    symbols = sorted(
        set().union(*(getattr(v, "free_symbols", set()) for v in (premise, conclusion))),
        key=str,
    )
    if not symbols:
        return check_claim(conclusion)
    if len(symbols) == 1 and isinstance(premise, sympy.Rel | sympy.And):
        x = symbols[0]
        before = _solution_set(premise, x)
        after = _solution_set(conclusion, x)
        if before is not None and after is not None:
            if before.is_subset(after):
                if after.is_subset(before):
                    return sympy.true, f"verified: both sides have the solutions {before}"
                return sympy.true, f"verified (solutions {before} ⊆ {after}; not equivalent)"
            missing = sympy.Complement(before, after)
            return sympy.false, f"false: {x} in {missing} satisfies the premise, not the conclusion"
    return sympy.Symbol("unknown"), "unknown: could not decide this implication exactly"


def _solution_set(value: Any, x: Any) -> Any:
    try:
        if isinstance(value, sympy.Equality | sympy.Rel | sympy.And):
            domain = sympy.S.Reals if is_inequality(value) else sympy.S.Complexes
            if isinstance(value, sympy.And):
                return solve_inequalities(value, x)
            return sympy.solveset(value, x, domain)
        if value is sympy.true:
            return sympy.S.Complexes
    except (NotImplementedError, ValueError, TypeError):
        return None
    return None


def check_claim(claim: Any) -> tuple[Any, str]:
    """An identity or numeric claim: verified, false with a counterexample, or unknown."""
    if is_inequality(claim) and not getattr(claim, "free_symbols", None):
        claim = sympy.simplify(claim)
    if claim is sympy.true or claim is True:
        return sympy.true, "verified"
    if claim is sympy.false or claim is False:
        return sympy.false, "false: the two sides differ"
    if isinstance(claim, sympy.Equality):
        difference = sympy.simplify(claim.lhs - claim.rhs)
        if difference == 0:
            return sympy.true, "verified: the two sides are identical"
        symbols = sorted(difference.free_symbols, key=str)
        for point in _sample_points(len(symbols)):
            values = dict(zip(symbols, point, strict=True))
            try:
                got = difference.subs(values).evalf(30)
            except (TypeError, ValueError):
                continue
            if got.is_number and got.is_finite and abs(got) > 1e-20:
                shown = ", ".join(f"{s} = {v}" for s, v in values.items())
                left, right = claim.lhs.subs(values), claim.rhs.subs(values)
                return sympy.false, (
                    f"false: at {shown} the left side is {sympy.nsimplify(left)} and the right "
                    f"side is {sympy.nsimplify(right)}"
                    if symbols
                    else f"false: the left side is {left}, the right side {right}"
                )
        return sympy.Symbol("unknown"), "unknown: could not prove or refute it exactly"
    return sympy.Symbol("unknown"), "unknown: check takes a claim such as a = b or a => b"


def _sample_points(n: int) -> list[tuple[Any, ...]]:
    if n == 0:
        return [()]
    picks = [sympy.Rational(v) for v in (2, 3, -1, sympy.Rational(1, 2), 5, -3, 7)]
    return [tuple(picks[(i + k) % len(picks)] for k in range(n)) for i in range(len(picks))]


def _mapping(fn: Callable[[MatrixBase], Any], name: str) -> Callable[..., Any]:
    def call(limits: Limits, m: Any) -> Any:
        return fn(_matrix(m, name))

    return call


def _solve(limits: Limits, *args: Any) -> Any:
    if args and is_inequality(args[0]):
        symbol = args[1] if len(args) > 1 else None
        if isinstance(symbol, list | tuple):
            symbol = symbol[0] if len(symbol) == 1 else None
        return solve_inequalities(args[0], symbol)
    if args and isinstance(args[0], list | tuple) and any(is_inequality(a) for a in args[0]):
        raise CalculatorError(
            "solve a system of inequalities in one variable as solve([x > 1, x < 3], x)"
        )
    return sympy.solve(*args)


FAMILIES: dict[str, Callable[..., Any]] = {
    "solve": _solve,
    "factorial2": _factorial2,
    "perm": _perm,
    "pow": _pow,
    "modinv": _modinv,
    "crt": _crt,
    "base": _base,
    "mean": _mean,
    "median": _median,
    "mode": _mode,
    "variance": _variance(sample=True, root=False),
    "pvariance": _variance(sample=False, root=False),
    "stdev": _variance(sample=True, root=True),
    "pstdev": _variance(sample=False, root=True),
    "quantile": _quantile,
    "percentile": lambda limits, data, p: _quantile(limits, data, p, 100),
    "correlation": _correlation,
    "covariance": _covariance,
    "linregress": _linregress,
    "normal_pdf": _normal_pdf,
    "normal_cdf": _normal_cdf,
    "normal_inv": _normal_inv,
    "normalpdf": _normal_pdf,
    "normalcdf": _normalcdf,
    "invNorm": _normal_inv,
    "binomial_pmf": _binomial_pmf,
    "binomial_cdf": _binomial_cdf,
    "binompdf": _ti(_binomial_pmf, (2, 0, 1)),
    "binomcdf": _ti(_binomial_cdf, (2, 0, 1)),
    "poisson_pmf": _poisson_pmf,
    "poisson_cdf": _poisson_cdf,
    "poissonpdf": _ti(_poisson_pmf, (1, 0)),
    "poissoncdf": _ti(_poisson_cdf, (1, 0)),
    "uniform_pdf": _uniform(cdf=False),
    "uniform_cdf": _uniform(cdf=True),
    "dsolve": _dsolve,
    "subs": _subs,
    "solveset": _solveset,
    "interval": _interval,
    "eigenvects": _eigenvects,
    "nullspace": _mapping(lambda m: m.nullspace(), "nullspace"),
    "columnspace": _mapping(lambda m: m.columnspace(), "columnspace"),
    "linsolve": _linsolve,
    "charpoly": _charpoly,
    "adjugate": _mapping(lambda m: m.adjugate(), "adjugate"),
    "norm": _mapping(lambda m: m.norm(), "norm"),
    "dot": lambda limits, a, b: _vector(a, "dot").dot(_vector(b, "dot")),
    "cross": lambda limits, a, b: _vector(a, "cross").cross(_vector(b, "cross")),
    "polar": _polar,
    "rect": _rect,
    "convert_to": _convert_to,
    "implies": _implies,
    "check": lambda limits, claim: Noted(*check_claim(claim)),
}
