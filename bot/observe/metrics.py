"""What the core and the Discord adapter report as they work, and its Prometheus implementation."""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: The ways a question comes in, the `way` label of `mathbot_questions_total`.
WAYS = ("mention", "dm", "thread", "slash", "menu")
#: How a turn ends, the `outcome` label of `mathbot_answers_total`.
OUTCOMES = ("answered", "unchanged", "refused", "failed", "cancelled")
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0, 120.0)


class Metrics(Protocol):
    """The events worth counting. Every method is cheap and never raises."""

    def question(self, way: str) -> None:
        """A question arrived for the bot where it answers (before it is admitted), by `way`
        in (`WAYS`)."""

    def answered(self, outcome: str, seconds: float) -> None:
        """A turn ended with `outcome` (`OUTCOMES`) after `seconds`."""

    def tokens(self, input_tokens: int, output_tokens: int) -> None:
        """One model response used these tokens."""

    def tool_call(self, tool: str, outcome: str) -> None:
        """A tool call ended: `ok` or `error`."""

    def busy(self) -> None:
        """A turn was refused because the model-call queue was full."""

    def turn_started(self) -> None: ...

    def turn_ended(self) -> None: ...

    def connected(self, up: bool) -> None:
        """The Discord connection came up or went down."""


class NoMetrics:
    """Counts nothing: the default when `METRICS_PORT` is unset."""

    def question(self, way: str) -> None:
        pass

    def answered(self, outcome: str, seconds: float) -> None:
        pass

    def tokens(self, input_tokens: int, output_tokens: int) -> None:
        pass

    def tool_call(self, tool: str, outcome: str) -> None:
        pass

    def busy(self) -> None:
        pass

    def turn_started(self) -> None:
        pass

    def turn_ended(self) -> None:
        pass

    def connected(self, up: bool) -> None:
        pass


class PrometheusMetrics:
    """The metrics in a `prometheus_client` registry of their own (not the global one, so
    that several bots in one process, as in the tests, count apart)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._questions = Counter(
            "mathbot_questions", "Questions that reached the bot, by way in.", ["way"], registry=r
        )
        self._answers = Counter(
            "mathbot_answers", "Turns that ended, by outcome.", ["outcome"], registry=r
        )
        self._latency = Histogram(
            "mathbot_answer_seconds",
            "Seconds from a question's turn being queued to its answer.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._tokens = Counter(
            "mathbot_model_tokens", "Model tokens used, by kind.", ["kind"], registry=r
        )
        self._tools = Counter(
            "mathbot_tool_calls",
            "Tool calls, by tool and outcome.",
            ["tool", "outcome"],
            registry=r,
        )
        self._busy = Counter(
            "mathbot_busy_refusals", "Turns refused because the model queue was full.", registry=r
        )
        self._in_flight = Gauge(
            "mathbot_turns_in_flight", "Turns queued or running now.", registry=r
        )
        self._up = Gauge(
            "mathbot_discord_connected", "1 while connected to Discord, else 0.", registry=r
        )
        self.loop_lag = Gauge(
            "mathbot_event_loop_lag_seconds",
            "How late the event loop last woke a sleeping task.",
            registry=r,
        )
        for way in WAYS:
            self._questions.labels(way)
        for outcome in OUTCOMES:
            self._answers.labels(outcome)
        for kind in ("input", "output"):
            self._tokens.labels(kind)
        self.discord_up = False

    def question(self, way: str) -> None:
        self._questions.labels(way).inc()

    def answered(self, outcome: str, seconds: float) -> None:
        self._answers.labels(outcome).inc()
        if outcome == "answered":
            self._latency.observe(seconds)

    def tokens(self, input_tokens: int, output_tokens: int) -> None:
        self._tokens.labels("input").inc(max(0, input_tokens))
        self._tokens.labels("output").inc(max(0, output_tokens))

    def tool_call(self, tool: str, outcome: str) -> None:
        self._tools.labels(tool, outcome).inc()

    def busy(self) -> None:
        self._busy.inc()

    def turn_started(self) -> None:
        self._in_flight.inc()

    def turn_ended(self) -> None:
        self._in_flight.dec()

    def connected(self, up: bool) -> None:
        self.discord_up = up
        self._up.set(1 if up else 0)
