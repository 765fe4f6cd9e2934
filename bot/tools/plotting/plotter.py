"""The `Plotter` client: checks requests here, draws them in killable workers."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...workers.pool import (
    PoolClosed,
    PoolStopping,
    PoolUnavailable,
    WorkerBusy,
    WorkerCrashed,
    WorkerError,
    WorkerFailed,
    WorkerFunction,
    WorkerPool,
    WorkerTimeout,
)
from ...workers.service import PooledService
from ..calculator.calculator import worker_modules as calculator_modules
from ..calculator.language import TOO_DEEP
from .request import PlotError, PlotLimits, PlotRequest, check_request

log = logging.getLogger(__name__)

__all__ = ["RENDER", "WARM_UP", "PlotResult", "Plotter", "Render", "worker_modules"]

#: The worker side (matplotlib, and the calculator's SymPy side), named rather than imported:
#: only worker processes load it.
_WORKER_MODULE = "bot.tools.plotting.draw"
#: Evaluates and draws one request; runs in a worker (`draw.render_request`).
RENDER = WorkerFunction(_WORKER_MODULE, "render_request")
#: Loads matplotlib in a fresh worker and draws once, so that its first plot is quick.
WARM_UP = WorkerFunction(_WORKER_MODULE, "warm_up")

#: What draws a checked request in a worker: `{"png", "summary", "plot_area"}` or `{"error"}`.
Render = Callable[[PlotRequest, PlotLimits], dict[str, Any]]


def worker_modules() -> tuple[str, ...]:
    """The modules the plotter's workers run, for the fork server to preload."""
    return (*calculator_modules(), _WORKER_MODULE)


@dataclass(frozen=True, slots=True)
class PlotResult:
    """A drawn plot (`png`, with `summary` for the model) or an `error`.

    `plot_area` is the drawing area's (left, top, right, bottom) in image pixels.
    """

    png: bytes | None
    summary: dict[str, Any]
    error: str | None = None
    plot_area: tuple[int, int, int, int] | None = None

    @staticmethod
    def failed(message: str) -> PlotResult:
        return PlotResult(None, {"error": message}, message)


#: The failure for a call the worker pool brought no answer back for, by the reason.
_POOL_ERRORS: dict[type[WorkerError], str] = {
    PoolClosed: "the plotter is closed",
    WorkerBusy: "the plotter is busy; try again in a moment",
    PoolUnavailable: "the plotter is unavailable; try again later",
    WorkerCrashed: "the plot crashed its worker (probably out of memory)",
    PoolStopping: "the plotter is shutting down",
    WorkerFailed: "the plotter failed unexpectedly on this request",
}


class Plotter(PooledService):
    """Draws plots in a pool of worker processes that are killed when they overrun.

    Each call takes at most `timeout` seconds in total (waiting for a free worker
    included); a worker that overruns is killed and replaced, as in `Calculator`.

    `render` and `warm_up` run in the workers and must be picklable (by default, the
    matplotlib side named by `RENDER` and `WARM_UP`); `preload` names their modules.
    """

    name = "plotter"

    def __init__(
        self,
        timeout: float = 5.0,
        max_workers: int = 1,
        memory_mb: int = 768,
        *,
        limits: PlotLimits | None = None,
        max_tasks_per_worker: int = 500,
        render: Render = RENDER,
        warm_up: Callable[[], object] | None = WARM_UP,
        preload: Sequence[str] | None = None,
    ) -> None:
        self._limits = limits or PlotLimits()
        self._render = render
        probe = PlotRequest(functions=("x",), samples=2)
        super().__init__(
            WorkerPool(
                "plot",
                timeout,
                max_workers,
                memory_mb,
                max_tasks_per_worker=max_tasks_per_worker,
                max_str_digits=self._limits.expression.max_str_digits,
                warm_up=warm_up,
                probe=functools.partial(render, probe, self._limits),
                preload=worker_modules() if preload is None else preload,
            )
        )

    @property
    def limits(self) -> PlotLimits:
        """The bounds every request is checked against."""
        return self._limits

    async def render(self, request: PlotRequest) -> PlotResult:
        """Check, evaluate and draw one request; never raises for bad input."""
        try:
            # Up to ~50 expressions of up to 500 characters each: linear, but together too
            # long to hold the event loop for (a thread gives it the GIL back every few ms).
            await asyncio.to_thread(check_request, request, self._limits)
        except PlotError as exc:
            log.debug("plot refused: %s", exc.message)
            return PlotResult.failed(exc.message)
        except RecursionError:  # a rewrite deeper than Python's stack: still an answer
            log.info("plot: checking a request recursed too deeply")
            return PlotResult.failed(TOO_DEEP)
        error = await self._start_on_first_use()
        if error is not None:
            return PlotResult.failed(error)
        # The rest of the call, waiting for a worker included, ends by the timeout.
        try:
            answer = await self._workers.run(self._render, request, self._limits)
        except WorkerTimeout as exc:
            log.info("plot %s", exc)
            return PlotResult.failed(f"timed out after {self.timeout:g} s; simplify the functions")
        except WorkerError as exc:
            log.log(exc.log_level, "plot %s", exc, exc_info=isinstance(exc, WorkerFailed))
            return PlotResult.failed(_POOL_ERRORS[type(exc)])
        if "error" in answer:
            return PlotResult.failed(answer["error"])
        return PlotResult(answer["png"], answer["summary"], None, answer.get("plot_area"))
