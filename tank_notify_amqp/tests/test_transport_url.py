"""oslo.messaging transport URLs as kombu URLs; errors that never show the password."""

from __future__ import annotations

import pytest

from tank.config import build
from tank.errors import ConfigError
from tank_notify_amqp.sink import AmqpConfig
from tank_notify_amqp.transport_url import parse


def test_one_host_with_credentials_and_the_default_vhost() -> None:
    url = parse("rabbit://tank:p%40ss@mq.example:5673/")
    assert url.kombu_urls() == ["amqp://tank:p%40ss@mq.example:5673/%2F"]
    assert url.describe() == "rabbit://mq.example:5673/"


def test_several_hosts_a_vhost_and_the_default_port() -> None:
    url = parse("rabbit://a:x@h1,b:y@h2:5674/openstack")
    assert url.kombu_urls() == [
        "amqp://a:x@h1:5672/openstack",
        "amqp://b:y@h2:5674/openstack",
    ]
    assert "x" not in url.describe().replace("example", "")


@pytest.mark.parametrize(
    "value,message",
    [
        (
            "tank:secret-pw@host:5672/",
            "must start with rabbit:// (oslo.messaging's transport URL), got no scheme",
        ),
        ("http://tank:secret-pw@host/", "got http://"),
        ("rabbit:///", "names no host"),
        ("rabbit://tank:secret-pw@host:notaport/", "has a bad host or port: 'host:notaport'"),
    ],
)
def test_bad_urls_are_config_errors_without_the_password(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(AmqpConfig, {"transport_url": value}, where="tank.toml [notifications.amqp]")
    assert message in str(info.value)
    assert "secret-pw" not in str(info.value)
    assert str(info.value).startswith("tank.toml [notifications.amqp] transport_url")


def test_the_config_repr_hides_the_url() -> None:
    config = AmqpConfig(transport_url="rabbit://tank:secret-pw@host/")
    assert "secret-pw" not in repr(config)
