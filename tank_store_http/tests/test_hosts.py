"""Server-side request forgery: what the http store refuses to fetch, and where it checks."""

from __future__ import annotations

import ipaddress
import uuid

import pytest

from tank import errors
from tank.net import hosts, transport
from tank.net.hosts import HostPolicy, HostRefused, HostRule, non_public_reason
from tank_store_http import HttpBackend


def make(**config: object) -> HttpBackend:
    return HttpBackend(HttpBackend.Config(**config), name="web")


@pytest.fixture
def image(server) -> str:
    name = f"{uuid.uuid4()}.img"
    (server.root / name).write_bytes(b"image bytes")
    return name


@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend 127.0.0.1 (only) is a public address, to stand in for a real web server."""
    real = hosts.non_public_reason

    def pretend(address: hosts.IPAddress) -> str | None:
        return None if str(address) == "127.0.0.1" else real(address)

    monkeypatch.setattr(hosts, "non_public_reason", pretend)


# --- the default refuses internal addresses, before connecting ------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "localhost",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "[fe80::1]",
        "[fd00::1]",
        "[::ffff:127.0.0.1]",
        "0.0.0.0",
        "224.0.0.1",
    ],
)
def test_default_refuses_internal_hosts(server, image, host: str) -> None:
    store = make()
    url = f"http://{host}:{server.port}/files/{image}"
    server.hits.clear()
    with pytest.raises(errors.Forbidden, match="allow_private_networks") as refused:
        store.get(url)
    assert "[stores.web]" in str(refused.value)
    with pytest.raises(errors.Forbidden):
        store.get_size(url)
    assert server.hits == []


def test_redirect_to_a_private_host_is_refused(server, image, loopback_is_public) -> None:
    store = make()
    assert store.get_size(server.url(f"files/{image}")) == 11  # "public" origin is allowed
    for target in (
        f"http://127.0.0.2:{server.port}/files/{image}",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
    ):
        server.hits.clear()
        with pytest.raises(errors.Forbidden, match="redirected to"):
            store.get(server.url(f"to?url={target}"))
        assert server.paths() == ["/to"]


def test_connection_goes_to_the_checked_address(server, image, monkeypatch, loopback_is_public):
    """The address that passed the check is the one connected to: no second DNS answer."""
    answers = {"mirror.test": ["127.0.0.1"], "rebind.test": ["127.0.0.1", "10.0.0.8"]}
    resolved: list[str] = []

    def fake_resolve(host: str, port: int) -> list[str]:
        resolved.append(host)
        return answers[host]

    monkeypatch.setattr(transport, "resolve", fake_resolve)
    store = make()
    assert store.get_size(f"http://mirror.test:{server.port}/files/{image}") == 11
    assert resolved == ["mirror.test"]  # the system resolver knows no mirror.test
    with pytest.raises(errors.Forbidden, match=r"'rebind\.test' resolves to a private"):
        store.get_size(f"http://rebind.test:{server.port}/files/{image}")


def test_proxy_gets_only_checked_targets(server, image, monkeypatch) -> None:
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{server.port}")
    store = make()
    server.hits.clear()
    with pytest.raises(errors.Forbidden):
        store.get_size(f"http://10.0.0.8/files/{image}")
    assert server.hits == []
    # A public target is handed to the proxy (here the test server, answering as one).
    assert store.get_size(f"http://93.184.216.34/files/{image}") == 11
    assert [h.proxied for h in server.hits] == [True]


# --- allowed_hosts and denied_hosts -----------------------------------------------------------


def test_denied_hosts_apply_to_every_hop(server, image) -> None:
    store = make(allow_private_networks=True, denied_hosts=["localhost"])
    assert store.get_size(server.url(f"files/{image}")) == 11
    server.hits.clear()
    with pytest.raises(errors.Forbidden, match="denied_hosts"):
        store.get(server.url(f"to?url={server.url(f'files/{image}', host='localhost')}"))
    assert server.paths() == ["/to"]
    store = make(allow_private_networks=True, denied_hosts=["127.0.0.0/8"])
    with pytest.raises(errors.Forbidden, match="denied_hosts"):
        store.get_size(server.url(f"files/{image}", host="localhost"))


def test_allowed_hosts_limit_the_hosts(server, image) -> None:
    by_name = make(allow_private_networks=True, allowed_hosts=["localhost"])
    assert by_name.get_size(server.url(f"files/{image}", host="localhost")) == 11
    with pytest.raises(errors.Forbidden, match="not in allowed_hosts"):
        by_name.get_size(server.url(f"files/{image}"))  # 127.0.0.1 is not the name
    by_network = make(allow_private_networks=True, allowed_hosts=["127.0.0.0/8"])
    assert by_network.get_size(server.url(f"files/{image}", host="localhost")) == 11
    elsewhere = make(allow_private_networks=True, allowed_hosts=["192.0.2.0/24"])
    with pytest.raises(errors.Forbidden, match="not in allowed_hosts"):
        elsewhere.get_size(server.url(f"files/{image}", host="localhost"))


def test_allowed_hosts_do_not_open_private_networks(server, image) -> None:
    store = make(allowed_hosts=["127.0.0.1"])
    with pytest.raises(errors.Forbidden, match="loopback"):
        store.get_size(server.url(f"files/{image}"))


# --- the policy itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address,reason",
    [
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
        ("127.0.0.1", "a loopback"),
        ("::1", "a loopback"),
        ("10.0.0.1", "a private"),
        ("172.31.255.1", "a private"),
        ("192.168.0.1", "a private"),
        ("169.254.169.254", "a link-local"),
        ("fe80::1", "a link-local"),
        ("fd12:3456::1", "a unique-local"),
        ("224.0.0.251", "a multicast"),
        ("ff02::1", "a multicast"),
        ("0.0.0.0", "an unspecified"),
        ("::", "an unspecified"),
        ("100.64.0.1", "a reserved (non-public)"),
        ("::ffff:10.0.0.1", "a private"),  # IPv4-mapped
        ("2002:7f00:1::1", "a loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "a link-local"),  # NAT64 of 169.254.169.254
        ("64:ff9b:1::7f00:1", "a loopback"),  # local-use NAT64 (RFC 8215)
        ("64:ff9b:1::a9fe:a9fe", "a link-local"),
        ("::ffff:0:7f00:1", "a loopback"),  # SIIT IPv4-translated
        ("::127.0.0.1", "a loopback"),  # IPv4-compatible (deprecated)
        ("::10.1.2.3", "a private"),
        ("fec0::1", "a reserved (non-public)"),  # site-local (deprecated)
        ("4000::1", "a reserved (non-public)"),  # outside global unicast 2000::/3
        ("64:ff9b::5db8:d822", None),  # NAT64 of a public address
    ],
)
def test_address_classes(address: str, reason: str | None) -> None:
    assert non_public_reason(ipaddress.ip_address(address)) == reason


def test_every_resolved_address_counts() -> None:
    policy = HostPolicy()
    policy.check("images.example.com", ["93.184.216.34"])
    with pytest.raises(HostRefused):
        policy.check("images.example.com", ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(HostRefused):
        policy.check("images.example.com", [])


def test_host_rules() -> None:
    wildcard = HostRule.parse("*.Example.COM.")
    assert wildcard.matches_name("cdn.example.com")
    assert not wildcard.matches_name("example.com")
    assert not wildcard.matches_name("badexample.com")
    assert HostRule.parse("192.0.2.0/24").matches_address(ipaddress.ip_address("::ffff:192.0.2.9"))
    for bad in ("", "exa mple.com", "-x.com", "http://x.com"):
        with pytest.raises(ValueError):
            HostRule.parse(bad)
