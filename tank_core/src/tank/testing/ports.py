"""A loopback port nothing listens on, for a server to start on or a client to fail on."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago (the kernel picked it).

    Another process may take it before you use it; for a server of your own, binding
    port 0 yourself is race-free.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
