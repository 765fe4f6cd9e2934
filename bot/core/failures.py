"""Turning a failed model turn into a short, polite message, and logging the details."""

from __future__ import annotations

import json
import logging

import aiohttp
import openai
from agents.exceptions import MaxTurnsExceeded, ModelBehaviorError

from ..errors import UserFacingError
from ..memory.outage import LostTurnLock, StoreUnavailable

log = logging.getLogger(__name__)

GENERIC = "Sorry, something went wrong on my side. Please try again."
RATE_LIMITED = "The math model is rate limited right now. Please try again in a minute."
TIMED_OUT = "The math model took too long to answer. Please try again."
UNREACHABLE = "I can't reach the math model right now. Please try again in a little while."
UNAVAILABLE = "The math model is having trouble right now. Please try again shortly."
MISCONFIGURED = (
    "The math model isn't available right now (a configuration problem on my side). "
    "The bot's operator can see the details in the log."
)
REJECTED = (
    "The math model couldn't take that question. Try rephrasing it, or /forget to start over."
)
MALFORMED = "The math model sent a malformed answer. Please try again."
TOO_MANY_STEPS = "That took too many steps. Try splitting it into smaller questions."
EMPTY = "The math model sent an empty answer. Please ask again, perhaps in other words."
NO_MEMORY = "I can't reach my memory right now. Please try again in a minute."
LOST_TURN = (
    "My memory server was interrupted while I was answering, so I didn't keep that answer. "
    "Please ask again."
)


class FailureExplainer:
    """Maps exceptions from a model turn to `UserFacingError`; logs a bad key only once."""

    def __init__(self) -> None:
        self._credentials_logged = False

    def explain(self, exc: BaseException) -> UserFacingError:
        if isinstance(exc, UserFacingError):
            return exc
        if isinstance(exc, LostTurnLock):
            log.warning("turn not stored, its lock was lost: %s", exc)
            return UserFacingError(LOST_TURN)
        if isinstance(exc, StoreUnavailable):
            log.warning("memory store unavailable: %s", exc)
            return UserFacingError(NO_MEMORY)
        if isinstance(exc, openai.APITimeoutError) and not _connection_failed(exc):
            log.warning("model call timed out")
            return UserFacingError(TIMED_OUT)
        if isinstance(exc, openai.APIConnectionError):  # APITimeoutError is one too
            log.warning("model endpoint unreachable: %s", exc)
            return UserFacingError(UNREACHABLE)
        if isinstance(exc, openai.RateLimitError):
            log.warning("model rate limited (HTTP 429): %s", exc)
            return UserFacingError(RATE_LIMITED)
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            self._log_credentials_once(exc)
            return UserFacingError(MISCONFIGURED)
        if isinstance(exc, openai.NotFoundError):
            log.error("model endpoint answered 404: check LLM_MODEL and LLM_BASE_URL (%s)", exc)
            return UserFacingError(MISCONFIGURED)
        if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
            log.warning("model rejected the request: %s", exc)
            return UserFacingError(REJECTED)
        if isinstance(exc, openai.APIStatusError):
            log.warning("model endpoint failed (HTTP %s): %s", exc.status_code, exc)
            return UserFacingError(UNAVAILABLE)
        # The openai client lets a non-JSON body through as a bare JSONDecodeError.
        if isinstance(
            exc, openai.APIResponseValidationError | ModelBehaviorError | json.JSONDecodeError
        ):
            log.warning("model sent a malformed response: %s", exc)
            return UserFacingError(MALFORMED)
        if isinstance(exc, MaxTurnsExceeded):
            log.warning("turn exceeded the step limit: %s", exc)
            return UserFacingError(TOO_MANY_STEPS)
        log.error("model turn failed", exc_info=exc)
        return UserFacingError(GENERIC)

    def _log_credentials_once(self, exc: openai.APIStatusError) -> None:
        if self._credentials_logged:
            log.warning("model API key rejected again (HTTP %s)", exc.status_code)
            return
        self._credentials_logged = True
        log.error(
            "The model API rejected the API key (HTTP %s). Check GOOGLE_API_KEY or LLM_API_KEY "
            "and LLM_BASE_URL: every answer will fail until it is fixed.",
            exc.status_code,
        )


def _connection_failed(exc: BaseException) -> bool:
    """Whether a "timeout" is really a refused or dropped connection.

    The openai client's aiohttp transport (its vendored `httpx_aiohttp`) maps every
    `aiohttp.ClientConnectionError` to `ConnectTimeout`, so a refused connection or a server
    that hangs up surfaces as `APITimeoutError`; the aiohttp error it chains tells which.
    """
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, TimeoutError):
            return True
        cause = cause.__cause__
    return False
