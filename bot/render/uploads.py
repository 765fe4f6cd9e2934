"""Files attached to a question: which are read, how big they may be, how they reach the model."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from ..errors import UserFacingError

TEXT_SUFFIXES = frozenset({".txt", ".md", ".tex", ".csv"})
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
MAX_TEXT_BYTES = 50_000
MAX_IMAGE_BYTES = 8_000_000
MAX_FILES_PER_QUESTION = 4  # files attached to one question

Kind = Literal["text", "image"]

UNSUPPORTED = (
    "I can read .txt, .md, .tex and .csv files and images (PNG, JPEG, WebP, GIF); "
    "{name} is none of those."
)
NO_IMAGES = "The model I use can't read images. Please type the problem instead."


@dataclass(frozen=True)
class Upload:
    """One attached file, already downloaded."""

    name: str
    kind: Kind
    content_type: str
    data: bytes


def kind_of(name: str, content_type: str | None) -> Kind:
    """What an attachment is, or `UserFacingError` when it is not something we read."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if PurePosixPath(name.lower()).suffix in TEXT_SUFFIXES:
        return "text"
    if mime in IMAGE_TYPES:
        return "image"
    raise UserFacingError(UNSUPPORTED.format(name=name))


def check_size(name: str, kind: Kind, size: int) -> None:
    """Refuse, before downloading it, a file that is too big to read."""
    limit = MAX_TEXT_BYTES if kind == "text" else MAX_IMAGE_BYTES
    if size > limit:
        raise UserFacingError(
            f"{name} is too big ({size:,} bytes); I read {kind} files up to {limit:,} bytes."
        )


def with_text_files(question: str, uploads: tuple[Upload, ...]) -> str:
    """The question with each text file's contents appended as a fenced block."""
    parts = [question]
    for upload in uploads:
        if upload.kind != "text":
            continue
        try:
            body = upload.data.decode("utf-8")
        except UnicodeDecodeError:
            raise UserFacingError(f"{upload.name} is not UTF-8 text, so I can't read it.") from None
        fence = "~~~" if "```" in body else "```"
        parts.append(f"[attached file {upload.name}]\n{fence}\n{body.strip()}\n{fence}")
    return "\n\n".join(p for p in parts if p)


def model_input(text: str, uploads: tuple[Upload, ...]) -> str | list[Any]:
    """What `Runner.run` gets: the text, or a user message with the images as data URLs."""
    images = [u for u in uploads if u.kind == "image"]
    if not images:
        return text
    content: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
    for image in images:
        encoded = base64.b64encode(image.data).decode("ascii")
        content.append(
            {
                "type": "input_image",
                "image_url": f"data:{image.content_type};base64,{encoded}",
                "detail": "auto",
            }
        )
    return [{"role": "user", "content": content}]


def without_images(items: list[Any]) -> list[Any]:
    """Items to store: an image the user sent is remembered as a short note, not its bytes."""
    kept = []
    for item in items:
        content = item.get("content") if isinstance(item, dict) else None
        if item.get("role") == "user" and isinstance(content, list):
            parts = [
                {"type": "input_text", "text": "[an image was attached here]"}
                if isinstance(part, dict) and part.get("type") == "input_image"
                else part
                for part in content
            ]
            item = {**item, "content": parts}
        kept.append(item)
    return kept
