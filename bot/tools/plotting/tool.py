"""The agent's `plot` tool around a `Plotter`: lenient parameters, the picture kept for replies."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator

from ..base import to_json
from ..budget import ToolGate
from ..turn_context import TurnContext
from .plotter import Plotter
from .request import DataKind, PlotRequest

if TYPE_CHECKING:
    from agents import FunctionTool

log = logging.getLogger(__name__)

__all__ = ["plot_tool"]


def _lenient_text(value: Any) -> Any:
    """A number where text is expected (`"x_min": 0`) is its text; null is empty."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _lenient_list(value: Any) -> Any:
    """One item where a list is expected (`"functions": "sin(x)"`) is a list of one."""
    if value is None:
        return []
    if isinstance(value, str | int | float):
        return [value]
    return value


def _null_is(default: Any) -> BeforeValidator:
    """A validator that reads null as `default`."""
    return BeforeValidator(lambda value: default if value is None else value)


# The tool's parameter types: the JSON schema says string / array / ..., and what models
# commonly send instead (a number for a string, one item for a list, null) is accepted too.
_Text = Annotated[str, BeforeValidator(_lenient_text)]
_Texts = Annotated[tuple[_Text, ...], BeforeValidator(_lenient_list)]
_Numbers = Annotated[tuple[float, ...], BeforeValidator(_lenient_list)]
_Flag = Annotated[bool, _null_is(False)]
_Count = Annotated[int, _null_is(0)]
_Kind = Annotated[DataKind, _null_is("line")]


def plot_tool(plotter: Plotter, gate: ToolGate) -> FunctionTool:
    """Build the `plot` function tool around a plotter, its calls within `gate`'s limits
    (nothing is built at import)."""
    from agents import RunContextWrapper, function_tool

    async def plot(
        ctx: RunContextWrapper[TurnContext],
        functions: _Texts = (),
        x_min: _Text = "",
        x_max: _Text = "",
        title: _Text = "",
        x_label: _Text = "",
        y_label: _Text = "",
        labels: _Texts = (),
        mark_points: _Texts = (),
        log_x: _Flag = False,
        log_y: _Flag = False,
        y_min: _Text = "",
        y_max: _Text = "",
        variable: _Text = "x",
        samples: _Count = 1_000,
        data: _Numbers = (),
        data_x: _Numbers = (),
        data_kind: _Kind = "line",
        bins: _Count = 0,
    ) -> str:
        """Draw a graph as a PNG attached to your reply; returns a JSON summary of what was drawn.

        Use it whenever the user asks to plot, graph, draw or sketch functions or data.
        Functions are expressions in one variable (x unless `variable` says otherwise),
        written as for `calculate`: ^ or ** for powers, 2x, pi, e, sqrt, exp, log (natural),
        sin, tan, abs, floor... ("y =" in front is fine). Poles and jumps are not joined
        and undefined parts (log or sqrt of negatives) are left out; odd roots such as
        cbrt(x) or x^(1/3) are real for negative x. Numbers: give a list in `data` and
        choose `data_kind`.
        The answer is JSON: "image" (the attached file), "x_range", "y_range" (what is
        shown), per function its "lowest"/"highest" drawn points, where it crosses y = 0
        ("zeros", approximate), "poles", "jumps", "undefined" x-intervals; "marked" points
        with computed coordinates; data statistics. Or {"error": message}: fix and retry.
        The image is already attached: do not describe how to plot; mention the graph.

        Args:
            functions: Up to 6 functions, e.g. ["sin(x)", "cos(x)"] or ["x^2 - 3x + 2"].
                Leave empty to draw only `data`.
            x_min: Left end of the x-range, a number or expression ("0", "-2*pi"); empty:
                -10, or the data's extent.
            x_max: Right end of the x-range ("2*pi"); empty: 10, or the data's extent.
            title: Optional title. $...$ math (matplotlib mathtext) is allowed.
            x_label: Optional x-axis label.
            y_label: Optional y-axis label.
            labels: Optional legend names, one per function (default: the expression);
                for a bar chart, the names of the bars.
            mark_points: Points to mark and label: an x value on the curves ("1",
                "pi/2", or "solve(x^2 - 3x + 2, x)" for several), or "x, y" for an
                explicit point. Use it for roots, extrema and intersections.
            log_x: Logarithmic x-axis (needs x_min > 0).
            log_y: Logarithmic y-axis (values <= 0 are left out).
            y_min: Optional bottom of the y-range; empty: automatic (poles are cut off).
            y_max: Optional top of the y-range; empty: automatic.
            variable: The functions' variable, a single letter such as x or t.
            samples: Points per function, 2 to 2000 (0: the default, 1000).
            data: Up to 1000 numbers to draw.
            data_x: Optional x values for line/scatter data, one per number in `data`.
            data_kind: How to draw `data`: "line", "scatter", "bar" or "histogram".
            bins: Histogram bins, 0 for automatic (at most 100).
        """
        request = PlotRequest(
            functions=tuple(functions),
            x_min=x_min,
            x_max=x_max,
            y_min=y_min,
            y_max=y_max,
            variable=variable or "x",
            samples=samples or plotter.limits.default_samples,
            title=title,
            x_label=x_label,
            y_label=y_label,
            labels=tuple(labels),
            mark_points=tuple(mark_points),
            log_x=log_x,
            log_y=log_y,
            data=tuple(data),
            data_x=tuple(data_x),
            data_kind=data_kind,
            bins=bins,
        )
        return await gate.run(ctx.context, lambda: _answer(plotter, ctx.context, request))

    # get_type_hints() resolves annotations in this module's namespace, where the SDK's
    # types are not imported (importing the SDK is left to the process that builds tools).
    plot.__annotations__["ctx"] = RunContextWrapper[TurnContext]
    return function_tool(plot, name_override="plot", timeout=gate.backstop(plotter.tool_timeout))


async def _answer(plotter: Plotter, context: TurnContext, request: PlotRequest) -> str:
    """Draw `request`, keep its picture for the reply, and answer the model with JSON."""
    try:
        result = await plotter.render(request)
    except Exception:
        log.exception("plot tool failed")
        return to_json({"error": "the plotter failed unexpectedly"})
    if result.png is None:
        return to_json({"error": result.error or "nothing was drawn"})
    name = context.add_image("plot", result.png, "Graph: " + to_json(result.summary))
    summary: dict[str, Any] = {"image": name, **result.summary}
    if name is None:
        summary["note"] = "not attached: this reply already has the most images allowed"
    return to_json(summary)
