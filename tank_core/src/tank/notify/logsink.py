"""The ``log`` sink: each event as one JSON line on the ``tank.notifications`` logger
(INFO events at INFO, ERROR events at ERROR)."""

from __future__ import annotations

import json
import logging
from typing import ClassVar

import attrs

from tank.config import one_of
from tank.notify.events import ERROR, Event
from tank.notify.sink import Sink

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


@attrs.frozen(kw_only=True)
class LogConfig:
    """``[notifications.log]``."""

    #: The logger events go to.
    logger: str = "tank.notifications"
    #: The level of INFO events (ERROR events are always logged at ERROR).
    level: str = attrs.field(default="info", validator=one_of(*LEVELS))


class LogSink(Sink):
    name: ClassVar[str] = "log"
    Config: ClassVar[type[LogConfig]] = LogConfig

    def __init__(self, config: LogConfig) -> None:
        super().__init__(config)
        self.logger = logging.getLogger(config.logger)
        self.level = LEVELS[config.level]

    def send(self, event: Event) -> None:
        level = logging.ERROR if event.priority == ERROR else self.level
        if self.logger.isEnabledFor(level):
            self.logger.log(level, "%s", json.dumps(event.message(), sort_keys=True))
