"""Files attached to a question: which are read, how big they may be, how they reach the model."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from ..errors import UserFacingError

TEXT_SUFFIXES = frozenset({".txt", ".md", ".tex", ".csv"})
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
MAX_TEXT_BYTES = 50_000
MAX_IMAGE_BYTES = 8_000_000
MAX_FILES_PER_QUESTION = 4  # files attached to one question
MAX_FILE_TEXT_CHARS = 16_000  # characters of all the text files of one question together
MAX_NAME_CHARS = 80  # characters of a file name shown to the model
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
_BACKTICK_RUN = re.compile(r"`+")
TOO_MUCH_TEXT = (
    "Those files hold too much text for one question; I read up to {limit:,} characters "
    "of attached text in all."
)

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
    limit = size_limit(kind)
    if size > limit:
        raise UserFacingError(
            f"{name} is too big ({size:,} bytes); I read {kind} files up to {limit:,} bytes."
        )


def size_limit(kind: Kind) -> int:
    """Bytes a file of `kind` may have: checked against its declared size before the
    download, and against the bytes actually received while downloading."""
    return MAX_TEXT_BYTES if kind == "text" else MAX_IMAGE_BYTES


def check_attachments(files: Sequence[tuple[str, str | None, int]]) -> list[Kind]:
    """The kinds of the files `(name, content type, declared size)` of one question, or
    `UserFacingError`: too many files, a kind we do not read, a file too big, or more text
    than one question may carry. Uses only what Discord declares: nothing is downloaded."""
    if len(files) > MAX_FILES_PER_QUESTION:
        raise UserFacingError(
            f"Please attach at most {MAX_FILES_PER_QUESTION} files to one question."
        )
    kinds = [kind_of(name, content_type) for name, content_type, _ in files]
    for (name, _, size), kind in zip(files, kinds, strict=True):
        check_size(name, kind, size)
    text_bytes = sum(
        size for (_, _, size), kind in zip(files, kinds, strict=True) if kind == "text"
    )
    if text_bytes > 4 * MAX_FILE_TEXT_CHARS:  # UTF-8 takes at most 4 bytes a character
        raise UserFacingError(TOO_MUCH_TEXT.format(limit=MAX_FILE_TEXT_CHARS))
    return kinds


def safe_name(name: str) -> str:
    """A file name fit to quote in the prompt: letters, digits, `.`, `_`, `-` and spaces only
    (others become `_`), at most `MAX_NAME_CHARS` characters, never empty."""
    cleaned = _UNSAFE_NAME.sub("_", name).strip(" .")[:MAX_NAME_CHARS]
    return cleaned or "file"


def fence_for(body: str) -> str:
    """A backtick fence longer than any run of backticks in `body`, so nothing in it can close
    the quote (a fence is only closed by a run of the same character at least as long)."""
    longest = max((len(run) for run in _BACKTICK_RUN.findall(body)), default=0)
    return "`" * max(3, longest + 1)


def with_text_files(question: str, uploads: tuple[Upload, ...]) -> str:
    """The question with each text file's contents appended as a fenced block, under its
    sanitised name; `UserFacingError` when the files hold more than `MAX_FILE_TEXT_CHARS`."""
    parts = [question]
    total = 0
    for upload in uploads:
        if upload.kind != "text":
            continue
        try:
            body = upload.data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise UserFacingError(f"{upload.name} is not UTF-8 text, so I can't read it.") from None
        total += len(body)
        if total > MAX_FILE_TEXT_CHARS:
            raise UserFacingError(TOO_MUCH_TEXT.format(limit=MAX_FILE_TEXT_CHARS))
        fence = fence_for(body)
        parts.append(f"[attached file {safe_name(upload.name)}]\n{fence}\n{body}\n{fence}")
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
