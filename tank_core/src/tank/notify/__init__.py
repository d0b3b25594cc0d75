"""Notifications: Tank's lifecycle hooks as Glance's notification events, delivered to
sinks.

:mod:`~tank.notify.events` builds the events as Glance sends them (``image.create``,
``image.upload``, ``image.member.update``, ... with Glance's payloads);
:mod:`~tank.notify.notifier` is the observer plugin that turns each hook call into
events; :mod:`~tank.notify.sink` is what a sink plugin subclasses (``log`` and
``webhook`` ship here, ``amqp`` in tank-notify-amqp). Events are built after the registry
has recorded the change they describe, and handed to the sinks without waiting for
delivery: a slow or dead receiver never holds up or fails a request.
"""

from tank.notify.events import Event
from tank.notify.sink import QueuedSink, Sink

__all__ = ["Event", "QueuedSink", "Sink"]
