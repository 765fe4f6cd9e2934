"""What tools share during one turn: who asked, the tool time used, pictures to attach."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..render.discord_limits import ATTACHMENTS_PER_MESSAGE
from ..render.images import Image, alt_text


@dataclass
class ToolTally:
    """What the tool calls of one turn have used: calls started and busy time.

    Busy time is the wall-clock time during which at least one call was waiting or running:
    calls made in parallel are not counted twice. Times are event-loop times, in seconds.
    """

    calls: int = 0
    _spent: float = 0.0  # the busy periods that have ended
    _busy_since: float | None = None
    _running: int = 0

    def spent(self, now: float) -> float:
        """The busy time so far."""
        if self._busy_since is None:
            return self._spent
        return self._spent + now - self._busy_since

    def begin(self, now: float) -> None:
        """A call starts."""
        self.calls += 1
        if self._running == 0:
            self._busy_since = now
        self._running += 1

    def end(self, now: float) -> None:
        """A call has ended."""
        self._running -= 1
        if self._running == 0 and self._busy_since is not None:
            self._spent += now - self._busy_since
            self._busy_since = None

    def deadline(self, budget: float, now: float) -> float:
        """When the busy time will reach `budget` seconds if calls keep running."""
        return now + budget - self.spent(now)


@dataclass
class TurnContext:
    """The `context` of one `Runner.run`: tools reach it as `ctx.context`.

    `user` is the asker's id (None: the local operator), whose tool calls are run one at a
    time. Images are kept here, never in the memory store: only a tool's text result is
    remembered.
    """

    user: int | None = None
    images: list[Image] = field(default_factory=list)
    tools: ToolTally = field(default_factory=ToolTally)

    def add_image(self, stem: str, png: bytes, description: str = "") -> str | None:
        """Keep a PNG for the reply, with `description` (what it shows) as its alt text; its
        file name, or None when the turn has enough images."""
        if len(self.images) >= ATTACHMENTS_PER_MESSAGE:
            return None
        name = f"{stem}-{len(self.images) + 1}.png"
        self.images.append(Image(name, png, alt_text(description)))
        return name
