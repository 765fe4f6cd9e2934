"""Store outages: the error a turn gets when a shared store can't be reached, and the wrapper
that raises it from the SDK's sessions."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from agents import TResponseInputItem
from agents.memory import Session

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The shared memory store can't be reached right now (down, restarting, unreachable).

    Nothing of the turn was stored; asking again later is safe. The original error is the
    `__cause__`; the message itself holds no URL or secret.
    """


class TurnLockTimeout(StoreUnavailable):
    """Another process kept the session's turn for longer than this store waits for it."""


class LostTurnLock(StoreUnavailable):
    """A turn's lock was lost before its commit (it expired, or the memory server restarted),
    so another process may have run a turn of the session meanwhile: the commit is refused
    and nothing of the turn is stored."""


def require_extra(extra: str, what: str, imports: Callable[[], object]) -> None:
    try:
        imports()
    except ImportError as exc:
        missing = exc.name or getattr(exc.__cause__, "name", None)
        raise ValueError(
            f"SESSION_DB is a {what} URL, which needs the {extra} extra: "
            f'pip install "mathbot[{extra}]"' + (f" (missing module: {missing})" if missing else "")
        ) from exc


def where(url: str) -> str:
    """host:port/db of a URL, for logs: never the user name or the password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 'default'}{parts.path}"


class GuardedSession:
    """An SDK session whose connection failures are raised as `StoreUnavailable`.

    It forwards the four `Session` methods unchanged otherwise; `sdk_session` is the SDK's
    own object (`SQLAlchemySession` or `RedisSession`).
    """

    def __init__(
        self, sdk_session: Session, is_outage: Callable[[BaseException], bool], what: str
    ) -> None:
        self.sdk_session = sdk_session
        self.session_id = sdk_session.session_id
        self.session_settings = sdk_session.session_settings
        self._is_outage = is_outage
        self._what = what

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        with outages_raised(self._is_outage, self._what):
            return await self.sdk_session.get_items(limit)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        with outages_raised(self._is_outage, self._what):
            await self.sdk_session.add_items(items)

    async def pop_item(self) -> TResponseInputItem | None:
        with outages_raised(self._is_outage, self._what):
            return await self.sdk_session.pop_item()

    async def clear_session(self) -> None:
        with outages_raised(self._is_outage, self._what):
            await self.sdk_session.clear_session()


@contextlib.contextmanager
def outages_raised(is_outage: Callable[[BaseException], bool], what: str) -> Iterator[None]:
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as exc:
        if is_outage(exc):
            raise StoreUnavailable(f"{what} is unavailable ({type(exc).__name__})") from exc
        raise
