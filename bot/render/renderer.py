"""The `Renderer` service: answers' math rendered in killable worker processes, never in the
bot's own threads."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence

from ..workers.pool import WorkerError, WorkerFailed, WorkerFunction, WorkerPool
from ..workers.service import PooledService
from .answer import FORMULA_BUDGET_SECONDS, PreparedAnswer, formulas_as_code

__all__ = ["PREPARE", "RENDER_TIMEOUT", "WARM_UP", "Prepare", "Renderer", "worker_modules"]

log = logging.getLogger(__name__)

#: The worker side, named rather than imported: only workers draw formulas (matplotlib).
_WORKER_MODULE = "bot.render.answer"
#: Renders one answer's text; runs in a worker (`answer.prepare_answer`).
PREPARE = WorkerFunction(_WORKER_MODULE, "prepare_answer")
#: Draws a formula and converts inline math once in a fresh worker, so its first answer is quick.
WARM_UP = functools.partial(PREPARE, "$$\\frac{x^2}{2}$$ where $\\alpha \\le \\sqrt{x}$")
#: One answer's rendering, waiting for a free worker included: the formula images' budget,
#: and time for the Unicode conversion of at most `SHOWN_CHARS` characters.
RENDER_TIMEOUT = FORMULA_BUDGET_SECONDS + 2.0

#: What renders an answer's text in a worker.
Prepare = Callable[[str], PreparedAnswer]


def worker_modules() -> tuple[str, ...]:
    """The modules the renderer's workers run, for the fork server to preload."""
    return (
        _WORKER_MODULE,
        "matplotlib.backends.backend_agg",
        "matplotlib.figure",
        "matplotlib.mathtext",
        "matplotlib.patches",
    )


class Renderer(PooledService):
    """Makes answers Discord-ready (`prepare_answer`) in a pool of worker processes.

    The work is CPU-bound pure Python: in the bot's threads it would hold the GIL, and so the
    event loop, away from every other user. Each call takes at most `timeout` seconds, waiting
    for a free worker included; a worker that overruns is killed and replaced, and the answer
    is then shown with its formulas as code (`formulas_as_code`) rather than lost. Callers
    hand it a bounded text (`shown_part`), so the work per answer is bounded too. When both
    workers are busy, the shortest text waiting is rendered next: a short answer does not
    wait behind long ones.

    `prepare` and `warm_up` run in the workers and must be picklable; `preload` names their
    modules. Its pool's life (start, close, start on first use) is a `PooledService`'s.
    """

    name = "renderer"

    def __init__(
        self,
        timeout: float = RENDER_TIMEOUT,
        max_workers: int = 2,
        memory_mb: int = 768,
        *,
        max_tasks_per_worker: int = 500,
        prepare: Prepare = PREPARE,
        warm_up: Callable[[], object] | None = WARM_UP,
        preload: Sequence[str] | None = None,
    ) -> None:
        self._prepare = prepare
        super().__init__(
            WorkerPool(
                "render",
                timeout,
                max_workers,
                memory_mb,
                max_tasks_per_worker=max_tasks_per_worker,
                warm_up=warm_up,
                preload=worker_modules() if preload is None else preload,
            )
        )

    async def prepare(self, text: str) -> PreparedAnswer:
        """`text` made Discord-ready in a worker; with its formulas as code when the worker
        brought no answer in time (or at all). Never raises for what the text holds.

        Text without a `$` or a backslash has no math to render (it would come back as it
        is): it is answered here, without waiting for a worker.
        """
        if "$" not in text and "\\" not in text:
            return PreparedAnswer(text=text)
        if await self._start_on_first_use() is not None:  # normally started up front
            return formulas_as_code(text)
        try:
            # A short answer is not kept waiting behind long ones when both workers are busy.
            return await self._workers.run(self._prepare, text, size=len(text))
        except WorkerError as exc:
            log.log(exc.log_level, "render %s", exc, exc_info=isinstance(exc, WorkerFailed))
        return formulas_as_code(text)
