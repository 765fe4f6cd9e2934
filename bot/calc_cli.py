"""`mathbot calc "EXPR"`: the sandboxed calculator from the command line, no keys needed."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .tools.calculator.calculator import Calculator


async def run_calc(expressions: Sequence[str], calculator: Calculator | None = None) -> int:
    """Print, one line each, what the `calculate` tool would hand the model for each
    expression; 0 if every one has a result, 1 if any answered `{"error"}`."""
    failed = False
    async with calculator or Calculator() as calc:
        for expression in expressions:
            answer = await calc.evaluate(expression)
            print(answer, flush=True)
            failed = failed or "error" in json.loads(answer)
    return 1 if failed else 0
