"""A function sampled on a grid: its poles, jumps, zeros and domain edges, found by bisection."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .expressions import Evaluator

__all__ = ["Curve", "analyse", "extreme", "spread"]


_BISECTIONS = 36  # halvings when locating a pole, jump, zero or edge of the domain
_GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass
class Curve:
    """One function on the plot: its samples, the points added between them, what was found."""

    text: str
    label: str
    color: str
    ev: Evaluator
    x: np.ndarray = field(default_factory=lambda: np.empty(0))
    y: np.ndarray = field(default_factory=lambda: np.empty(0))
    extra_x: list[float] = field(default_factory=list)  # points added to the grid
    extra_y: list[float] = field(default_factory=list)
    poles: list[float] = field(default_factory=list)
    jumps: list[float] = field(default_factory=list)
    undefined: list[tuple[float, float]] = field(default_factory=list)
    zeros: list[float] = field(default_factory=list)
    bound: float = math.inf  # |y| beyond this is an outlier (near a pole)

    def add(self, xs: Any, ys: Any) -> None:
        self.extra_x.extend(np.atleast_1d(xs).tolist())
        self.extra_y.extend(np.atleast_1d(ys).tolist())

    def drawn(self) -> tuple[np.ndarray, np.ndarray]:
        """The points to draw: the grid, refined edges, and NaN breaks, in x order."""
        x = np.concatenate([self.x, np.asarray(self.extra_x, dtype=float)])
        y = np.concatenate([self.y, np.asarray(self.extra_y, dtype=float)])
        order = np.argsort(x, kind="stable")
        return x[order], y[order]

    @property
    def finite(self) -> np.ndarray:
        return self.y[np.isfinite(self.y)]


def spread(values: np.ndarray) -> tuple[float, float, float]:
    """(5th percentile, 95th percentile, their distance or a stand-in when it is 0)."""
    q_lo, q_hi = (float(q) for q in np.percentile(values, [5, 95]))
    h = q_hi - q_lo
    if h <= 0:
        h = max(abs(q_lo), abs(q_hi), 1.0)
    return q_lo, q_hi, h


def _bisect_breaks(curve: Curve, bound: float, h: float) -> set[int]:
    """Find where the curve jumps or has a pole between samples; mark those with NaN.

    A candidate is a step much larger than the typical one. Halving its interval again
    and again shrinks the step of a continuous function to nothing, while a jump keeps its
    size and a pole's values blow up. Returns the indices i of broken intervals (i, i+1).
    """
    x, y = curve.x, curve.y
    pairs = np.isfinite(y[:-1]) & np.isfinite(y[1:])
    if not pairs.any():
        return set()
    dy = np.abs(np.diff(y))
    typical = float(np.median(dy[pairs]))
    threshold = max(20.0 * typical, 0.02 * h)
    idx = np.flatnonzero(pairs & (dy > threshold))
    if idx.size == 0:
        return set()
    a, b, ya, yb = x[idx], x[idx + 1], y[idx], y[idx + 1]
    step0 = np.abs(yb - ya)
    size0 = np.maximum(np.abs(ya), np.abs(yb))
    hit = np.zeros(idx.size, dtype=bool)  # landed on an undefined point
    for _ in range(_BISECTIONS):
        m = (a + b) / 2
        ym = curve.ev(m)
        hit |= ~np.isfinite(ym)
        left = np.abs(ym - ya) >= np.abs(yb - ym)
        go_left, go_right = left & ~hit, ~left & ~hit
        b, yb = np.where(go_left, m, b), np.where(go_left, ym, yb)
        a, ya = np.where(go_right, m, a), np.where(go_right, ym, ya)
    size = np.maximum(np.abs(ya), np.abs(yb))
    broken = hit | (np.abs(yb - ya) > 0.25 * step0)
    pole = np.where(hit, size0 > bound, size > 10.0 * np.maximum(size0, bound))
    out: set[int] = set()
    for k in np.flatnonzero(broken):
        at = float((a[k] + b[k]) / 2)
        (curve.poles if pole[k] else curve.jumps).append(at)
        # Draw each side up to the break, with a gap (NaN) between them.
        curve.add([a[k], at, b[k]], [ya[k] if not hit[k] else np.nan, np.nan, yb[k]])
        out.add(int(idx[k]))
    return out


def _domain_edges(curve: Curve, bound: float) -> None:
    """Locate where the curve stops being defined between samples; note the gaps."""
    x, y = curve.x, curve.y
    ok = np.isfinite(y)
    edges = np.flatnonzero(ok[:-1] != ok[1:])
    good = np.where(ok[edges], x[edges], x[edges + 1])
    bad = np.where(ok[edges], x[edges + 1], x[edges])
    y_good = np.where(ok[edges], y[edges], y[edges + 1])
    for _ in range(_BISECTIONS):
        m = (good + bad) / 2
        ym = curve.ev(m)
        fine = np.isfinite(ym)
        good, y_good = np.where(fine, m, good), np.where(fine, ym, y_good)
        bad = np.where(fine, bad, m)
    curve.add(good, y_good)
    edge_at = {int(i): (float(bad[k]), float(y_good[k])) for k, i in enumerate(edges)}
    # Runs of undefined samples, as x-intervals; a pole exactly on a sample is a tiny one.
    span = float(x[-1] - x[0])
    n = len(x)
    i = 0
    while i < n:
        if ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and not ok[j + 1]:
            j += 1
        left, y_left = edge_at.get(i - 1, (float(x[i]), math.nan))
        right, y_right = edge_at.get(j, (float(x[j]), math.nan))
        tiny = i > 0 and j < n - 1 and right - left <= 1e-6 * span
        if tiny and min(abs(y_left), abs(y_right)) > 10.0 * bound:
            curve.poles.append((left + right) / 2)
        else:
            curve.undefined.append((left, right))
        i = j + 1


def _zeros(curve: Curve, broken: set[int]) -> None:
    x, y = curve.x, curve.y
    finite = curve.finite
    tiny = 1e-12 * float(np.max(np.abs(finite))) if finite.size else 0.0
    s = np.where(np.abs(y) <= tiny, 0.0, np.sign(y))
    zero = s == 0
    # A sample on a zero counts, unless the function is zero on a whole stretch (floor(x)).
    lonely = zero & ~np.concatenate([[False], zero[:-1]]) & ~np.concatenate([zero[1:], [False]])
    exact = x[lonely].tolist()
    idx = np.flatnonzero(s[:-1] * s[1:] < 0)
    idx = np.array([i for i in idx if int(i) not in broken], dtype=int)
    found: list[float] = list(exact)
    if idx.size:
        a, b, ya = x[idx], x[idx + 1], y[idx]
        for _ in range(_BISECTIONS + 14):
            m = (a + b) / 2
            ym = curve.ev(m)
            same = np.sign(ym) == np.sign(ya)
            a, ya = np.where(same, m, a), np.where(same, ym, ya)
            b = np.where(same, b, m)
        found += ((a + b) / 2).tolist()
    curve.zeros = sorted(found)


def _golden(ev: Evaluator, a: float, b: float, key: Callable[[float], float]) -> float:
    """Where `key(f(x))` is least on [a, b], by golden-section search (a or b if undefined)."""
    for _ in range(60):
        c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
        fc, fd = (key(float(v)) for v in ev(np.array([c, d])))
        if math.isnan(fc) or math.isnan(fd):
            return c if math.isnan(fc) else d
        if fc < fd:
            b = d
        else:
            a = c
    return (a + b) / 2


def _spikes(curve: Curve, broken: set[int]) -> None:
    """Poles that do not change sign (1/x^2): a local peak of |y| that grows without bound."""
    x, y = curve.x, curve.y
    size = np.abs(y)
    ok = np.isfinite(y)
    inner = np.arange(1, len(y) - 1)
    peaks = inner[
        ok[inner - 1] & ok[inner] & ok[inner + 1]
        & (size[inner] >= size[inner - 1]) & (size[inner] >= size[inner + 1])
        & (size[inner] > curve.bound)
    ]  # fmt: skip
    span = float(x[-1] - x[0])
    for i in peaks[:50].tolist():
        if i - 1 in broken or i in broken:
            continue  # a pole found already
        at = _golden(curve.ev, float(x[i - 1]), float(x[i + 1]), lambda v: -abs(v))
        peak = abs(float(curve.ev(np.array([at]))[0]))
        unbounded = math.isnan(peak) or peak > 1e6 * curve.bound
        if unbounded and all(abs(at - p) > 1e-9 * span for p in curve.poles):
            curve.poles.append(at)
            curve.add([at], [np.nan])


def extreme(curve: Curve, sign: float) -> tuple[float, float] | None:
    """The lowest (sign 1) or highest (sign -1) drawn point, refined between samples."""
    x, y = curve.drawn()
    ok = np.isfinite(y) & (np.abs(y) <= curve.bound)
    if not ok.any():
        return None
    i = int(np.argmin(np.where(ok, sign * y, np.inf)))
    best_x, best_y = float(x[i]), float(y[i])
    if np.any(np.isfinite(y) & ~ok & (sign * y < sign * best_y)):
        return None  # unbounded that way (log(x) as x -> 0)
    if 0 < i < len(x) - 1 and ok[i - 1] and ok[i + 1]:
        at = _golden(curve.ev, float(x[i - 1]), float(x[i + 1]), lambda v: sign * v)
        y_at = float(curve.ev(np.array([at]))[0])
        if math.isfinite(y_at) and sign * y_at <= sign * best_y:
            best_x, best_y = at, y_at
    return best_x, best_y


def analyse(curve: Curve) -> None:
    """Find the curve's poles, jumps, domain edges and zeros, and its outlier bound."""
    finite = curve.finite
    if finite.size == 0:
        curve.undefined.append((float(curve.x[0]), float(curve.x[-1])))
        return
    q_lo, q_hi, h = spread(finite)
    curve.bound = bound = max(abs(q_lo), abs(q_hi)) + 2.0 * h
    broken = _bisect_breaks(curve, bound, h)
    _spikes(curve, broken)
    _domain_edges(curve, bound)
    _zeros(curve, broken)
