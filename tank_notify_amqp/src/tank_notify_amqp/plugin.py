"""Registers the AMQP notification sink (``amqp``)."""

import tank
from tank.hookspecs import RegisterSink
from tank_notify_amqp.sink import AmqpSink


@tank.hookimpl
def tank_register_notification_sinks(register: RegisterSink) -> None:
    register(AmqpSink)
