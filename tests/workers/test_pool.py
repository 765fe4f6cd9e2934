"""Tests of the `WorkerPool`: its workers run behind the bot's event loop."""

from __future__ import annotations

import os

from bot.workers.pool import WorkerPool


async def test_workers_run_at_a_lower_cpu_priority_than_the_bot() -> None:
    pool = WorkerPool("nice", timeout=30.0, max_workers=1, memory_mb=0, max_tasks_per_worker=10)
    await pool.start()
    try:
        # os.nice(0) changes nothing and returns the niceness of the process it runs in.
        worker = await pool.run(os.nice, 0)
    finally:
        await pool.close()
    assert worker > os.nice(0)
