"""The `Calculator` client: vets expressions here, evaluates them in killable workers."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence

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
from ..base import to_json
from .language import TOO_DEEP, CalculatorError, Limits, vet_with_notes

log = logging.getLogger(__name__)

__all__ = ["EVALUATE", "WARM_UP", "Calculator", "Evaluate", "worker_modules"]

#: The worker side (SymPy), named rather than imported: only worker processes load it.
_WORKER_MODULE = "bot.tools.calculator.evaluate"
#: Evaluates vetted source; runs in a worker (`evaluate.evaluate_source`).
EVALUATE = WorkerFunction(_WORKER_MODULE, "evaluate_source")
#: Loads and exercises SymPy in a fresh worker, so that its first answer is quick.
WARM_UP = WorkerFunction(_WORKER_MODULE, "warm_up")

#: What evaluates vetted source in a worker: its answer, or `{"error"}`; never raises.
Evaluate = Callable[[str, Limits], dict[str, str]]


def worker_modules() -> tuple[str, ...]:
    """The modules the calculator's workers run, for the fork server to preload."""
    return (_WORKER_MODULE,)


#: The answer to a call the worker pool brought no answer back for, by the reason.
_POOL_ERRORS: dict[type[WorkerError], str] = {
    PoolClosed: "the calculator is closed",
    WorkerBusy: "the calculator is busy; try again in a moment",
    PoolUnavailable: "the calculator is unavailable; try again later",
    WorkerCrashed: "expression too large: the calculation crashed its worker "
    "(probably out of memory)",
    PoolStopping: "the calculator is shutting down",
    WorkerFailed: "the calculator failed unexpectedly on this expression",
}


class Calculator(PooledService):
    """Evaluates expressions in a pool of worker processes killed when they overrun.

    Each call takes at most `timeout` seconds in total (waiting for a free worker
    included); a worker that overruns is killed and replaced, so the calculator keeps
    answering after hostile input. Every answer is a compact JSON string.

    `evaluate` and `warm_up` run in the workers and must be picklable (by default, the
    SymPy side named by `EVALUATE` and `WARM_UP`); `preload` names their modules.
    """

    name = "calculator"

    def __init__(
        self,
        timeout: float = 2.0,
        max_workers: int = 2,
        memory_mb: int = 512,
        *,
        limits: Limits | None = None,
        max_tasks_per_worker: int = 1_000,
        evaluate: Evaluate = EVALUATE,
        warm_up: Callable[[], object] | None = WARM_UP,
        preload: Sequence[str] | None = None,
    ) -> None:
        self._limits = limits or Limits()
        self._evaluate = evaluate
        super().__init__(
            WorkerPool(
                "calculator",
                timeout,
                max_workers,
                memory_mb,
                max_tasks_per_worker=max_tasks_per_worker,
                max_str_digits=self._limits.max_str_digits,
                warm_up=warm_up,
                probe=functools.partial(evaluate, "1", self._limits),
                preload=worker_modules() if preload is None else preload,
            )
        )

    @property
    def limits(self) -> Limits:
        """The size limits every expression is checked against."""
        return self._limits

    async def evaluate(self, expression: str) -> str:
        """Evaluate one expression; return `{"result", "latex", "decimal"}` or `{"error"}`."""
        return to_json(await self.evaluate_dict(expression))

    async def check(self, claim: str) -> str:
        """Verify one line of working; return `{"verdict", "detail"}` or `{"error"}`."""
        return to_json(await self.check_dict(claim))

    async def check_dict(self, claim: str) -> dict[str, str]:
        """Like `check`, returning the dictionary before JSON encoding."""
        if not isinstance(claim, str) or not claim.strip():
            return {"error": "give one claim, as in '(x+1)^2 = x^2+2x+1' or '2x+3 = 7 => x = 2'"}
        text = claim
        for arrow in ("⇒", "⟹", "→", "->", "==>"):
            text = text.replace(arrow, "=>")
        parts = text.split("=>")
        if len(parts) > 2:
            return {"error": "check one step at a time: one '=>' per claim"}
        if len(parts) == 2:
            expression = f"implies(({parts[0]}), ({parts[1]}))"
        else:
            expression = f"check(({text}))"
        answer = await self.evaluate_dict(expression)
        if "error" in answer:
            return {"error": answer["error"]}
        verdict = {"True": "verified", "False": "false"}.get(answer.get("result", ""), "unknown")
        detail = answer.get("note", verdict)
        return {"verdict": verdict, "detail": detail}

    async def evaluate_dict(self, expression: str) -> dict[str, str]:
        """Like `evaluate`, returning the dictionary before JSON encoding."""
        error = await self._start_on_first_use()
        if error is not None:
            return {"error": error}
        # The whole call, checks and waiting for a worker included, ends by the timeout.
        deadline = self._workers.deadline()
        try:
            source, notes = vet_with_notes(expression, self._limits)
        except CalculatorError as exc:
            log.debug("calculator refused %r: %s", expression, exc.message)
            return {"error": exc.message}
        except RecursionError:  # a rewrite deeper than Python's stack: still an answer
            log.info("calculator: vetting %.200r recursed too deeply", expression)
            return {"error": TOO_DEEP}
        try:
            answer = await self._workers.run(
                self._evaluate, source, self._limits, deadline=deadline
            )
            if notes and "error" not in answer:
                note = "; ".join(notes)
                answer["note"] = f"{note}; {answer['note']}" if "note" in answer else note
            return answer
        except WorkerTimeout as exc:
            log.info("calculator %s on %r", exc, expression)
            return {"error": f"timed out after {self.timeout:g} s"}
        except WorkerError as exc:
            failed = isinstance(exc, WorkerFailed)
            log.log(exc.log_level, "calculator %s on %r", exc, expression, exc_info=failed)
            return {"error": _POOL_ERRORS[type(exc)]}
