"""Registers tank-core's built-in notification sinks, through the hook any plugin would
use."""

import tank
from tank.hookspecs import RegisterSink
from tank.notify.logsink import LogSink
from tank.notify.webhook import WebhookSink


@tank.hookimpl
def tank_register_notification_sinks(register: RegisterSink) -> None:
    register(LogSink)
    register(WebhookSink)
