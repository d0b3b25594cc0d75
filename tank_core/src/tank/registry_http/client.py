"""``HttpRegistry``: the ``http`` registry kind, a client of any server speaking the Tank
Registry REST API (``tank-registry`` is the reference one).

Connections are pooled and every call has a connect and a read timeout. Retries (with
exponential backoff) follow one rule: a call is repeated only when repeating it cannot
change its outcome.

- Reads (GET) and the member PUTs (add or replace: the same body gives the same state)
  are retried after any connection failure.
- Creates, updates and deletes are retried only when the connection could not even be
  opened, so the registry never saw them. Once sent, an answer that is lost may hide a
  success: a repeated create would find its own image (Duplicate), a repeated delete a
  deleted image (NotFound), and a repeated conditional update (``expected_status``) the
  status it had just set (Conflict). Each would turn success into failure, and the
  service would kill an image whose upload had worked.
- A read timeout is never retried: a registry that took ``read_timeout`` once will
  likely do so again, and the caller is waiting.

A registry that cannot be reached or does not answer in time becomes
:class:`~tank.errors.StoreUnavailable` (503) naming its URL; one that answers something
that is not the Registry API (not JSON, wrong shape, unexpected status) becomes
StoreUnavailable saying it "answered badly". Errors the registry raised on purpose come
back as the same :mod:`tank.errors` class (see :mod:`tank.registry_http.wire`).
"""

from __future__ import annotations

import builtins
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from tank import errors
from tank.config import http_url, not_negative, positive
from tank.locations import redact
from tank.model import (
    Context,
    Image,
    ListQuery,
    Member,
    MemberStatus,
    Status,
    parse_image_id,
    parse_int,
)
from tank.quotas import QuotaCheck, check_resource
from tank.registry import Registry
from tank.registry_http import wire

T = TypeVar("T")
ADMIN = Context.admin()


class HttpRegistry(Registry):
    """A remote registry reached over HTTP; safe to share between threads."""

    kind = "http"

    @attrs.frozen(kw_only=True)
    class Config:
        """The ``[registry]`` section when ``url`` is set (or ``kind = "http"``)."""

        #: Base URL of the registry, e.g. ``http://127.0.0.1:9191``. No credentials.
        url: str = attrs.field(validator=http_url)
        #: Seconds to open a connection.
        connect_timeout: float = attrs.field(default=3.0, validator=positive)
        #: Seconds to wait for an answer once the request is sent.
        read_timeout: float = attrs.field(default=30.0, validator=positive)
        #: Extra attempts for calls that are safe to repeat (see the module docstring).
        retries: int = attrs.field(default=2, validator=not_negative)
        #: Seconds before the first retry; doubled for each next one.
        backoff: float = attrs.field(default=0.1, validator=not_negative)
        #: Connections kept open to the registry (concurrent calls beyond reuse new ones).
        pool_size: int = attrs.field(default=16, validator=positive)

    config: Config

    def __init__(self, config: Config, *, data_dir: Path) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        super().__init__(config, data_dir=data_dir)
        self.url = config.url.rstrip("/")
        self.where = redact(self.url)
        self._session = requests.Session()
        # Only what Tank's config says: no HTTP(S)_PROXY detour for identity headers and
        # locations, no .netrc credentials.
        self._session.trust_env = False
        self._session.headers.update({"Accept": "application/json", "User-Agent": "tank"})
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=config.pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def close(self) -> None:
        self._session.close()

    # --- Registry --------------------------------------------------------------------

    def create(self, image: Image, *, quota: QuotaCheck | None = None) -> Image:
        payload: dict[str, Any] = {"image": wire.image_to_json(image)}
        if quota is not None:
            payload["quota"] = quota.to_dict()
        body = self._call("POST", "/images", None, json=payload)
        return self._reply(body, "image", wire.image_from_json)

    def get(self, image_id: str, *, context: Context) -> Image:
        body = self._call("GET", _image_path(image_id), context)
        return self._reply(body, "image", wire.image_from_json)

    def update(
        self,
        image_id: str,
        changes: Mapping[str, Any],
        *,
        context: Context,
        purge_props: bool = False,
        expected_status: Status | None = None,
        quota: QuotaCheck | None = None,
    ) -> Image:
        payload = wire.update_to_json(changes, purge_props, expected_status, quota)
        body = self._call("PUT", _image_path(image_id), context, json=payload)
        return self._reply(body, "image", wire.image_from_json)

    def usage(self, owner: str) -> dict[str, int]:
        body = self._call("GET", "/usage/" + _quote(owner), None)
        return self._reply(body, "usage", wire.usage_from_json)

    def reserve(
        self,
        image_id: str,
        resource: str,
        wanted: int,
        *,
        minimum: int | None = None,
        limit: int | None = None,
    ) -> int:
        # setting a reservation to a number twice gives the same state: safe to repeat
        path = f"{_image_path(image_id)}/reservations/{check_resource(resource)}"
        payload = wire.reservation_to_json(wanted, minimum, limit)
        body = self._call("PUT", path, None, json=payload, idempotent=True)
        return self._reply(body, "granted", lambda v: parse_int("granted", v))

    def delete(self, image_id: str, *, context: Context) -> Image:
        body = self._call("DELETE", _image_path(image_id), context)
        return self._reply(body, "image", wire.image_from_json)

    def list(self, query: ListQuery, *, context: Context) -> builtins.list[Image]:
        params = wire.query_to_params(query)
        body = self._call("GET", "/images/detail", context, params=params)
        return self._reply(body, "images", wire.images_from_json)

    def hold_lease(self, name: str, holder: str, seconds: float) -> bool:
        # repeating it changes nothing for the same holder: safe to retry
        payload = {"holder": holder, "seconds": seconds}
        body = self._call("POST", _lease_path(name), ADMIN, json=payload, idempotent=True)
        return self._reply(body, "held", _boolean)

    def release_lease(self, name: str, holder: str) -> None:
        path = _lease_path(name) + "/release"
        self._call("POST", path, ADMIN, json={"holder": holder}, idempotent=True)

    def list_members(self, image_id: str, *, context: Context) -> builtins.list[Member]:
        body = self._call("GET", _image_path(image_id) + "/members", context)
        return self._reply(body, "members", wire.members_from_json)

    def add_member(
        self, image_id: str, member: str, *, can_share: bool = False, context: Context
    ) -> Member:
        path = _member_path(image_id, member)
        if not member:
            raise errors.ValidationError("member", "must not be empty")
        payload = {"member": {"can_share": can_share}}
        body = self._call("PUT", path, context, json=payload, idempotent=True)
        return self._reply(body, "member", wire.member_from_json)

    def remove_member(self, image_id: str, member: str, *, context: Context) -> None:
        path = _member_path(image_id, member)
        if not member:  # an empty path segment would name the member list instead
            raise errors.NotFound(f"'' is not a member of image {image_id}")
        self._call("DELETE", path, context)

    def replace_members(
        self, image_id: str, members: Iterable[tuple[str, bool]], *, context: Context
    ) -> builtins.list[Member]:
        payload = wire.memberships_to_json(members)
        path = _image_path(image_id) + "/members"
        body = self._call("PUT", path, context, json=payload, idempotent=True)
        return self._reply(body, "members", wire.members_from_json)

    def set_member_status(
        self, image_id: str, member: str, status: MemberStatus | str, *, context: Context
    ) -> Member:
        if not member:
            raise errors.NotFound(f"'' is not a member of image {image_id}")
        path = _member_path(image_id, member) + "/status"
        payload = {"status": str(status)}
        body = self._call("PUT", path, context, json=payload, idempotent=True)
        return self._reply(body, "member", wire.member_from_json)

    def shared_with(self, member: str, *, context: Context) -> builtins.list[Member]:
        if not member:
            return []
        body = self._call("GET", "/shared-images/" + _quote(member), context)
        return self._reply(body, "members", wire.members_from_json)

    # --- transport -----------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        ctx: Context | None,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """One call; the decoded JSON answer, or None for 204."""
        import requests

        if idempotent is None:
            idempotent = method == "GET"
        headers = wire.context_headers(ctx or Context.admin())
        timeout = (self.config.connect_timeout, self.config.read_timeout)
        attempt = 0
        while True:
            try:
                resp = self._session.request(
                    method,
                    self.url + path,
                    json=json,
                    params=params,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                )
                break
            except requests.RequestException as exc:
                unsent, problem = self._diagnose(exc)
                retry = (unsent or idempotent) and not isinstance(exc, requests.ReadTimeout)
                if not retry or attempt >= self.config.retries:
                    raise errors.StoreUnavailable(
                        f"registry at {self.url} {problem}"
                        + (f" (after {attempt + 1} attempts)" if attempt else "")
                    ) from None
            time.sleep(self.config.backoff * 2**attempt)
            attempt += 1
        return self._decode(resp)

    def _diagnose(self, exc: Exception) -> tuple[bool, str]:
        """Whether the request surely never reached the registry, and what went wrong."""
        import requests
        from urllib3.exceptions import NewConnectionError

        if isinstance(exc, requests.ConnectTimeout):
            return True, f"could not be reached within {self.config.connect_timeout} s"
        if isinstance(exc, requests.ReadTimeout):
            return False, f"did not answer within {self.config.read_timeout} s"
        if isinstance(exc, requests.ConnectionError):
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            errno = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
            detail = errno.group(0) if errno else type(reason or exc).__name__
            if isinstance(reason, NewConnectionError):
                return True, f"is unreachable: {detail}"
            return False, f"dropped the connection: {detail}"
        return False, f"answered badly: {type(exc).__name__}"

    def _decode(self, resp: Any) -> Any:
        status = resp.status_code
        if status == 204:
            return None
        if not (200 <= status < 300 or 400 <= status < 600):
            raise errors.StoreUnavailable(
                f"registry at {self.url} answered badly: unexpected status {status}"
            )
        try:
            body = resp.json()
        except (ValueError, RecursionError):
            raise errors.StoreUnavailable(
                f"registry at {self.url} answered badly: status {status} with a body that is "
                f"not JSON ({resp.headers.get('Content-Type', 'no Content-Type')})"
            ) from None
        if status >= 400:
            raise wire.error_from_json(body, status, self.url)
        return body

    def _reply(self, body: Any, key: str, parse: Callable[[Any], T]) -> T:
        """``parse(body[key])``; anything else than the Registry API is the registry's fault,
        never a 400 for tank-api's caller."""
        if not isinstance(body, dict) or key not in body:
            raise errors.StoreUnavailable(
                f"registry at {self.url} answered badly: no {key!r} in its answer"
            )
        try:
            return parse(body[key])
        except errors.ValidationError as exc:  # names the field
            raise errors.StoreUnavailable(f"registry at {self.url} answered badly: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise errors.StoreUnavailable(
                f"registry at {self.url} answered badly: {key}: {exc}"
            ) from None


def _quote(segment: str) -> str:
    """One path segment. Dots are escaped too: urllib3 drops ``..`` segments, which
    would turn removing a member named ``..`` into deleting the image."""
    return urllib.parse.quote(segment, safe="").replace(".", "%2E")


def _image_path(image_id: str) -> str:
    """Ids are UUIDs: anything else is NotFound here, as in every registry, and never
    becomes a path like ``/images/detail`` or ``/images/``."""
    try:
        return "/images/" + parse_image_id(image_id)
    except errors.ValidationError:
        raise errors.NotFound(f"image {str(image_id)[:80]!r} not found") from None


def _member_path(image_id: str, member: str) -> str:
    if not isinstance(member, str):
        raise errors.ValidationError("member", f"expected a string, got {member!r}")
    return f"{_image_path(image_id)}/members/{_quote(member)}"


def _lease_path(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise errors.ValidationError("name", "a lease needs a name")
    return f"/leases/{_quote(name)}"


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value
