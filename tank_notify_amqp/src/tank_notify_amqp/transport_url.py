"""oslo.messaging's transport URL (``rabbit://user:pass@host:5672,host2:5672/vhost``)
as kombu connection URLs."""

from __future__ import annotations

import urllib.parse

import attrs

SCHEMES = ("rabbit", "amqp", "kombu")


@attrs.frozen
class Host:
    hostname: str
    port: int
    username: str | None = attrs.field(default=None, repr=False)
    password: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class TransportUrl:
    hosts: tuple[Host, ...]
    virtual_host: str

    def kombu_urls(self) -> list[str]:
        """One ``amqp://`` URL per host (kombu fails over between them in order)."""
        quote = urllib.parse.quote
        vhost = quote(self.virtual_host, safe="")
        out = []
        for h in self.hosts:
            auth = ""
            if h.username is not None:
                auth = quote(h.username, safe="")
                if h.password is not None:
                    auth += ":" + quote(h.password, safe="")
                auth += "@"
            host = f"[{h.hostname}]" if ":" in h.hostname else h.hostname
            out.append(f"amqp://{auth}{host}:{h.port}/{vhost}")
        return out

    def describe(self) -> str:
        """Where it connects, without credentials (for logs and errors)."""
        hosts = ",".join(f"{h.hostname}:{h.port}" for h in self.hosts)
        return f"rabbit://{hosts}/{self.virtual_host if self.virtual_host != '/' else ''}"


def parse(url: str) -> TransportUrl:
    """Parse oslo.messaging's form; ValueError (never showing the password) if bad."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(
            "must start with rabbit:// (oslo.messaging's transport URL), "
            f"got {scheme + '://' if sep else 'no scheme'}"  # never the rest: a password
        )
    netloc, _, path = rest.partition("/")
    path, _, _query = path.partition("?")
    if not netloc:
        raise ValueError("names no host")
    hosts = []
    for part in netloc.split(","):
        userinfo, at, hostport = part.rpartition("@")
        username = password = None
        if at:
            user, colon, secret = userinfo.partition(":")
            username = urllib.parse.unquote(user)
            password = urllib.parse.unquote(secret) if colon else None
        try:
            parsed = urllib.parse.urlsplit(f"//{hostport}")
            port = parsed.port or 5672
        except ValueError:
            raise ValueError(f"has a bad host or port: {hostport!r}") from None
        if not parsed.hostname:
            raise ValueError(f"has a host entry without a host name: {hostport!r}")
        hosts.append(Host(parsed.hostname, port, username, password))
    # oslo: the path is the virtual host, "/" (or nothing) the default one
    vhost = urllib.parse.unquote(path) if path else "/"
    return TransportUrl(tuple(hosts), vhost)
