"""Service logging: plain text or JSON lines, with the query and step a line is about.

A line's context (query id, step, task) comes from `log_context`, which the hub binds per
request and the node per task. Only that context and the message are written: messages
name queries, steps, counts and reasons, never a record value.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LOG_FORMAT_ENV = "CROSSTALLY_LOG_FORMAT"
CONTEXT_KEYS = ("query_id", "step", "task", "agency")

# One mutable dict per request or task: code that learns the query later (in a worker
# thread with a copy of the context) adds to the same dict, so every later line has it.
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "crosstally_log_context", default=None
)


@contextmanager
def log_context(**fields: object) -> Iterator[dict[str, str]]:
    """A fresh context for the lines logged inside the block (a request, a task)."""
    values = {k: str(v) for k, v in fields.items() if v is not None}
    token = _context.set(values)
    try:
        yield values
    finally:
        _context.reset(token)


def bind(**fields: object) -> None:
    """Add what is now known (the query of a task, say) to the current context."""
    values = _context.get()
    if values is None:
        values = {}
        _context.set(values)
    values.update({k: str(v) for k, v in fields.items() if v is not None})


def replace_context(**fields: object) -> None:
    """The thread moves to other work (the node's next task): drop the old context."""
    _context.set({k: str(v) for k, v in fields.items() if v is not None})


def current_context() -> dict[str, str]:
    return dict(_context.get() or {})


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.crosstally_context = current_context()
        return True


class JsonLines(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the line's context."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = getattr(record, "crosstally_context", None) or current_context()
        line.update({k: context[k] for k in CONTEXT_KEYS if k in context})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextLines(logging.Formatter):
    """The classic line, with `[query step]` after the logger name when they are known."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        context = getattr(record, "crosstally_context", None) or {}
        where = " ".join(context[k] for k in ("query_id", "step") if k in context)
        text = super().formatMessage(record)
        if where:
            head, _, rest = text.partition(": ")
            return f"{head} [{where}]: {rest}"
        return text


def setup_logging(level: str = "info", log_format: str = "text") -> None:
    """Configure the root logger (uvicorn's loggers propagate to it)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: use text or json")
    handler = logging.StreamHandler()
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonLines() if log_format == "json" else TextLines())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll drowns the log
