"""Enforcing the cost and abuse controls around each turn: access, rate, budgets, the model cap."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from agents import Usage

from ..errors import QuietRefusal, UserFacingError
from .access import AccessPolicy, Requester
from .ratelimit import ModelGate, UserRateLimiter, rate_limited_message
from .shared import SharedRateLimiter
from .usage import Budget, budget_key, describe_top

log = logging.getLogger(__name__)


class Guard:
    """Decides whether a question may reach the model, and accounts for what it cost.

    `who=None` is the operator at the terminal: never refused, never counted. The rate limit
    is `limiter` (this process's memory, checked on admission) or `shared` (a server every
    process sees, checked asynchronously when the turn starts, before any model call).
    """

    def __init__(
        self,
        policy: AccessPolicy,
        limiter: UserRateLimiter | None,
        gate: ModelGate,
        budget: Budget,
        shared: SharedRateLimiter | None = None,
    ) -> None:
        self._policy = policy
        self._limiter = limiter
        self._notices = UserRateLimiter(1, 600)  # a blocked user is told at most every 10 min
        self.gate = gate
        self.budget = budget
        self._shared = shared

    def is_admin(self, who: Requester | None) -> bool:
        return who is None or self._policy.is_admin(who.user_id)

    def admit(self, who: Requester | None) -> None:
        """Refuse at once (before any model call) a user who is not allowed or too fast."""
        if who is None:
            return
        verdict = self._policy.check(who)
        if not verdict.allowed:
            log.info("refused user %s: %s", who.user_id, verdict.reason)
            if verdict.notice is None or self._notices.check(who.user_id) is not None:
                raise QuietRefusal(verdict.reason)
            raise UserFacingError(verdict.notice, private=True)
        if self._limiter is not None and not self.is_admin(who):
            self._limiter.enforce(who.user_id)

    async def check_budget(self, who: Requester | None) -> None:
        """Before a turn's model call: the shared rate limit (if any), then the budgets."""
        if who is None:
            return
        admin = self.is_admin(who)
        if self._shared is not None and not admin:
            retry_after = await self._shared.check(who.user_id)
            if retry_after is not None:
                log.info("rate limited user %s for %.1f s (shared)", who.user_id, retry_after)
                raise UserFacingError(rate_limited_message(retry_after))
        await self.budget.check(budget_key(who.user_id), admin=admin)

    @asynccontextmanager
    async def model_slot(self) -> AsyncIterator[None]:
        """One of the limited model-call places, or `UserFacingError` when the queue is full."""
        async with self.gate.slot():
            yield

    async def record(self, who: Requester | None, usage: Usage) -> None:
        if who is not None:
            await self.budget.record(budget_key(who.user_id), usage)

    async def usage_text(self, who: Requester) -> str:
        """What `/usage` shows: the caller's tokens today and in total; admins also see the top."""
        admin = self.is_admin(who)
        report = await self.budget.report(budget_key(who.user_id))
        text = self.budget.describe(report, admin=admin)
        if admin:
            top = await self.budget.top(today=True)
            text += "\n\n" + describe_top(top, title="Top users today")
        return text
