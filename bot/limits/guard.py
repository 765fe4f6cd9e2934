"""Enforcing the cost and abuse controls around each turn: access, rate, budgets, the model cap."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from agents import Usage

from ..config.controls import Controls
from ..errors import UserFacingError
from ..memory.session import user_session_id
from .access import AccessPolicy, Requester
from .ratelimit import ModelGate, UserRateLimiter
from .usage import Budget, SQLiteUsageLedger, describe_top, utc_now

log = logging.getLogger(__name__)


class Guard:
    """Decides whether a question may reach the model, and accounts for what it cost.

    `who=None` is the operator at the terminal: never refused, never counted.
    """

    def __init__(
        self, controls: Controls, usage_db: str, *, now: Callable[[], datetime] = utc_now
    ) -> None:
        self._policy = AccessPolicy(controls)
        rate = controls.user_rate
        self._limiter = UserRateLimiter.from_rate(rate) if rate is not None else None
        self._notices = UserRateLimiter(1, 600)  # a blocked user is told at most every 10 min
        self.gate = ModelGate(controls.max_concurrent_model_calls, controls.max_queued_turns)
        self._ledger = SQLiteUsageLedger(usage_db)
        self.budget = Budget(self._ledger, controls, now=now)

    async def start(self) -> None:
        await self._ledger.start()

    async def close(self) -> None:
        await self._ledger.close()

    def is_admin(self, who: Requester | None) -> bool:
        return who is None or self._policy.is_admin(who.user_id)

    def admit(self, who: Requester | None) -> None:
        """Refuse at once (before any model call) a user who is not allowed or too fast."""
        if who is None:
            return
        verdict = self._policy.check(who)
        if not verdict.allowed:
            log.info("refused user %s: %s", who.user_id, verdict.reason)
            notice = verdict.notice if self._notices.check(who.user_id) is None else None
            raise UserFacingError(notice or "", private=True)
        if self._limiter is not None and not self.is_admin(who):
            self._limiter.enforce(who.user_id)

    async def check_budget(self, who: Requester | None) -> None:
        if who is not None:
            await self.budget.check(user_session_id(who.user_id), admin=self.is_admin(who))

    @asynccontextmanager
    async def model_slot(self) -> AsyncIterator[None]:
        """One of the limited model-call places, or `UserFacingError` when the queue is full."""
        async with self.gate.slot():
            yield

    async def record(self, who: Requester | None, usage: Usage) -> None:
        if who is not None:
            await self.budget.record(user_session_id(who.user_id), usage)

    async def usage_text(self, who: Requester) -> str:
        """What `/usage` shows: the caller's tokens today and in total; admins also see the top."""
        admin = self.is_admin(who)
        report = await self.budget.report(user_session_id(who.user_id))
        text = self.budget.describe(report, admin=admin)
        if admin:
            top = await self.budget.top(today=True)
            text += "\n\n" + describe_top(top, title="Top users today")
        return text
