"""Which hosts Tank may fetch from: the guard against server-side request forgery.

A location (http store) or an import URI (``web-download``) is a URL a user typed.
Without a guard, ``tank-api`` would fetch ``http://169.254.169.254/`` (cloud metadata) or
``http://127.0.0.1:5432/`` for anyone who may register or import an image.
:class:`HostPolicy` decides, for a host name and the addresses it resolves to, whether a
request may be made:

1. ``denied_hosts`` (names or networks) always refuse;
2. a non-empty ``allowed_hosts`` refuses every host that matches none of its entries
   (a name entry matches the host name; a network entry matches when *every* address
   the host resolves to lies in one of the listed networks);
3. unless ``allow_private_networks`` is set, a host with *any* loopback, link-local,
   private, unique-local, multicast, unspecified or otherwise non-public address is
   refused. Addresses embedded in IPv6 (``::ffff:10.0.0.1``, 6to4, NAT64) count as the
   IPv4 address they carry.

The policy is applied to every request, including each redirect hop, and to the very
addresses a connection is then opened to (see :mod:`tank.net.transport`), so a
name that resolves differently between check and connect (DNS rebinding) cannot slip
through. This module is pure standard library.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

import attrs

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
#: Where IPv6 forms carry an IPv4 address in their last 32 bits: NAT64 (RFC 6052), local
#: NAT64 (RFC 8215), SIIT's IPv4-translated (RFC 2765) and the old IPv4-compatible form.
_EMBEDDING = tuple(
    ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::ffff:0:0:0/96", "::/96")
)
#: All globally routable unicast IPv6 lies here; the rest (site-local fec0::/10 too) is not.
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


class HostRefused(Exception):
    """The policy refuses a host. Deliberately not an OSError: urllib3 must not retry it."""


def normalize_host(host: str) -> str:
    """Lower case, no brackets or trailing dot, IDNA-encoded: the form rules compare."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if host and not host.isascii():
        host = host.encode("idna").decode("ascii")
    return host


def parse_address(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is an IP literal, else None."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


@attrs.frozen
class HostRule:
    """One ``allowed_hosts`` / ``denied_hosts`` entry: a name, ``*.domain`` or a network."""

    text: str
    network: IPNetwork | None = None

    @classmethod
    def parse(cls, entry: str) -> HostRule:
        """Raise ValueError unless ``entry`` is a host name, ``*.domain``, IP or CIDR network."""
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"{entry!r} is not a host name, IP address or network")
        text = entry.strip()
        try:
            return cls(text, ipaddress.ip_network(text.strip("[]"), strict=False))
        except ValueError:
            pass
        try:
            name = normalize_host(text)
        except UnicodeError:
            raise ValueError(f"{entry!r} is not a valid host name") from None
        labels = name.removeprefix("*.").split(".")
        if not all(_LABEL.match(label) for label in labels):
            raise ValueError(f"{entry!r} is not a host name, *.domain, IP address or network")
        return cls(name)

    def matches_name(self, host: str) -> bool:
        if self.network is not None:
            return False
        if self.text.startswith("*."):
            return host.endswith(self.text[1:])
        return host == self.text

    def matches_address(self, address: IPAddress) -> bool:
        return self.network is not None and _unwrap(address) in self.network


def non_public_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public internet address (e.g. "a loopback"), or None."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return non_public_reason(embedded)
    if address.is_loopback:
        return "a loopback"
    if address.is_link_local:
        return "a link-local"
    if address.is_multicast:
        return "a multicast"
    if address.is_unspecified:
        return "an unspecified"
    if isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL:
        return "a unique-local"
    if address.is_private:
        return "a private"
    if not address.is_global:
        return "a reserved (non-public)"
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
        return "a reserved (non-public)"
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if int(address) > 1 and any(address in net for net in _EMBEDDING):  # not :: or ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _unwrap(address: IPAddress) -> IPAddress:
    return _embedded_ipv4(address) or address


@attrs.frozen
class HostPolicy:
    """The host rules of one user of the guard: an http store, or web-download imports
    (see the module docstring for their order)."""

    allow_private_networks: bool = False
    allowed: tuple[HostRule, ...] = ()
    denied: tuple[HostRule, ...] = ()
    #: Where refusals tell the operator to look, e.g. ``[stores.http]``.
    section: str = "[stores.http]"

    @classmethod
    def from_lists(
        cls,
        *,
        allow_private_networks: bool,
        allowed_hosts: Iterable[str] = (),
        denied_hosts: Iterable[str] = (),
        section: str = "[stores.http]",
    ) -> HostPolicy:
        return cls(
            allow_private_networks,
            tuple(HostRule.parse(e) for e in allowed_hosts),
            tuple(HostRule.parse(e) for e in denied_hosts),
            section,
        )

    @property
    def checks_addresses(self) -> bool:
        """Whether resolved addresses matter at all (else the name check is enough)."""
        rules = (*self.allowed, *self.denied)
        return not self.allow_private_networks or any(r.network is not None for r in rules)

    def check(self, host: str, addresses: Sequence[str] | None = None) -> None:
        """Raise :class:`HostRefused` unless a request to ``host`` is allowed.

        ``addresses`` are what ``host`` resolved to; None checks only what the name alone
        decides (an IP literal is its own address). Call again with the addresses before
        connecting.
        """
        name = normalize_host(host)
        literal = parse_address(name)
        if literal is not None:
            addresses = [name]
        for rule in self.denied:
            if rule.matches_name(name):
                raise HostRefused(f"host {name!r} is in denied_hosts of {self.section}")
        name_allowed = any(rule.matches_name(name) for rule in self.allowed)
        if self.allowed and not name_allowed and not any(r.network for r in self.allowed):
            raise self._not_allowed(name)
        if addresses is None:
            return
        parsed = [a for a in (parse_address(str(x)) for x in addresses) if a is not None]
        if not parsed:
            raise HostRefused(f"host {name!r} resolved to no usable address")
        subject = f"{literal} is" if literal is not None else f"host {name!r} resolves to"
        for address in parsed:
            if any(rule.matches_address(address) for rule in self.denied):
                raise HostRefused(f"{subject} an address listed in denied_hosts of {self.section}")
        if self.allowed and not name_allowed:
            if not all(any(r.matches_address(a) for r in self.allowed) for a in parsed):
                raise self._not_allowed(name)
        if self.allow_private_networks:
            return
        for address in parsed:
            reason = non_public_reason(address)
            if reason is not None:
                raise HostRefused(
                    f"{subject} {reason} address; fetching from private networks is disabled "
                    f"(set allow_private_networks = true in {self.section} to allow it)"
                )

    def _not_allowed(self, name: str) -> HostRefused:
        return HostRefused(f"host {name!r} is not in allowed_hosts of {self.section}")
