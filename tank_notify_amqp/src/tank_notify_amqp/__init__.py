"""Tank notification sink ``amqp``: Glance's events published to RabbitMQ as
oslo.messaging's ``messagingv2`` driver publishes them, so that an oslo.messaging
notification listener (Ceilometer's) receives Tank's events as it receives Glance's."""

from tank_notify_amqp.sink import AmqpConfig, AmqpSink

__all__ = ["AmqpConfig", "AmqpSink"]
