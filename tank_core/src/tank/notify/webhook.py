"""The ``webhook`` sink: each event POSTed as JSON to a URL, signed with HMAC-SHA256.

The body is the event's message (``message_id``, ``publisher_id``, ``event_type``,
``priority``, ``payload``, ``timestamp``: what an oslo.messaging listener receives).
With a ``secret``, ``X-Tank-Signature: sha256=<hex>`` is the HMAC-SHA256 of the exact
body bytes under that secret; a receiver recomputes it and compares in constant time.
``X-Tank-Event`` names the event type and ``X-Tank-Delivery`` its ``message_id`` (the
same on every retry, for de-duplication). Any 2xx is delivered; 408, 429 and 5xx
answers and connection failures are retried with backoff; other answers are final.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from typing import ClassVar

import attrs
import requests

from tank.config import http_url
from tank.notify.events import Event
from tank.notify.sink import Permanent, QueueConfig, QueuedSink

SIGNATURE_HEADER = "X-Tank-Signature"
RETRIED_STATUSES = frozenset({408, 429})


@attrs.frozen(kw_only=True)
class WebhookConfig(QueueConfig):
    """``[notifications.webhook]``."""

    #: Where events are POSTed (no credentials in it: the secret signs instead).
    url: str = attrs.field(validator=http_url)
    #: The HMAC-SHA256 key of the signature header; none: unsigned (not recommended).
    secret: str | None = attrs.field(default=None, repr=False)
    #: Verify the receiver's TLS certificate (https).
    verify_tls: bool = True


def sign(secret: str, body: bytes) -> str:
    """The ``X-Tank-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSink(QueuedSink):
    name: ClassVar[str] = "webhook"
    Config: ClassVar[type[WebhookConfig]] = WebhookConfig
    config: WebhookConfig

    def __init__(self, config: WebhookConfig) -> None:
        super().__init__(config)
        self._session: requests.Session | None = None

    def describe(self) -> str:
        parts = urllib.parse.urlsplit(self.config.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"

    def deliver(self, event: Event) -> None:
        body = json.dumps(event.message(), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "tank-notifications",
            "X-Tank-Event": event.event_type,
            "X-Tank-Delivery": event.message_id,
        }
        if self.config.secret:
            headers[SIGNATURE_HEADER] = sign(self.config.secret, body)
        if self._session is None:
            self._session = requests.Session()
        response = self._session.post(
            self.config.url,
            data=body,
            headers=headers,
            timeout=self.config.timeout,
            verify=self.config.verify_tls,
            allow_redirects=False,
        )
        response.close()
        status = response.status_code
        if 200 <= status < 300:
            return
        if status >= 500 or status in RETRIED_STATUSES:
            raise ConnectionError(f"the receiver answered {status}")
        raise Permanent(f"the receiver answered {status}")

    def forget(self) -> None:
        self._session = None

    def disconnect(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()
