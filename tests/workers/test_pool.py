"""Tests of the `WorkerPool`: its workers run behind the bot's event loop."""

from __future__ import annotations

import asyncio
import os
import time

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


async def test_a_call_may_run_until_its_own_deadline_past_the_pools_timeout() -> None:
    pool = WorkerPool("late", timeout=0.5, max_workers=1, memory_mb=0, max_tasks_per_worker=10)
    await pool.start()
    try:
        loop = asyncio.get_running_loop()
        # 0.8 s of work: past the pool's 0.5 s, well within this call's 30 s.
        slept = await pool.run(time.sleep, 0.8, deadline=loop.time() + 30.0)
    finally:
        await pool.close()
    assert slept is None
