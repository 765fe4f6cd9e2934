"""The composition root: `build(settings)` wires the stores, limits, tools and model into the
assistant. The one place that decides which concrete parts the bot is made of."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from agents import Tool, set_tracing_export_api_key
from agents.models.interface import Model

from .config.controls import Controls
from .config.settings import Settings, store_kind
from .core.agent import ModelEndpoint, build_agent, run_config
from .core.assistant import Assistant, Service
from .core.choices import Choices
from .limits.access import AccessPolicy
from .limits.guard import Guard
from .limits.postgres import PostgresRateLimiter, PostgresUsageLedger
from .limits.ratelimit import ModelGate, UserRateLimiter
from .limits.redis import RedisRateLimiter, RedisUsageLedger
from .limits.shared import SharedRateLimiter
from .limits.stream_share import StreamPacer
from .limits.usage import Budget, SQLiteUsageLedger, UsageLedger, utc_now
from .memory.outage import StoreUnavailable, where
from .memory.postgres import PostgresStore
from .memory.preferences import open_preferences
from .memory.redis import RedisStore
from .memory.store import SessionStore
from .memory.stores import open_store
from .observe.health import Health
from .observe.metrics import Metrics, PrometheusMetrics
from .observe.server import ObservabilityServer
from .render.renderer import Renderer
from .startup import FileStart, PatientStart
from .tools.budget import ToolGate, ToolLimits, UserLocks
from .tools.calculator.calculator import Calculator
from .tools.calculator.tool import calculate_tool, check_tool
from .tools.plotting.plotter import Plotter
from .tools.plotting.tool import plot_tool

log = logging.getLogger(__name__)


def build(
    settings: Settings,
    *,
    model: Model | None = None,
    store: SessionStore | None = None,
    calculator: Calculator | None = None,
    plotter: Plotter | None = None,
    extra_tools: Sequence[Tool] = (),
    now: Callable[[], datetime] = utc_now,
) -> Assistant:
    """The assistant and everything it needs, not started yet (`await assistant.start()`).

    Parts given here are the caller's: a `calculator` or `plotter` passed in is started on
    first use and never closed by the assistant; a `model` replaces the model endpoint. The
    memory `store` is started and closed by the assistant either way. Raises `ValueError`
    with one line when `SESSION_DB` needs an extra that is not installed. The memory store
    opened here waits for its server (see `bot.startup`); files that cannot be created stop
    `start()` with a `ConfigError` naming their setting.
    """
    services: list[Service] = []
    if store is None:
        store = open_store(settings.session_db)
        services.append(starting_store(store, settings.session_db))
    else:
        services.append(store)
    preferences = open_preferences(store)
    services.append(preferences)
    metrics: Metrics | None = None
    if settings.metrics_port is not None:
        metrics = prometheus = PrometheusMetrics()
        health = Health(store, lambda: prometheus.discord_up)
        services.append(
            ObservabilityServer(settings.metrics_host, settings.metrics_port, prometheus, health)
        )
    ledger, shared = shared_limits(settings, store)
    if isinstance(ledger, SQLiteUsageLedger):
        usage_setting = "SESSION_DB" if settings.usage_path == settings.session_db else "USAGE_DB"
        services.append(FileStart(ledger, usage_setting, settings.usage_path))
    else:
        services.append(ledger)
    if shared is not None:
        services.append(shared)
    if calculator is None:
        services.append(calculator := Calculator())
    if plotter is None:
        services.append(plotter := Plotter())
    gate = ToolGate(ToolLimits(), UserLocks())
    tools = (
        calculate_tool(calculator, gate),
        check_tool(calculator, gate),
        plot_tool(plotter, gate),
        *extra_tools,
    )
    if model is None:
        endpoint = ModelEndpoint(settings, StreamPacer())
        services.append(endpoint)
        current_model: Callable[[], Model] = lambda: endpoint.model  # noqa: E731
    else:
        current_model = lambda: model  # noqa: E731
    if settings.tracing_api_key:
        set_tracing_export_api_key(settings.tracing_api_key)
    log.info(
        "assistant: model %s at %s, memory per %s, %d turns of history",
        settings.llm_model,
        settings.llm_base_url,
        settings.session_scope,
        settings.history_turns,
    )
    return Assistant(
        store=store,
        guard=build_guard(settings.controls, ledger, now=now, metrics=metrics, shared=shared),
        make_agent=lambda: build_agent(current_model(), tools),
        choices=Choices(preferences, settings.answer_style),
        run_config=run_config(settings),
        history_turns=settings.history_turns,
        images_allowed=settings.llm_images,
        services=services,
        metrics=metrics,
    )


def build_renderer() -> Renderer:
    """What makes answers Discord-ready (math as Unicode and images), in worker processes; the
    Discord client starts and closes it."""
    return Renderer()


def starting_store(store: SessionStore, session_db: str) -> Service:
    """The store as started at start-up: a SQLite file must be creatable, a server is waited
    for (one warning per try)."""
    kind = store_kind(session_db)
    if kind == "sqlite":
        return FileStart(store, "SESSION_DB", session_db)
    what = f"memory ({'PostgreSQL' if kind == 'postgres' else 'Redis'} at {where(session_db)})"
    return PatientStart(store, what, (StoreUnavailable,))


def build_guard(
    controls: Controls,
    ledger: UsageLedger,
    *,
    now: Callable[[], datetime] = utc_now,
    metrics: Metrics | None = None,
    shared: SharedRateLimiter | None = None,
) -> Guard:
    """The limits the settings ask for: access lists, rate limit, model cap, token budgets.
    With a `shared` rate limiter, this process keeps no rate limit of its own."""
    rate = controls.user_rate
    gate = ModelGate(
        controls.max_concurrent_model_calls,
        controls.max_queued_turns,
        on_busy=metrics.busy if metrics is not None else None,
    )
    return Guard(
        AccessPolicy(controls),
        UserRateLimiter.from_rate(rate) if rate is not None and shared is None else None,
        gate,
        Budget(ledger, controls, now=now),
        shared,
    )


def shared_limits(
    settings: Settings, store: SessionStore
) -> tuple[UsageLedger, SharedRateLimiter | None]:
    """Where token usage and rate limits are counted. With memory in PostgreSQL or Redis,
    there too (every shard sees the same counts; a restart keeps them), unless USAGE_DB names
    a SQLite file for the usage; otherwise usage in SQLite and rates in this process."""
    rate = settings.controls.user_rate
    ledger: UsageLedger = SQLiteUsageLedger(settings.usage_path)
    shared: SharedRateLimiter | None = None
    if isinstance(store, PostgresStore):
        ledger = ledger if settings.usage_db else PostgresUsageLedger(store)
        shared = PostgresRateLimiter(store, rate) if rate is not None else None
    elif isinstance(store, RedisStore):
        ledger = ledger if settings.usage_db else RedisUsageLedger(store)
        shared = RedisRateLimiter(store, rate) if rate is not None else None
    return ledger, shared
