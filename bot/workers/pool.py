"""A pool of killable worker processes in which every call ends by one wall-clock deadline."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import pebble

from .slots import Slots

log = logging.getLogger(__name__)

__all__ = [
    "PoolClosed",
    "PoolStopping",
    "PoolUnavailable",
    "WorkerBusy",
    "WorkerCrashed",
    "WorkerError",
    "WorkerFailed",
    "WorkerFunction",
    "WorkerPool",
    "WorkerTimeout",
]

_T = TypeVar("_T")

#: Time kept back from each call's deadline for the work around the task itself.
_DEADLINE_MARGIN = 0.02
#: How long starting a pool may wait for its first worker to answer the probe, in seconds.
_START_TIMEOUT = 120.0
#: How long stopping a pool waits for its processes to end, in seconds.
_JOIN_TIMEOUT = 10.0
#: How much lower a worker's CPU priority is than the bot's (added to its niceness): on a
#: busy machine the event loop, which every user shares, gets about 3 times a worker's share
#: of a core (Linux weights 1024 : 335). At +10 (9 : 1) workers starved behind other busy
#: processes so much that a replaced worker took over a second to answer.
_WORKER_NICENESS = 5
#: Modules the fork server loads once, so that a replaced worker starts in milliseconds: every
#: pool's `preload`, collected as pools are made, because one fork server serves the whole
#: process and it imports its modules only when the first pool starts it.
_forkserver_preload: dict[str, None] = {}


class WorkerError(Exception):
    """A call that brought back no answer from the task; each subclass says why.

    Its text is a short phrase that reads after the caller's name ("calculator timed out
    after 2s"); `log_level` is how loudly the caller should log it.
    """

    log_level: ClassVar[int] = logging.DEBUG


class PoolClosed(WorkerError):
    """The pool is not running (closed, not started, or being replaced); nothing was run."""


class PoolStopping(WorkerError):
    """The pool was stopped while the task waited or ran."""


class PoolUnavailable(WorkerError):
    """The pool was broken and could not be restarted; nothing was run."""


class WorkerBusy(WorkerError):
    """No worker became free before the deadline; nothing was run."""

    log_level = logging.WARNING


class WorkerTimeout(WorkerError):
    """The task overran the deadline; its worker was killed and is being replaced."""

    log_level = logging.INFO


class WorkerCrashed(WorkerError):
    """The worker process died while running the task (most often: out of memory)."""

    log_level = logging.WARNING

    def __init__(self, exitcode: int | None) -> None:
        super().__init__(f"worker died (exit code {exitcode})")
        self.exitcode = exitcode


class WorkerFailed(WorkerError):
    """The task raised an exception of its own; it is chained as `__cause__`."""

    log_level = logging.ERROR


@dataclass(frozen=True)
class WorkerFunction:
    """A module-level function named by its module and name, imported only where it is called.

    It is pickled as the two names (as pebble pickles any function), so the process that hands
    it to a pool never imports the module (and SymPy or matplotlib with it): only workers do.
    """

    module: str
    name: str

    def resolve(self) -> Callable[..., Any]:
        """Import the module (in a worker, the fork server has done so already) and the function."""
        function: Callable[..., Any] = getattr(importlib.import_module(self.module), self.name)
        return function

    def __call__(self, *args: Any) -> Any:
        return self.resolve()(*args)


def _init_worker(
    name: str,
    memory_bytes: int,
    max_str_digits: int,
    warm_up: Callable[[], object] | None,
) -> None:
    """Set up a fresh worker: die at once on SIGTERM, lower its priority, cap memory, then
    warm it up."""
    # Pebble's own SIGTERM handler only runs between bytecodes; a worker stuck in one long
    # C-level operation (a huge big-integer product) must still die the moment it is stopped.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if max_str_digits > 0:
        sys.set_int_max_str_digits(max_str_digits)
    # Generators abandoned by a MemoryError would each print a traceback to stderr.
    sys.unraisablehook = _quiet_unraisable
    try:
        os.nice(_WORKER_NICENESS)
    except OSError as exc:  # not permitted
        log.warning("%s worker: could not lower its priority: %s", name, exc)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if memory_bytes > 0:
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                memory_bytes = min(memory_bytes, hard)
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))
    except (ImportError, ValueError, OSError) as exc:  # not on Linux, or not permitted
        log.warning("%s worker: could not set resource limits: %s", name, exc)
    if warm_up is not None:
        warm_up()


def _quiet_unraisable(unraisable: Any) -> None:
    """Ignore errors in finalisers: they are only the fallout of a task already lost."""


def _ping() -> bool:
    """The default probe: proves that a worker is up and has been initialised."""
    return True


class WorkerPool:
    """Runs picklable functions in worker processes, each call bounded by `timeout` seconds.

    The deadline covers waiting for a free worker too: only as many tasks as workers are ever
    handed to pebble, and a call that waits for a worker waits here, where giving up costs
    nothing. A task still running at its deadline has its worker killed and replaced, so the
    pool keeps serving after hostile input. A call that brings back no answer raises a
    `WorkerError` subclass saying why.

    `warm_up` (a picklable module-level function or `WorkerFunction`) runs in each fresh worker
    after its limits are set; `probe` runs once at start, so that `start` returns with a worker
    ready. `preload` names the modules the pool's tasks need; the fork server, shared by every
    pool of the process, imports those of every pool made before it starts.
    """

    def __init__(
        self,
        name: str,
        timeout: float,
        max_workers: int,
        memory_mb: int,
        *,
        max_tasks_per_worker: int,
        max_str_digits: int = 0,
        warm_up: Callable[[], object] | None = None,
        probe: Callable[[], object] = _ping,
        preload: Sequence[str] = (),
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._name = name
        self._timeout = float(timeout)
        self._max_workers = max_workers
        self._memory_mb = memory_mb
        self._max_tasks = max_tasks_per_worker
        self._max_str_digits = max_str_digits
        self._warm_up = warm_up
        self._probe = probe
        self._pool: pebble.ProcessPool | None = None
        self._start_lock = asyncio.Lock()
        self._slots = Slots(max_workers)
        self._closed = False
        _forkserver_preload.update(dict.fromkeys(preload))

    @property
    def timeout(self) -> float:
        """The hard wall-clock limit of one call, in seconds."""
        return self._timeout

    @property
    def running(self) -> bool:
        """Whether the processes are up (false before `start`, after `close`)."""
        return self._pool is not None

    @property
    def closed(self) -> bool:
        """Whether `close` has been called (a closed pool never starts again)."""
        return self._closed

    def deadline(self) -> float:
        """The event-loop time by which a call that starts now must have ended."""
        return asyncio.get_running_loop().time() + self._timeout - _DEADLINE_MARGIN

    async def start(self) -> None:
        """Start the processes and wait until a worker has answered the probe (idempotent).

        Raises `PoolClosed` once the pool is closed.
        """
        async with self._start_lock:
            if self._closed:
                raise PoolClosed("pool closed")
            if self._pool is None:
                self._pool = await asyncio.to_thread(self._create_pool)

    async def close(self) -> None:
        """Stop the workers (a task being run is abandoned)."""
        async with self._start_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            await asyncio.to_thread(pool.join, _JOIN_TIMEOUT)
            log.info("%s pool stopped", self._name)

    async def run(
        self, fn: Callable[..., _T], *args: Any, deadline: float | None = None, size: int = 0
    ) -> _T:
        """Run `fn(*args)` in a worker and return its answer by `deadline`.

        `deadline` is an event-loop time (see `deadline()`); by default the call may take
        `timeout` seconds from now. When every worker is busy, calls of a smaller `size` get
        the next free one first (`Slots`). Raises a `WorkerError` subclass instead of an
        answer; a cancelled call kills its worker if the task had started.
        """
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = self.deadline()
        if self._pool is None:
            raise PoolClosed("pool closed")
        try:
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire(size)
        except TimeoutError:
            raise WorkerBusy(f"busy: no free worker within {self._timeout:g}s") from None
        try:
            try:
                future = self._schedule(fn, args, deadline)
            except RuntimeError:
                log.exception("%s pool broken; restarting it", self._name)
                try:
                    await self._restart()
                    future = self._schedule(fn, args, deadline)
                except Exception as exc:
                    log.exception("%s pool could not be restarted", self._name)
                    raise PoolUnavailable("pool unavailable") from exc
            return await self._wait(future, deadline - loop.time())
        finally:
            self._slots.release()

    def _create_pool(self) -> pebble.ProcessPool:
        methods = multiprocessing.get_all_start_methods()
        method = "forkserver" if "forkserver" in methods else "spawn"
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            # New workers fork from a server that has the preloaded modules imported already,
            # so replacing a killed worker takes milliseconds, and no worker is forked from
            # this process's threads. The fork server is shared by every pool of the process,
            # so this only applies if it is not running yet: preload every pool's modules.
            context.set_forkserver_preload(list(_forkserver_preload))
        pool = pebble.ProcessPool(
            max_workers=self._max_workers,
            max_tasks=self._max_tasks,
            initializer=_init_worker,
            initargs=(
                self._name,
                self._memory_mb * 1024 * 1024,
                self._max_str_digits,
                self._warm_up,
            ),
            context=context,
        )
        # Scheduling starts the pool (and its processes) from this thread, not the event
        # loop; the answer proves a worker is up.
        try:
            pool.schedule(self._probe).result(timeout=_START_TIMEOUT)
        except BaseException:
            pool.stop()
            pool.join(_JOIN_TIMEOUT)
            raise
        log.info(
            "%s pool started: %d workers (%s), timeout %gs, memory %d MB",
            self._name,
            self._max_workers,
            method,
            self._timeout,
            self._memory_mb,
        )
        return pool

    def _schedule(
        self, fn: Callable[..., _T], args: tuple[Any, ...], deadline: float
    ) -> concurrent.futures.Future[_T]:
        pool = self._pool
        if pool is None:
            raise RuntimeError(f"the {self._name} pool is closed")
        # Pebble's own timeout (counted from when a worker picks the task up) is a backstop,
        # set past this call's deadline (which may be later than `timeout` from now): the
        # deadline, counted from the call, is the one that normally fires.
        remaining = deadline - asyncio.get_running_loop().time()
        return pool.schedule(fn, args=args, timeout=max(remaining, 0.0) + _DEADLINE_MARGIN)

    async def _restart(self) -> None:
        async with self._start_lock:
            old, self._pool = self._pool, None
            if old is not None:
                old.stop()
            if not self._closed:
                self._pool = await asyncio.to_thread(self._create_pool)
        if old is not None:
            await asyncio.to_thread(old.join, _JOIN_TIMEOUT)

    async def _wait(self, future: concurrent.futures.Future[_T], remaining: float) -> _T:
        waiter = asyncio.wrap_future(future)
        # Mark an outcome as retrieved even when this call has already given up on it.
        waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            done, _ = await asyncio.wait({waiter}, timeout=max(remaining, 0.0))
        except asyncio.CancelledError:
            future.cancel()  # kills the worker if it had started
            raise
        timed_out = f"timed out after {self._timeout:g}s"
        if not done and future.cancel():  # a running task's worker is killed and replaced
            raise WorkerTimeout(timed_out)
        try:
            return future.result(timeout=0)
        except TimeoutError as exc:  # pebble's backstop fired first
            raise WorkerTimeout(timed_out) from exc
        except pebble.ProcessExpired as exc:
            raise WorkerCrashed(exc.exitcode) from exc
        except concurrent.futures.CancelledError as exc:
            raise PoolStopping("pool shutting down") from exc
        except Exception as exc:
            raise WorkerFailed("failed") from exc
