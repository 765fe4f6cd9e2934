"""The drawing side of the plot tool: one request evaluated and drawn with Agg, in a worker."""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import sympy
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from ..calculator.evaluate import first_line
from .expressions import Evaluator, build, number, real_number, real_odd_roots
from .request import PlotError, PlotLimits, PlotRequest, function_source, split_point
from .sampling import Curve, analyse, extreme, spread

log = logging.getLogger(__name__)

__all__ = ["PALETTE", "render_request", "warm_up"]

# The same card as the formula images (bot.render.formula_png): dark ink on opaque white with
# a grey edge, so the image reads the same on Discord's dark and light themes.
_INK = "#1b1d21"
_CARD = "#ffffff"
_EDGE = "#c4c9d0"
_GRID = "#e4e7eb"
_AXIS = "#8d949e"
_SPINE = "#5d636c"
#: Line colours, in order: saturated enough for white, distinct for common colour blindness.
PALETTE = ("#1f63c6", "#d1321f", "#168a3e", "#8a3fc7", "#e07800", "#6b4a2e")
_FONT = {"title": 17.0, "label": 15.0, "tick": 13.0, "legend": 13.0, "note": 12.0}


def render_request(request: PlotRequest, limits: PlotLimits) -> dict[str, Any]:
    """Evaluate and draw `request`: `{"png", "summary", "plot_area"}` or `{"error"}`."""
    try:
        with np.errstate(all="ignore"):
            return _Plot(request, limits).run()
    except PlotError as exc:
        return {"error": exc.message}
    except MemoryError:
        return {"error": "the plot ran out of memory; use fewer samples or simpler functions"}
    except RecursionError:
        return {"error": "an expression is too deeply nested to plot"}
    except Exception as exc:
        log.debug("plot failed", exc_info=True)
        return {"error": f"could not draw the plot: {first_line(exc) or type(exc).__name__}"}


def warm_up() -> None:
    """Draw one small plot, so that fonts and Agg are loaded before the first real request."""
    render_request(
        PlotRequest(functions=("sin(x)", "1/x"), x_min="-pi", x_max="pi", title="$x^2$"),
        PlotLimits(width_px=200, height_px=120),
    )


def _snap(value: float, scale: float, relative: float = 1e-9) -> float | int | None:
    """`value` rounded to a power of ten near `relative * scale`, then as `_num`.

    Removes the noise of bisection and floating point: 1.4999999993 becomes 1.5 and
    -2.8e-18 becomes 0 on a plot some units wide.
    """
    if math.isfinite(value) and scale > 0 and math.isfinite(scale):
        step = 10.0 ** math.floor(math.log10(scale * relative))
        value = round(value / step) * step
    return _num(value)


def _num(value: float) -> float | int | None:
    """A number rounded to 6 significant digits for the summary (None when not finite)."""
    value = float(value)
    if not math.isfinite(value):
        return None
    rounded = float(f"{value:.6g}")
    if rounded == 0:
        return 0
    if rounded.is_integer() and abs(rounded) < 1e15:
        return int(rounded)
    return rounded


@dataclass
class _Mark:
    """A point to mark: on a curve, given explicitly, or (`y` None) a vertical line."""

    x: float
    y: float | None
    color: str
    on: str | None = None
    note: str | None = None


class _Plot:
    """One request being evaluated, analysed and drawn; `run` gives the answer."""

    def __init__(self, request: PlotRequest, limits: PlotLimits) -> None:
        self.r = request
        self.limits = limits
        self.var = sympy.Symbol(request.variable)
        self.notes: list[str] = []
        self.curves: list[Curve] = []
        self.marks: list[_Mark] = []
        n = len(request.data)
        self.data_y = np.asarray(request.data, dtype=float)
        if request.data_x:
            self.data_x = np.asarray(request.data_x, dtype=float)
        else:
            self.data_x = np.arange(1, n + 1, dtype=float)

    def run(self) -> dict[str, Any]:
        r = self.r
        exprs = [self._function(text) for text in r.functions]
        x0, x1 = self._x_range()
        if exprs:
            space = np.geomspace if r.log_x else np.linspace
            grid = space(x0, x1, r.samples)
            for i, (text, expr) in enumerate(zip(r.functions, exprs, strict=True)):
                label = r.labels[i] if i < len(r.labels) and r.labels[i].strip() else None
                curve = Curve(
                    text=text,
                    label=label or function_source(text).replace("**", "^"),
                    color=PALETTE[i % len(PALETTE)],
                    ev=Evaluator(expr, self.var),
                )
                curve.x, curve.y = grid, curve.ev(grid)
                analyse(curve)
                self.curves.append(curve)
            if not any(c.finite.size for c in self.curves):
                names = " or ".join(function_source(c.text) for c in self.curves)
                raise PlotError(
                    f"nothing to draw: {names} is not a real number anywhere on "
                    f"[{x0:g}, {x1:g}]; choose another range"
                )
        self._place_marks(x0, x1)
        return self._draw(x0, x1)

    def _function(self, text: str) -> sympy.Expr:
        what = f"function {text!r}"
        value = build(function_source(text), what, self.limits)
        var = self.r.variable
        if isinstance(value, sympy.Equality):
            raise PlotError(
                f"{what} is an equation; plot each side as its own function, or their difference"
            )
        if not isinstance(value, sympy.Expr):
            raise PlotError(f"{what} is not a function of {var} (it is not a single expression)")
        others = sorted(str(s) for s in value.free_symbols if s != self.var)
        if others:
            raise PlotError(
                f"{what} has variables other than {var}: {', '.join(others)}; "
                "give them numeric values (or set `variable`)"
            )
        real = real_odd_roots(value)
        if real != value and "odd roots" not in " ".join(self.notes):
            self.notes.append("odd roots of negative numbers are drawn as real roots")
        return real

    def _x_range(self) -> tuple[float, float]:
        r = self.r
        given_lo = number(r.x_min, "x_min", self.limits) if r.x_min.strip() else None
        given_hi = number(r.x_max, "x_max", self.limits) if r.x_max.strip() else None
        if r.data and r.data_kind in ("line", "scatter"):
            lo, hi = float(self.data_x.min()), float(self.data_x.max())
            if lo == hi:
                lo, hi = lo - 1.0, hi + 1.0
        elif r.log_x:
            lo, hi = 0.01, 100.0
        else:
            lo, hi = -10.0, 10.0
        if given_lo is not None and given_hi is None and given_lo >= hi:
            hi = given_lo + (hi - lo)
        if given_hi is not None and given_lo is None and given_hi <= lo:
            lo = given_hi - (hi - lo)
        lo = lo if given_lo is None else given_lo
        hi = hi if given_hi is None else given_hi
        if lo == hi:
            raise PlotError(f"empty range: x_min and x_max are both {lo:g}")
        if lo > hi:
            raise PlotError(f"x_min ({lo:g}) must be less than x_max ({hi:g})")
        if hi - lo <= 1e-9 * max(abs(lo), abs(hi)):
            raise PlotError(f"the range [{lo:.15g}, {hi:.15g}] is too narrow to plot")
        if max(abs(lo), abs(hi)) > 1e100:
            raise PlotError("the x-range is too large (limit ±1e100)")
        if r.log_x and lo <= 0:
            raise PlotError(f"log_x needs x_min > 0, not {lo:g}")
        return lo, hi

    def _place_marks(self, x0: float, x1: float) -> None:
        limit = self.limits.max_marks
        for text in self.r.mark_points:
            x_text, y_text = split_point(text)
            what = f"mark_points {text!r}"
            if y_text is not None:
                x = number(x_text, what, self.limits)
                y = number(y_text, what, self.limits)
                self.marks.append(_Mark(x, y, _INK))
                continue
            value = build(x_text, what, self.limits)
            values = list(value) if isinstance(value, list | tuple) else [value]
            for item in values:
                try:
                    x = real_number(item, what)
                except PlotError:
                    if len(values) == 1:
                        raise
                    continue  # a complex root among real ones
                self._mark_on_curves(x)
        if len(self.marks) > limit:
            self.notes.append(f"only the first {limit} of {len(self.marks)} marks are shown")
            del self.marks[limit:]
        for mark in self.marks:
            if not x0 <= mark.x <= x1 and self.curves:
                mark.note = "outside the x-range: not drawn"

    def _mark_on_curves(self, x: float) -> None:
        placed: list[float] = []
        for curve in self.curves:
            y = float(curve.ev(np.array([x]))[0])
            if not math.isfinite(y):
                continue
            scale = float(np.max(np.abs(curve.finite))) if curve.finite.size else 1.0
            if abs(y) < 1e-10 * max(1.0, scale):
                y = 0.0
            if any(abs(y - p) <= 1e-9 * max(1.0, abs(y)) for p in placed):
                continue  # an intersection: one mark is enough
            placed.append(y)
            self.marks.append(_Mark(x, y, curve.color, on=curve.label))
        if not placed:
            note = "no function is defined here: drawn as a vertical line" if self.curves else None
            self.marks.append(_Mark(x, None, _INK, note=note))

    def _y_range(self) -> tuple[float, float, bool] | None:
        """The y-range to show, and whether values beyond it are cut off; None: automatic."""
        r = self.r
        parts = [c.finite for c in self.curves]
        if r.data and r.data_kind in ("line", "scatter"):
            parts.append(self.data_y)
        parts.append(np.array([m.y for m in self.marks if m.y is not None and m.note is None]))
        values = np.concatenate(parts) if parts else np.empty(0)
        if r.log_y:
            values = np.log10(values[values > 0])
        values = values[np.isfinite(values)]
        if values.size == 0 or not self.curves:
            return None
        lo, hi = float(values.min()), float(values.max())
        q_lo, q_hi, h = spread(values)
        poles = any(c.poles for c in self.curves)
        clipped = False
        if lo < q_lo - 2 * h and (poles or lo < q_lo - 10 * h):
            lo, clipped = q_lo - 0.5 * h, True
        if hi > q_hi + 2 * h and (poles or hi > q_hi + 10 * h):
            hi, clipped = q_hi + 0.5 * h, True
        for mark in self.marks:  # marked points stay in view
            if mark.y is not None and mark.note is None:
                v = math.log10(mark.y) if r.log_y and mark.y > 0 else mark.y
                if not r.log_y or mark.y > 0:
                    lo, hi = min(lo, v), max(hi, v)
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            pad = max(1.0, abs(hi)) * 0.5 if not r.log_y else 0.5
            lo, hi = lo - pad, hi + pad
        else:
            pad = 0.06 * (hi - lo)
            lo, hi = lo - pad, hi + pad
        if r.log_y:
            lo, hi = 10.0**lo, 10.0**hi
        return lo, hi, clipped

    def _draw(self, x0: float, x1: float) -> dict[str, Any]:
        r, limits = self.r, self.limits
        dpi = limits.dpi
        fig = Figure(
            figsize=(limits.width_px / dpi, limits.height_px / dpi),
            dpi=dpi,
            facecolor=_CARD,
            edgecolor=_EDGE,
            linewidth=2.0,
            layout="constrained",
        )
        FigureCanvasAgg(fig)
        engine = fig.get_layout_engine()
        if isinstance(engine, ConstrainedLayoutEngine):  # it is: layout="constrained"
            engine.set(w_pad=0.12, h_pad=0.1)
        ax = fig.add_subplot()
        self._style(ax)
        auto = self._y_range()
        user_lo = number(r.y_min, "y_min", limits) if r.y_min.strip() else None
        user_hi = number(r.y_max, "y_max", limits) if r.y_max.strip() else None
        if r.log_y:
            ax.set_yscale("log")
            if (user_lo is not None and user_lo <= 0) or (user_hi is not None and user_hi <= 0):
                raise PlotError("log_y needs a positive y_min and y_max")
        if r.log_x:
            ax.set_xscale("log")
        y_lo, y_hi, clipped = auto if auto is not None else (None, None, False)
        y_lo = user_lo if user_lo is not None else y_lo
        y_hi = user_hi if user_hi is not None else y_hi
        if y_lo is not None and y_hi is not None and y_lo >= y_hi:
            raise PlotError(f"y_min ({y_lo:g}) must be less than y_max ({y_hi:g})")
        left_out = False
        for curve in self.curves:
            xs, ys = curve.drawn()
            if r.log_y:
                left_out |= bool(np.any(ys[np.isfinite(ys)] <= 0))
                ys = np.where(ys > 0, ys, np.nan)
            if y_lo is not None and y_hi is not None:  # keep Agg's coordinates sane
                far = 10.0 * (y_hi - y_lo)
                ys = np.clip(ys, y_lo - far, y_hi + far) if not r.log_y else ys
            ax.plot(xs, ys, color=curve.color, linewidth=2.6, label=curve.label, zorder=3)
        data_summary = self._draw_data(ax) if r.data else None
        if self.curves:
            ax.set_xlim(x0, x1)
        else:
            if r.x_min.strip():
                ax.set_xlim(left=x0)
            if r.x_max.strip():
                ax.set_xlim(right=x1)
        if y_lo is not None or y_hi is not None:
            ax.set_ylim(bottom=y_lo, top=y_hi)
        self._draw_marks(ax)
        self._axes_lines(ax)
        if self.curves and not r.log_x:
            self._pi_ticks(ax, x0, x1)
        self._texts(ax)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, facecolor=_CARD, edgecolor=_EDGE,
                    metadata={"Software": None})  # fmt: skip
        box = ax.get_window_extent()
        height = limits.height_px
        area = (round(box.x0), round(height - box.y1), round(box.x1), round(height - box.y0))
        shown = ax.get_ylim()
        summary = self._summary(x0, x1, shown, clipped and user_lo is None and user_hi is None)
        if left_out:
            self.notes.append("values <= 0 are left out on the log scale")
        if data_summary is not None:
            summary["data"] = data_summary
        if self.notes:
            summary["notes"] = self.notes
        return {"png": buffer.getvalue(), "summary": summary, "plot_area": area}

    @staticmethod
    def _style(ax: Any) -> None:
        ax.set_facecolor(_CARD)
        ax.grid(True, color=_GRID, linewidth=1.0, zorder=0)
        ax.set_axisbelow(True)
        for spine in ax.spines.values():
            spine.set_color(_SPINE)
            spine.set_linewidth(1.2)
        ax.tick_params(colors=_INK, labelsize=_FONT["tick"], width=1.2, length=5)

    def _axes_lines(self, ax: Any) -> None:
        """The lines x = 0 and y = 0, where they are in view."""
        (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
        if not self.r.log_y and y_lo < 0 < y_hi:
            ax.axhline(0.0, color=_AXIS, linewidth=1.4, zorder=1)
        bars = self.r.data and self.r.data_kind in ("bar", "histogram")
        if not self.r.log_x and not bars and x_lo < 0 < x_hi:
            ax.axvline(0.0, color=_AXIS, linewidth=1.4, zorder=1)

    def _pi_ticks(self, ax: Any, x0: float, x1: float) -> None:
        """Ticks at multiples of π when the range was given in terms of pi."""
        given = f"{self.r.x_min} {self.r.x_max}".lower()
        if "pi" not in given and "π" not in given:
            return
        turns = (x1 - x0) / math.pi
        for step in (Fraction(1, 4), Fraction(1, 2), Fraction(1), Fraction(2), Fraction(4)):
            if turns / step <= 12:
                break
        else:
            return
        first = math.ceil(x0 / math.pi / step - 1e-9)
        last = math.floor(x1 / math.pi / step + 1e-9)
        if last - first < 2:
            return
        ticks = [k * step for k in range(first, last + 1)]
        ax.set_xticks([float(t) * math.pi for t in ticks], [_pi_label(t) for t in ticks])

    def _texts(self, ax: Any) -> None:
        r = self.r
        if r.title.strip():
            ax.set_title(r.title.strip(), fontsize=_FONT["title"], color=_INK, pad=10,
                         parse_math=_mathtext_ok(r.title))  # fmt: skip
        if r.x_label.strip():
            ax.set_xlabel(r.x_label.strip(), fontsize=_FONT["label"], color=_INK,
                          parse_math=_mathtext_ok(r.x_label))  # fmt: skip
        if r.y_label.strip():
            ax.set_ylabel(r.y_label.strip(), fontsize=_FONT["label"], color=_INK,
                          parse_math=_mathtext_ok(r.y_label))  # fmt: skip
        handles, _ = ax.get_legend_handles_labels()
        if self.curves and (len(handles) > 1 or r.labels or not r.title.strip()):
            legend = ax.legend(fontsize=_FONT["legend"], framealpha=0.92, edgecolor=_EDGE,
                               labelcolor=_INK, loc="best")  # fmt: skip
            for text in legend.get_texts():
                text.set_parse_math(False)

    def _draw_marks(self, ax: Any) -> None:
        x_lo, x_hi = ax.get_xlim()
        for mark in self.marks:
            if mark.note == "outside the x-range: not drawn":
                continue
            if mark.y is None:
                if x_lo <= mark.x <= x_hi:
                    ax.axvline(mark.x, color=_INK, linewidth=1.4, linestyle="--", zorder=2)
                continue
            ax.scatter([mark.x], [mark.y], s=70, color=mark.color, edgecolors=_INK,
                       linewidths=1.5, zorder=5)  # fmt: skip
            ax.annotate(
                f"({_short(mark.x)}, {_short(mark.y)})",
                (mark.x, mark.y),
                xytext=(7, 7),
                textcoords="offset points",
                fontsize=_FONT["note"],
                color=_INK,
                zorder=6,
                bbox={"boxstyle": "round,pad=0.2", "fc": _CARD, "ec": "none", "alpha": 0.8},
                parse_math=False,
            )

    def _draw_data(self, ax: Any) -> dict[str, Any]:
        r = self.r
        y = self.data_y
        color = PALETTE[len(self.curves) % len(PALETTE)]
        n = len(y)
        summary: dict[str, Any] = {"kind": r.data_kind, "n": n}
        summary.update(_stats(y))
        if r.data_kind in ("histogram", "bar"):
            ax.xaxis.grid(False)
        if r.data_kind == "histogram":
            edges = _bins(y, r.bins, self.limits.max_bins)
            counts, edges, _ = ax.hist(y, bins=edges, color=color, edgecolor=_CARD,
                                       linewidth=0.8, zorder=3)  # fmt: skip
            k = int(np.argmax(counts))
            summary["bins"] = len(edges) - 1
            summary["bin_width"] = _num(edges[1] - edges[0])
            summary["tallest_bin"] = [_num(edges[k]), _num(edges[k + 1]), int(counts[k])]
            if not r.y_label.strip():
                ax.set_ylabel("count", fontsize=_FONT["label"], color=_INK)
        elif r.data_kind == "bar":
            names = [
                r.labels[i] if i < len(r.labels) and r.labels[i].strip() else str(i + 1)
                for i in range(n)
            ]
            positions = np.arange(n)
            ax.bar(positions, y, color=color, edgecolor=_CARD, linewidth=0.8, zorder=3)
            if n <= 40:
                rotate = n > 8 and max(len(s) for s in names) > 3
                ax.set_xticks(positions, names, rotation=45 if rotate else 0,
                              ha="right" if rotate else "center")  # fmt: skip
                for text in ax.get_xticklabels():
                    text.set_parse_math(False)
            big, small = int(np.argmax(y)), int(np.argmin(y))
            summary["largest"] = [names[big], _num(y[big])]
            summary["smallest"] = [names[small], _num(y[small])]
        else:
            x = self.data_x
            label = "data" if self.curves else None
            if r.data_kind == "scatter":
                ax.scatter(x, y, s=30 if n <= 200 else 12, color=color, alpha=0.85,
                           zorder=4, label=label)  # fmt: skip
            else:
                order = np.argsort(x, kind="stable")
                ax.plot(x[order], y[order], color=color, linewidth=2.2, zorder=4, label=label,
                        marker="o" if n <= 60 else None, markersize=5)  # fmt: skip
            low, high = int(np.argmin(y)), int(np.argmax(y))
            summary["x_range"] = [_num(x.min()), _num(x.max())]
            summary["lowest"] = [_num(x[low]), _num(y[low])]
            summary["highest"] = [_num(x[high]), _num(y[high])]
        if r.log_y and np.any(y <= 0):
            self.notes.append("data values <= 0 are left out on the log scale")
        return summary

    def _summary(
        self, x0: float, x1: float, shown: tuple[float, float], clipped: bool
    ) -> dict[str, Any]:
        r = self.r
        cap = self.limits.max_reported
        summary: dict[str, Any] = {}
        if self.curves:
            if r.variable != "x":
                summary["variable"] = r.variable
            summary["x_range"] = [_num(x0), _num(x1)]
        summary["y_range"] = [_num(shown[0]), _num(shown[1])]
        if r.log_x or r.log_y:
            summary["log"] = [axis for axis, on in (("x", r.log_x), ("y", r.log_y)) if on]
        if clipped:
            summary["clipped"] = "values beyond y_range are cut off (near poles)"
        functions = []
        span = x1 - x0
        height = abs(shown[1] - shown[0]) if not r.log_y else 0.0
        for curve in self.curves:
            entry: dict[str, Any] = {"f": function_source(curve.text)}
            if curve.label != function_source(curve.text).replace("**", "^"):
                entry["label"] = curve.label
            if curve.finite.size == 0:
                entry["note"] = "not a real number anywhere on the range: nothing drawn"
                functions.append(entry)
                continue
            if not curve.poles:
                for key, sign in (("lowest", 1.0), ("highest", -1.0)):
                    point = extreme(curve, sign)
                    if point is not None:
                        entry[key] = [_snap(point[0], span, 1e-7), _snap(point[1], height)]
            for key, values in (("zeros", curve.zeros), ("poles", sorted(curve.poles)),
                                ("jumps", sorted(curve.jumps))):  # fmt: skip
                if values:
                    entry[key] = [_snap(v, span) for v in values[:cap]]
                    if len(values) > cap:
                        entry[f"{key}_total"] = len(values)
            if curve.undefined:
                entry["undefined"] = [
                    [_snap(a, span), _snap(b, span)] for a, b in curve.undefined[:cap]
                ]
            functions.append(entry)
        if functions:
            summary["functions"] = functions
        marks = []
        for mark in self.marks:
            item: dict[str, Any] = {
                "x": _num(mark.x),
                "y": None if mark.y is None else _num(mark.y),
            }
            if mark.on is not None and len(self.curves) > 1:
                item["on"] = mark.on
            if mark.note:
                item["note"] = mark.note
            marks.append(item)
        if marks:
            summary["marked"] = marks
        return summary


def _short(value: float) -> str:
    text = f"{value:.4g}"
    return "0" if text in ("-0", "0") else text.replace("-", "−")


def _pi_label(multiple: Fraction) -> str:
    if multiple == 0:
        return "0"
    sign = "−" if multiple < 0 else ""
    p, q = abs(multiple.numerator), multiple.denominator
    head = "π" if p == 1 else f"{p}π"
    return f"{sign}{head}" if q == 1 else f"{sign}{head}/{q}"


def _mathtext_ok(text: str) -> bool:
    """Whether `text` has $...$ math that matplotlib can typeset (else: shown literally)."""
    if text.count("$") < 2:
        return False
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    try:
        MathTextParser("path").parse(text, dpi=72, prop=FontProperties())
    except ValueError:
        return False
    return True


def _bins(values: np.ndarray, bins: int, cap: int) -> np.ndarray:
    if bins > 0:
        return np.histogram_bin_edges(values, bins=bins)
    low, high = float(values.min()), float(values.max())
    if np.all(values == np.round(values)) and high - low < cap:
        return np.arange(low - 0.5, high + 1.0)  # whole numbers: one bar per value
    edges = np.histogram_bin_edges(values, bins="auto")
    if len(edges) - 1 > cap:
        edges = np.histogram_bin_edges(values, bins=cap)
    return edges


def _stats(values: np.ndarray) -> dict[str, Any]:
    return {
        "min": _num(values.min()),
        "max": _num(values.max()),
        "mean": _num(values.mean()),
        "median": _num(np.median(values)),
        "std": _num(values.std(ddof=1)) if len(values) > 1 else 0,
    }
