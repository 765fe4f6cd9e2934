"""What tools may hand back beside their text during one turn (e.g. pictures to attach)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..render.discord_limits import ATTACHMENTS_PER_MESSAGE
from ..render.images import Image, alt_text


@dataclass
class TurnContext:
    """The `context` of one `Runner.run`: tools reach it as `ctx.context`.

    Images are kept here, never in the memory store: only a tool's text result is remembered.
    """

    images: list[Image] = field(default_factory=list)

    def add_image(self, stem: str, png: bytes, description: str = "") -> str | None:
        """Keep a PNG for the reply, with `description` (what it shows) as its alt text; its
        file name, or None when the turn has enough images."""
        if len(self.images) >= ATTACHMENTS_PER_MESSAGE:
            return None
        name = f"{stem}-{len(self.images) + 1}.png"
        self.images.append(Image(name, png, alt_text(description)))
        return name
