"""Logging for the servers: standard error or a file, text or JSON lines.

:func:`setup` may be called again (SIGHUP): it replaces the handler it installed, so a
log file rotated away is reopened under its name and a new level or format applies.
Lines never carry a credential: the access log (:mod:`tank.web.app`) writes no header
and no query string.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

TEXT_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"
_installed: list[logging.Handler] = []


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, pid, message, and
    the access-log fields of an access-log record at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            doc.update(access)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def setup(level: str, log_file: str | None = None, log_format: str = "text") -> None:
    """Log at ``level`` to ``log_file`` (appended to; None: standard error) as ``text``
    or ``json``. OSError if the file cannot be opened (the previous handler stays)."""
    handler: logging.Handler
    if log_file:
        handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in _installed:
        root.removeHandler(old)
        old.close()
    _installed[:] = [handler]
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # 8 lines of noise
