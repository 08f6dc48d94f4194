"""Log lines as text or JSON (LOG_FORMAT), each carrying the call id of the code that wrote it.

JSON lines hold time, level, logger, message, call_id (null outside a call) and, for errors, the traceback. Only
what the code chose to log is written: no request headers, no record attributes beyond these, so a secret can
reach a line only if a message formats one (tests check the configured secrets never do).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from typing import IO

from observability.context import current_call_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class CallIdFilter(logging.Filter):
    """Stamps each record with the call id of the greenlet that logged it (read when the line is made)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_id"):
            record.call_id = current_call_id()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "call_id": getattr(record, "call_id", None) or current_call_id(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


# Loggers whose DEBUG lines would carry secrets: peewee logs every query with its parameters (an organization's
# webhook secret, an encrypted SIP password). They stay at INFO whatever LOG_LEVEL says.
QUIET_LOGGERS = ("peewee",)


def configure_logging(level: str, fmt: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """The root logger writes to `stream` (stderr) in `fmt` ("text" or "json"); returns the handler it installed."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(CallIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.voxbridge = True  # ours: replaced when configured again; others' handlers (pytest's) are left
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "voxbridge", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    return handler
