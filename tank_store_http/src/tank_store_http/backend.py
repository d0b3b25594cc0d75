"""The http store: image data that lives on a web server, read-only.

Users register ``http(s)://`` locations (``x-image-meta-location``); Tank streams them
on download and asks their size with HEAD. It never writes or deletes there: deleting
such an image deletes only its metadata. requests is imported on first use, so this
module (and ``tank stores``) loads without it.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

import attrs

from tank import errors
from tank.config import not_negative, positive
from tank.net.hosts import HostPolicy, HostRule
from tank.store import Backend, Capability, ReadResult, Writer
from tank_store_http.location import HttpLocation, location_example

if TYPE_CHECKING:
    import requests

    from tank_store_http.client import HttpClient

log = logging.getLogger(__name__)

READ_ONLY = "the http store is read-only; register http(s) locations with x-image-meta-location"


def _hosts(value: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str):  # in Python, not from TOML: it would become single letters
        raise TypeError("host lists must be lists of host names or networks, not a string")
    return tuple(value)


def _host_rules(instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for entry in value:
        try:
            HostRule.parse(entry)
        except ValueError as exc:
            raise ValueError(f"{attribute.name}: {exc}") from None


#: Size lookups running at once per store; more wait (within their deadline).
SIZE_LOOKUPS = 8


class HttpBackend(Backend):
    """Reads images from web servers; refuses hosts on private networks by default."""

    type_name = "http"
    schemes = ("http", "https")
    capabilities = frozenset({Capability.READ})
    location_example = location_example

    @attrs.frozen(kw_only=True)
    class Config:
        """``[stores.http]``; every key is optional."""

        #: Seconds to wait for a TCP/TLS connection.
        connect_timeout: float = attrs.field(default=10.0, validator=positive)
        #: Seconds to wait for each piece of data from the server.
        read_timeout: float = attrs.field(default=60.0, validator=positive)
        #: Seconds a size lookup (the HEAD when a location is registered) may take in
        #: all: a server trickling its answer a byte at a time cannot hold an API worker.
        size_timeout: float = attrs.field(default=30.0, validator=positive)
        #: Verify the server's TLS certificate. Leave on; use ca_bundle for private CAs.
        verify_tls: bool = True
        #: PEM file of CA certificates to trust instead of the system's.
        ca_bundle: str | None = None
        #: Redirects followed per request (https -> http is never followed).
        max_redirects: int = attrs.field(default=5, validator=not_negative)
        #: Allow loopback, link-local, private and other non-public addresses.
        allow_private_networks: bool = False
        #: If set, only these hosts: names, ``*.domain``, IP addresses or CIDR networks.
        allowed_hosts: tuple[str, ...] = attrs.field(
            default=(), converter=_hosts, validator=_host_rules
        )
        #: Never these hosts (same forms as allowed_hosts).
        denied_hosts: tuple[str, ...] = attrs.field(
            default=(), converter=_hosts, validator=_host_rules
        )

        def __attrs_post_init__(self) -> None:
            if self.ca_bundle is not None and not self.verify_tls:
                raise ValueError("ca_bundle is set but verify_tls is false: choose one")

    def __init__(self, config: Any, *, name: str | None = None) -> None:
        super().__init__(config, name=name)
        if importlib.util.find_spec("requests") is None:
            raise errors.BadStoreConfig(
                "the http store needs requests, which is not importable: "
                "pip install tank-store-http",
                store=self.name,
            )
        if config.ca_bundle is not None and not os.path.isfile(config.ca_bundle):
            raise errors.BadStoreConfig(
                f"ca_bundle {config.ca_bundle!r} is not a readable file", store=self.name
            )
        if not config.verify_tls:
            log.warning("store %s: TLS certificates are NOT verified (verify_tls = false)", name)
        self._lookups = concurrent.futures.ThreadPoolExecutor(
            SIZE_LOOKUPS, thread_name_prefix=f"tank-{self.name}-size"
        )
        self.policy = HostPolicy.from_lists(
            allow_private_networks=config.allow_private_networks,
            allowed_hosts=config.allowed_hosts,
            denied_hosts=config.denied_hosts,
            section=f"[stores.{self.name}]",
        )
        self._client_obj: HttpClient | None = None
        self._client_lock = threading.Lock()

    # --- read-only ------------------------------------------------------------------

    def open_writer(self, image_id: str, size: int | None) -> Writer:
        raise errors.ReadOnlyStore(READ_ONLY, store=self.name)

    # --- reading ----------------------------------------------------------------------

    def read(self, location: str, offset: int, length: int | None) -> ReadResult:
        loc = HttpLocation.parse(location)
        if length == 0:
            return ReadResult(size=0, total_size=self.size_of(location), chunks=iter(()))
        headers = {}
        if offset or length is not None:
            last = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{last}"
        client = self._client()
        response = client.request("GET", loc, headers, accept=frozenset({416}))
        try:
            total, skip, available = self._span(response, loc, offset, length)
            size = available if length is None else min(length, available)
            if size <= 0:
                response.close()
                return ReadResult(size=0, total_size=total, chunks=iter(()))
            if skip:
                log.debug("store %s: %s ignores Range; skipping %d bytes", self.name, loc, skip)
            from tank_store_http.client import ResponseChunks

            chunks = ResponseChunks(
                response, client, loc, skip=skip, size=size, chunk_size=self.read_chunk_size
            )
        except BaseException:
            response.close()
            raise
        return ReadResult(size=size, total_size=total, chunks=chunks)

    def _span(
        self, response: requests.Response, loc: HttpLocation, offset: int, length: int | None
    ) -> tuple[int, int, int]:
        """(total size, bytes to skip, bytes available from ``offset``) of a GET answer.
        A partial answer must cover all that was asked (clipped at the end): never short
        data."""
        from tank_store_http.client import content_length, content_range

        first, last, total = content_range(response)
        if response.status_code == 416:
            return (total if total is not None else self._size(loc)), 0, 0
        if response.status_code == 206:
            if first is None or last is None or not first <= offset <= last:
                raise errors.StoreError(
                    f"the server sent a partial answer for {loc} that does not start at "
                    f"byte {offset}",
                    store=self.name,
                    location=loc.redacted(),
                )
            if total is None:
                total = self._size(loc)
            end = total if length is None else min(total, offset + length)
            if last + 1 < end:
                raise errors.StoreError(
                    f"the server sent bytes {first}-{last} of {loc}, short of the "
                    f"{offset}-{end - 1} asked for",
                    store=self.name,
                    location=loc.redacted(),
                )
            return total, offset - first, last + 1 - offset
        total = content_length(response)
        if total is None:
            total = self._size(loc)
        return total, offset, max(total - offset, 0)

    def size_of(self, location: str) -> int:
        """The size, within ``size_timeout`` seconds in all. The lookup runs in a small
        pool of its own: past the deadline the caller gets StoreUnavailable while the
        lookup ends by itself (at the next ``read_timeout``), holding one pool thread."""
        loc = HttpLocation.parse(location)
        future = self._lookups.submit(self._size, loc)
        try:
            return future.result(timeout=self.config.size_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise errors.StoreUnavailable(
                f"{loc} did not tell its size within {self.config.size_timeout:g} s "
                f"(size_timeout of [stores.{self.name}])",
                store=self.name,
                location=loc.redacted(),
            ) from None

    def _size(self, loc: HttpLocation) -> int:
        """HEAD; if refused or lengthless, a one-byte ranged GET and its Content-Range."""
        from tank_store_http.client import content_length, content_range

        client = self._client()
        with client.request("HEAD", loc, accept=frozenset({403, 405, 501})) as response:
            size = content_length(response) if response.status_code < 300 else None
        if size is not None:
            return size
        with client.request("GET", loc, {"Range": "bytes=0-0"}, accept=frozenset({416})) as resp:
            total = content_range(resp)[2]
            if resp.status_code == 416:
                return total if total is not None else 0
            if resp.status_code != 206:
                total = content_length(resp)
        if total is None:
            raise errors.StoreError(
                f"the server does not tell the size of {loc}",
                store=self.name,
                location=loc.redacted(),
            )
        return total

    def close(self) -> None:
        self._lookups.shutdown(wait=False, cancel_futures=True)
        with self._client_lock:
            if self._client_obj is not None:
                self._client_obj.close()
                self._client_obj = None

    def _client(self) -> HttpClient:
        with self._client_lock:
            if self._client_obj is None:
                from tank_store_http.client import HttpClient

                self._client_obj = HttpClient(self.config, self.policy, self.name)
            return self._client_obj
