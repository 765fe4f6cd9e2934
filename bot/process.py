"""Process-wide set-up before serving: logging with every secret masked, and how the garbage
collector treats the start-up heap."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterable

log = logging.getLogger(__name__)

MASK = "[redacted]"
LOG_FORMAT = "[{asctime}] [{levelname:<8}] {name}: {message}"  # discord.py's own layout
QUIET_LOGGERS = ("httpx", "httpx2")  # one line per model request is noise


class RedactSecrets(logging.Filter):
    """Masks secret values in a record's message and traceback before it is written."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def setup_logging(level: str, secrets: Iterable[str]) -> None:
    """One stderr handler on the root logger, in discord.py's layout, with `secrets` masked.

    (The standard library's handler, not `discord.utils.setup_logging`, so that this module
    does not need discord; the format is the same.)
    """
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, "%Y-%m-%d %H:%M:%S", style="{"))
    handler.addFilter(RedactSecrets(secrets))
    root.addHandler(handler)
    root.setLevel(logging.getLevelName(level))
    if level != "DEBUG":
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def tune_garbage_collector() -> int:
    """Move every object alive now (imported modules, classes, schemas: they live as long as
    the process) to the collector's permanent generation (`gc.freeze()`), so that full
    collections walk only what serving allocates; returns how many objects were frozen.

    `bench/bench_bot.py`: the worst collector pause at 8 model calls in flight went from
    ~350 to ~130 ms. Raising the young-generation threshold (`--experiment gc-young-50k`) cut
    collector time under a 500-question burst by ~80% too, but grew RSS by ~1.5 KB per user
    served, so CPython's thresholds stay. Call it once, after the imports and before serving;
    never in a long-lived test process.
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("%d start-up objects frozen out of the collector's walks", frozen)
    return frozen
