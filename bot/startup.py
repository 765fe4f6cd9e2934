"""Start-up faults an operator can cause: a memory file that cannot be created stops start-up
with one line naming its setting; a server not reachable yet is retried with backoff, for ever."""

from __future__ import annotations

import logging
import sqlite3
from urllib.parse import urlsplit

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from .config.envparse import ConfigError
from .core.assistant import Service

log = logging.getLogger(__name__)

FIRST_WAIT = 1.0  # seconds before the second try; doubled after each failure…
LONGEST_WAIT = 60.0  # …up to this


def host_port(url: str) -> str:
    """`host:port` of a URL, for a log line: never its user name or password."""
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "wss": 443, "http": 80, "ws": 80}.get(parts.scheme)
    return f"{parts.hostname or 'localhost'}:{port or 'default'}"


def patiently(
    what: str,
    errors: tuple[type[BaseException], ...],
    *,
    first: float = FIRST_WAIT,
    longest: float = LONGEST_WAIT,
) -> AsyncRetrying:
    """Tries for as long as it takes while `errors` are raised (any other error is raised at
    once), waiting `first`, twice that, … up to `longest` seconds between tries, with one
    warning per failed try naming `what` (say `Redis at 127.0.0.1:6379`, never a password)."""

    def tell(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        cause = (failure.__cause__ or failure) if failure else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s is unreachable (%s); try %d in %.0f s",
            what,
            type(cause).__name__,
            state.attempt_number + 1,
            wait,
        )

    return AsyncRetrying(
        retry=retry_if_exception_type(errors),
        wait=wait_exponential(multiplier=first, max=longest),
        before_sleep=tell,
        reraise=True,
    )


class PatientStart:
    """A `service` whose `start()` is retried (see `patiently`) while its server is
    unreachable; `close()` is the service's own."""

    def __init__(self, service: Service, what: str, errors: tuple[type[BaseException], ...]):
        self.service = service
        self.what = what
        self.errors = errors

    async def start(self) -> None:
        async for attempt in patiently(self.what, self.errors):
            with attempt:
                await self.service.start()

    async def close(self) -> None:
        await self.service.close()


class FileStart:
    """A `service` that creates or opens the SQLite file `path`, named by the setting
    `setting`: when it cannot, start-up stops with one `ConfigError` line naming both."""

    def __init__(self, service: Service, setting: str, path: str) -> None:
        self.service = service
        self.setting = setting
        self.path = path

    async def start(self) -> None:
        try:
            await self.service.start()
        except (OSError, sqlite3.Error) as exc:
            reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            raise ConfigError(
                f"{self.setting}: cannot create or open the file {self.path!r} ({reason}); "
                f"set {self.setting} to a path in a directory mathbot can write to"
            ) from None

    async def close(self) -> None:
        await self.service.close()
