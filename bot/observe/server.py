"""The HTTP server for operators: `/healthz` and `/metrics`, and the event-loop lag probe."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .health import Health
from .metrics import PrometheusMetrics

log = logging.getLogger(__name__)

LAG_INTERVAL = 0.5  # seconds between event-loop lag probes


class ObservabilityServer:
    """An aiohttp server on `host`:`port` (0: one the OS picks; see `port` once started),
    run inside the bot's event loop. Started and closed with the assistant's services."""

    def __init__(self, host: str, port: int, metrics: PrometheusMetrics, health: Health) -> None:
        self.host = host
        self._wanted_port = port
        self._metrics = metrics
        self._health = health
        self._runner: web.AppRunner | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._wanted_port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self._lag_task = asyncio.create_task(self._probe_lag(), name="mathbot-loop-lag")
        log.info("metrics: /healthz and /metrics on http://%s:%s", self.host, self.port)

    async def close(self) -> None:
        task, self._lag_task = self._lag_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        problem = await self._health.problem()
        if problem is None:
            return web.Response(text="ok\n")
        return web.Response(status=503, text=problem + "\n")

    async def _metrics_page(self, request: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _probe_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_INTERVAL)
            self._metrics.loop_lag.set(max(0.0, loop.time() - before - LAG_INTERVAL))
