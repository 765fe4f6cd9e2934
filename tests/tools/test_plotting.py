"""Tests of the `Plotter`: drawings, their summaries, and hostile input in its worker pool."""

from __future__ import annotations

import asyncio
import io
import json
import math
import re
import struct
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from bot.tools.plotting.plotter import RENDER, PlotResult, Plotter
from bot.tools.plotting.request import PlotError, PlotLimits, PlotRequest, check_request

# One plotter (and one worker pool) for the whole module, on the module's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")

# Tests whose point is not the deadline get one no loaded machine reaches; the one whose point
# it is uses work that never ends (how fast plots are: bench/bench_plot.py).
GENEROUS_TIMEOUT = 120.0
QUICK_TIMEOUT = 1.0
WIDTH, HEIGHT = PlotLimits().width_px, PlotLimits().height_px
HARD_INTEGRAL = "integrate(exp(sin(x**3))*log(x)**7/(1+x**17), x)"
BLUE = (0x1F, 0x63, 0xC6)  # draw.PALETTE[0], the first line's colour
RED = (0xD1, 0x32, 0x1F)  # PALETTE[1]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plotter() -> AsyncIterator[Plotter]:
    async with Plotter(timeout=GENEROUS_TIMEOUT, max_workers=1, memory_mb=768) as p:
        yield p


async def draw(plotter: Plotter, **fields: Any) -> PlotResult:
    result = await plotter.render(PlotRequest(**fields))
    assert result.error is None, result.error
    assert result.png is not None
    json.dumps(result.summary, allow_nan=False)  # the summary is plain JSON
    return result


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def pixels(png: bytes) -> np.ndarray:
    """The image as an (H, W, 3) array of 0..255 integers."""
    from matplotlib.image import imread

    image = imread(io.BytesIO(png), format="png")
    return np.round(image[..., :3] * 255).astype(int)


def close_to(image: np.ndarray, color: tuple[int, int, int], tolerance: int = 40) -> np.ndarray:
    """Where the image has (roughly) this colour: the core of a line, not its soft edge."""
    return np.all(np.abs(image - np.array(color)) <= tolerance, axis=-1)


def to_pixels(result: PlotResult, x: float, y: float) -> tuple[float, float]:
    """Data coordinates to (column, row) in the image, from the plot area and the ranges."""
    assert result.plot_area is not None
    left, top, right, bottom = result.plot_area
    summary = result.summary
    (x0, x1) = summary["x_range"] if "x_range" in summary else summary["data"]["x_range"]
    (y0, y1) = summary["y_range"]
    return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (
        bottom - top
    )


def line_pixels_near(
    result: PlotResult, color: tuple[int, int, int], x: float, band: float, half_width: int = 4
) -> int:
    """How many pixels of the line's colour lie within a few columns of x, for |y| <= band.

    A pole drawn as one joined line has a vertical stroke there that crosses the middle of
    the plot; a curve broken at the pole has nothing there (it is far above or below).
    """
    assert result.png is not None
    image = pixels(result.png)
    column, _ = to_pixels(result, x, 0.0)
    _, row_top = to_pixels(result, x, band)
    _, row_bottom = to_pixels(result, x, -band)
    c0, c1 = round(column) - half_width, round(column) + half_width + 1
    window = image[round(row_top) : round(row_bottom) + 1, c0:c1]
    return int(close_to(window, color).sum())


# Rendering


async def test_sin_and_cos_make_a_png_of_the_configured_size(plotter: Plotter) -> None:
    result = await draw(plotter, functions=("sin(x)", "cos(x)"), x_min="0", x_max="2*pi")
    assert result.png is not None
    assert png_size(result.png) == (WIDTH, HEIGHT)
    image = pixels(result.png)
    assert image.shape == (HEIGHT, WIDTH, 3)
    assert (image.min(axis=-1) < 200).mean() > 0.01  # not blank
    assert close_to(image, BLUE).sum() > 500 and close_to(image, RED).sum() > 500
    summary = result.summary
    assert [f["f"] for f in summary["functions"]] == ["sin(x)", "cos(x)"]
    assert summary["x_range"] == [0, 6.28319]
    sin, cos = summary["functions"]
    assert sin["highest"] == [1.5708, 1] and sin["lowest"] == [4.71239, -1]
    assert cos["zeros"] == [1.5708, 4.71239]
    assert -1.2 < summary["y_range"][0] < -1 and 1 < summary["y_range"][1] < 1.2


async def test_marked_roots_get_their_computed_coordinates(plotter: Plotter) -> None:
    result = await draw(
        plotter,
        functions=("y = x^2 - 3x + 2",),
        x_min="-1",
        x_max="4",
        mark_points=("1", "2"),
        title="roots",
    )
    summary = result.summary
    assert summary["marked"] == [{"x": 1, "y": 0}, {"x": 2, "y": 0}]
    (parabola,) = summary["functions"]
    assert parabola["f"] == "x^2 - 3x + 2"
    assert parabola["zeros"] == [1, 2]
    assert parabola["lowest"] == [1.5, -0.25]


async def test_marks_from_solve_explicit_points_and_intersections(plotter: Plotter) -> None:
    result = await draw(
        plotter,
        functions=("sin(x)", "cos(x)"),
        x_min="0",
        x_max="pi",
        mark_points=("pi/4", "(3, 0.5)", "solve(x^2 - 1, x)"),
    )
    marked = result.summary["marked"]
    assert marked[0] == {"x": 0.785398, "y": 0.707107, "on": "sin(x)"}  # one mark, not two
    assert marked[1] == {"x": 3, "y": 0.5}
    assert {"x": -1, "y": -0.841471, "on": "sin(x)", "note": "outside the x-range: not drawn"} in (
        marked
    )
    assert {"x": 1, "y": 0.841471, "on": "sin(x)"} in marked
    assert {"x": 1, "y": 0.540302, "on": "cos(x)"} in marked


async def test_tan_is_broken_at_its_poles_not_joined(plotter: Plotter) -> None:
    result = await draw(plotter, functions=("tan(x)",), x_min="-2*pi", x_max="2*pi", title="tan")
    (tan,) = result.summary["functions"]
    poles = [-3 * math.pi / 2, -math.pi / 2, math.pi / 2, 3 * math.pi / 2]
    assert tan["poles"] == pytest.approx(poles, abs=1e-5)
    assert tan["zeros"] == pytest.approx([-2 * math.pi, -math.pi, 0, math.pi, 2 * math.pi])
    assert "lowest" not in tan  # unbounded: no misleading extremes
    assert "clipped" in result.summary
    low, high = result.summary["y_range"]
    assert -30 < low < -5 and 5 < high < 30  # a robust range, not ±1e16
    for pole in poles:
        assert line_pixels_near(result, BLUE, pole, band=2.0) == 0
    assert line_pixels_near(result, BLUE, 0.0, band=2.0) > 20  # the check does see lines


async def test_the_pixel_check_sees_a_joined_pole(plotter: Plotter) -> None:
    # Data points are joined as given: tan sampled across its poles shows the vertical
    # strokes that the function plot avoids, and line_pixels_near finds them.
    xs = np.linspace(-2 * math.pi, 2 * math.pi, 400)
    result = await draw(
        plotter,
        data=tuple(np.tan(xs).tolist()),
        data_x=tuple(xs.tolist()),
        x_min="-2*pi",
        x_max="2*pi",
        y_min="-14",
        y_max="14",
    )
    assert line_pixels_near(result, BLUE, math.pi / 2, band=2.0) > 20


async def test_one_over_x_has_a_pole_and_no_joining_line(plotter: Plotter) -> None:
    for samples in (1000, 1001):  # between two samples, and exactly on one
        result = await draw(
            plotter, functions=("1/x",), x_min="-1", x_max="1", samples=samples, title="1/x"
        )
        (f,) = result.summary["functions"]
        assert f["poles"] == [0]
        assert "undefined" not in f
        assert line_pixels_near(result, BLUE, 0.0, band=5.0) == 0


async def test_even_pole_and_jumps(plotter: Plotter) -> None:
    result = await draw(plotter, functions=("1/x^2", "floor(x)"), x_min="-3", x_max="3")
    inverse_square, floor = result.summary["functions"]
    assert inverse_square["poles"] == [0]
    assert floor["jumps"] == [-2, -1, 0, 1, 2, 3]  # 3 is the right end
    assert "zeros" not in floor  # zero on a stretch, not crossing


async def test_log_of_negatives_is_skipped_not_fatal(plotter: Plotter) -> None:
    result = await draw(plotter, functions=("log(x)",), x_min="-1", x_max="1")
    (log,) = result.summary["functions"]
    assert log["undefined"] == [[-1, 0]]
    assert log["zeros"] == [1]
    assert "lowest" not in log  # log(x) -> -oo as x -> 0
    assert result.summary["y_range"][1] > 0


async def test_sqrt_domain_edges_and_real_odd_roots(plotter: Plotter) -> None:
    result = await draw(plotter, functions=("sqrt(1 - x^2)", "cbrt(x)"), x_min="-2", x_max="2")
    circle, cube_root = result.summary["functions"]
    assert circle["undefined"] == [[-2, -1], [1, 2]]
    assert circle["highest"] == [0, 1]
    assert cube_root["lowest"] == [-2, -1.25992]  # the real root, not NaN
    assert "odd roots" in result.summary["notes"][0]


async def test_functions_numpy_cannot_vectorise_fall_back_to_mpmath(plotter: Plotter) -> None:
    result = await draw(plotter, functions=("gamma(x)",), x_min="0.5", x_max="4")
    (gamma,) = result.summary["functions"]
    assert gamma["lowest"] == pytest.approx([1.46163, 0.885603])


@pytest.mark.parametrize("kind", ["histogram", "bar", "scatter", "line"])
async def test_data_lists(plotter: Plotter, kind: str) -> None:
    rng = np.random.default_rng(7)
    n = 500 if kind in ("histogram", "scatter") else 12
    values = tuple(rng.normal(10.0, 2.0, n).round(3).tolist())
    labels = tuple(f"m{i}" for i in range(n)) if kind == "bar" else ()
    result = await draw(plotter, data=values, data_kind=kind, labels=labels, title=kind)
    assert result.png is not None and png_size(result.png) == (WIDTH, HEIGHT)
    data = result.summary["data"]
    assert data["kind"] == kind and data["n"] == n
    assert data["mean"] == pytest.approx(float(np.mean(values)), rel=1e-5)
    if kind == "histogram":
        assert 5 <= data["bins"] <= 100 and data["tallest_bin"][2] > 0
    if kind == "bar":
        assert data["largest"][0] == labels[int(np.argmax(values))]


async def test_scatter_with_a_fitted_line(plotter: Plotter) -> None:
    result = await draw(
        plotter,
        functions=("2x + 1",),
        data=(3.1, 4.9, 7.2, 8.8),
        data_x=(1, 2, 3, 4),
        data_kind="scatter",
    )
    assert result.summary["x_range"] == [1, 4]
    assert result.summary["functions"][0]["highest"] == [4, 9]


async def test_log_scales(plotter: Plotter) -> None:
    result = await draw(plotter, functions=("exp(x)", "x - 5"), log_y=True)
    assert result.summary["log"] == ["y"]
    low, high = result.summary["y_range"]
    assert 0 < low < 1e-4 and 2e4 < high < 1e6
    assert "values <= 0 are left out on the log scale" in result.summary["notes"]
    result = await draw(plotter, functions=("x^2",), x_min="0.1", x_max="100", log_x=True)
    assert result.summary["log"] == ["x"]
    result = await draw(plotter, data=(1.0, 10.0, 100.0, 1000.0), data_kind="bar", log_y=True)
    assert result.summary["log"] == ["y"]


async def test_titles_labels_and_mathtext(plotter: Plotter) -> None:
    result = await draw(
        plotter,
        functions=("t^2",),
        variable="t",
        title="$t^2$ and {broken $math",
        x_label="time $t$ (s)",
        y_label="$\\frac{1}{2$",  # invalid mathtext: shown as it is, not an error
        labels=("area",),
    )
    assert result.summary["variable"] == "t"
    assert result.summary["functions"][0]["label"] == "area"


# Hostile and degenerate input

# (request fields, part of the error, refused in-process without a worker)
ERRORS: list[tuple[dict[str, Any], str, bool]] = [
    ({}, "nothing to plot", True),
    ({"functions": ("x",), "x_min": "1", "x_max": "1"}, "empty range", True),
    ({"functions": ("x",), "x_min": "2*pi", "x_max": "2*pi"}, "empty range", True),
    ({"functions": ("x",), "x_min": "3", "x_max": "-3"}, "must be less than", True),
    ({"functions": ("x",), "x_min": "pi", "x_max": "3"}, "must be less than", False),
    ({"functions": ("x",), "x_min": "1", "x_max": "1 + 10^-15"}, "too narrow", False),
    ({"functions": ("sqrt(-1 - x^2)",)}, "not a real number anywhere", False),
    ({"functions": ("x",), "samples": 10**7}, "samples must be between", True),
    ({"functions": ("x",) * 7}, "too many functions", True),
    ({"data": (1.0,) * 1001}, "too many data points", True),
    ({"data": (1.0, 2.0), "data_x": (1.0,)}, "data_x has 1 values", True),
    ({"data": (1.0, math.nan)}, "finite", True),
    ({"functions": ("__import__('os').system('id')",)}, "not allowed", True),
    ({"functions": ("().__class__",)}, "not allowed", True),
    ({"functions": ("x",), "x_min": "__import__('os')"}, "unknown function: __import__", True),
    ({"functions": ("x",), "mark_points": ("().__class__",)}, "not allowed", True),
    ({"functions": ("open('/etc/passwd')",)}, "unknown function: open", True),
    ({"functions": ("exec(x)",)}, "unknown function: exec", True),
    ({"functions": ("9**9**9**9",)}, "expression too large", True),
    ({"functions": ("x" + "+x" * 400,)}, "expression too large", True),
    ({"functions": ("sin(a*x) + b",)}, "other than x: a, b", False),
    ({"functions": ("x^2 = 4",)}, "is an equation", False),
    ({"functions": ("solve(x^2 - 1, x)",)}, "not a function of x", False),
    ({"functions": ("x",), "x_min": "y"}, "x_min must be a number, but it contains y", False),
    ({"functions": ("x",), "x_min": "sqrt(-4)"}, "not a real number", False),
    ({"functions": ("x",), "x_min": "oo"}, "finite", False),
    ({"functions": ("log(x)",), "x_min": "-1", "log_x": True}, "log_x needs x_min > 0", False),
    ({"functions": ("x",), "variable": "import"}, "variable must be a single letter", True),
    ({"functions": ("x",), "data": (1.0,), "data_kind": "histogram"}, "cannot be drawn over", True),
    ({"functions": ("x",), "title": "t" * 500}, "title too long", True),
    ({"functions": ("x",), "mark_points": ("1",) * 21}, "too many mark_points", True),
    (  # six functions and 20 marks of 499 characters each: too much to check on the event loop
        {"functions": ("x" + "+x" * 249,) * 6, "mark_points": ("1" + "+1" * 249,) * 20},
        "expressions too long: 12,974 characters in all",
        True,
    ),
    ({"functions": ("x",), "y_min": "5", "y_max": "1"}, "y_min (5) must be less than", True),
]


@pytest.mark.parametrize(("fields", "message", "cheap"), ERRORS, ids=[e[1] for e in ERRORS])
async def test_errors_are_clear(
    plotter: Plotter, fields: dict[str, Any], message: str, cheap: bool
) -> None:
    """Each refusal names what is wrong (the cheap ones never reach a worker: see below)."""
    result = await plotter.render(PlotRequest(**fields))
    assert result.png is None
    assert result.error is not None and message in result.error, result.error
    assert result.summary == {"error": result.error}


async def test_cheap_refusals_never_reach_a_worker() -> None:
    cold = Plotter(timeout=1.0)  # never started: a request that needed a worker would start it
    cases = [(fields, message) for fields, message, cheap in ERRORS if cheap]
    assert len(cases) >= 15
    for fields, message in cases:
        result = await cold.render(PlotRequest(**fields))
        assert result.error is not None and message in result.error
        with pytest.raises(PlotError, match=re.escape(message)):
            check_request(PlotRequest(**fields))
    assert not cold._workers.running
    await cold.close()


async def test_a_slow_expression_is_killed_and_the_plotter_recovers() -> None:
    async with Plotter(timeout=QUICK_TIMEOUT, max_workers=1, memory_mb=768) as quick:
        result = await quick.render(PlotRequest(functions=(HARD_INTEGRAL,)))
        assert result.error is not None and "timed out after 1 s" in result.error
        # The killed worker's replacement draws, given a deadline no loaded machine reaches.
        loop = asyncio.get_running_loop()
        request = PlotRequest(functions=("sin(x)",))
        answer = await quick._workers.run(
            RENDER, request, quick.limits, deadline=loop.time() + GENEROUS_TIMEOUT
        )
    assert answer["summary"]["functions"][0]["highest"][1] == 1


async def test_closed_plotter_answers_with_an_error() -> None:
    p = Plotter(timeout=1.0)
    await p.close()
    result = await p.render(PlotRequest(functions=("x",)))
    assert result.error is not None and "closed" in result.error


async def test_concurrent_requests_share_the_worker(plotter: Plotter) -> None:
    requests = [PlotRequest(functions=(f"x^{k}",), x_min="0", x_max="2") for k in range(1, 5)]
    results = await asyncio.gather(*(plotter.render(r) for r in requests))
    assert [r.summary["functions"][0]["highest"] for r in results] == [
        [2, 2],
        [2, 4],
        [2, 8],
        [2, 16],
    ]


async def test_requests_are_checked_off_the_event_loop_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    threads: list[threading.Thread] = []

    def record(*args: object) -> None:
        threads.append(threading.current_thread())
        raise PlotError("checked")

    monkeypatch.setattr("bot.tools.plotting.plotter.check_request", record)
    plotter = Plotter()
    result = await plotter.render(PlotRequest(functions=("x",)))
    assert result.error == "checked" and threads and threads[0] is not threading.main_thread()
    await plotter.close()


async def test_a_recursion_error_while_checking_is_still_an_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def too_deep(*args: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("bot.tools.plotting.plotter.check_request", too_deep)
    plotter = Plotter()  # refused before any worker is started
    result = await plotter.render(PlotRequest(functions=("x",)))
    assert result.png is None and result.error == "expression too deeply nested"
    await plotter.close()
