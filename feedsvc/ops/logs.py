"""One logging set-up for the worker, `feedsvc serve` and gunicorn: readable text, or one JSON object a line.

``FEEDSVC_LOG_FORMAT=json`` writes every record as one JSON object on one line (for journald or Loki) with
the keys ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message``, ``process``, the extra
fields the code passed (``row``, ``issue``, ``kind``, ``smtp_reply`` …) and, for an exception, ``exception``
(the formatted traceback, one string). The default, ``text``, is one readable line per record; its message
already says what the extra fields hold. ``FEEDSVC_LOG_LEVEL`` (default INFO) sets the level. Libraries that
talk to developers rather than operators (Alembic's set-up lines) are kept to warnings.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["FORMATS", "JsonFormatter", "LogConfigError", "TextFormatter", "dict_config", "setup"]

FORMATS = ("text", "json")
QUIET = {"alembic": "WARNING"}  # loggers kept to warnings: what they say at INFO is not for an operator
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Every attribute a plain LogRecord has: anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class LogConfigError(ValueError):
    """FEEDSVC_LOG_FORMAT or FEEDSVC_LOG_LEVEL has a value this module does not know."""


def _utc_time(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields the caller passed with `extra=` (everything a plain LogRecord does not have)."""
    return {key: value for key, value in vars(record).items() if key not in _STANDARD and not key.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, process, the extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for key, value in extra_fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2026-01-22T03:00:00.123Z INFO feedsvc.outbox.worker: issue 398: sent 1200 …`` (times in UTC)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc_time(record)


def dict_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The logging.config.dictConfig dictionary for `env` (default os.environ): stderr, text or JSON.

    gunicorn takes it as ``logconfig_dict``: its error and access logs then go through the same handler.
    """
    env = os.environ if env is None else env
    form = env.get("FEEDSVC_LOG_FORMAT", "text").strip().lower() or "text"
    if form not in FORMATS:
        raise LogConfigError(f"FEEDSVC_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {form!r}")
    level = env.get("FEEDSVC_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if not isinstance(logging.getLevelName(level), int):
        raise LogConfigError(f"FEEDSVC_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
    formatter = JsonFormatter if form == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"feedsvc": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "feedsvc", "stream": "ext://sys.stderr"}
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            **{name: {"level": quiet} for name, quiet in QUIET.items()},
            # gunicorn's own loggers: no handlers of their own, so they reach the root's.
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
        },
    }


def setup(env: Mapping[str, str] | None = None) -> None:
    """Configure logging for this process from `env` (default os.environ); LogConfigError on a bad value."""
    logging.config.dictConfig(dict_config(env))
