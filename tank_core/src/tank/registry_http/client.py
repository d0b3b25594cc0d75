"""``HttpRegistry``: the ``http`` registry kind, a client of a remote tank-registry.

Connections are pooled; every call has a timeout. Only reads are retried (with backoff):
a create or update whose answer was lost may have happened, and retrying it would turn
success into a Duplicate or a Conflict. A registry that is down or too slow becomes
:class:`~tank.errors.StoreUnavailable` naming the URL; a garbled answer becomes
StoreUnavailable too, saying the registry answered badly.
"""

from __future__ import annotations

import builtins
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from tank import errors
from tank.config import positive
from tank.model import Context, Image, ListQuery, Member, Status
from tank.registry import Registry
from tank.registry_http import wire


@attrs.frozen(kw_only=True)
class HttpRegistryConfig:
    url: str = attrs.field()
    connect_timeout: float = attrs.field(default=3.0, validator=positive)
    timeout: float = attrs.field(default=30.0, validator=positive)
    #: Attempts for reads (GET) when the registry cannot be reached.
    retries: int = attrs.field(default=3, validator=positive)
    pool_size: int = attrs.field(default=16, validator=positive)

    @url.validator
    def _http(self, attribute: Any, value: str) -> None:
        if urllib.parse.urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"url must be an http(s) URL, got {value!r}")


class HttpRegistry(Registry):
    kind = "http"
    Config = HttpRegistryConfig

    def __init__(self, config: HttpRegistryConfig, *, data_dir: Path) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        super().__init__(config, data_dir=data_dir)
        self.url = config.url.rstrip("/")
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=config.pool_size, pool_maxsize=config.pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def close(self) -> None:
        self._session.close()

    # --- transport -----------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        ctx: Context | None = None,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        import requests

        attempts = self.config.retries if method == "GET" else 1
        headers = wire.context_headers(ctx or Context.admin())
        for attempt in range(attempts):
            try:
                resp = self._session.request(
                    method,
                    self.url + path,
                    json=json,
                    params=params,
                    headers=headers,
                    timeout=(self.config.connect_timeout, self.config.timeout),
                )
                break
            except requests.Timeout:
                if attempt + 1 == attempts:
                    raise errors.StoreUnavailable(
                        f"registry at {self.url} did not answer within {self.config.timeout} s"
                    ) from None
            except requests.RequestException as exc:
                if attempt + 1 == attempts:
                    raise errors.StoreUnavailable(
                        f"registry at {self.url} is unreachable: {type(exc).__name__}"
                    ) from None
            time.sleep(0.1 * 2**attempt)
        if resp.status_code == 204:
            return None
        try:
            body = resp.json()
        except ValueError:
            raise errors.StoreUnavailable(
                f"registry at {self.url} answered {resp.status_code} with a body that is not JSON"
            ) from None
        if resp.status_code >= 400:
            raise wire.error_from_json(body, resp.status_code, self.url)
        return body

    def _key(self, body: Any, key: str) -> Any:
        if not isinstance(body, dict) or key not in body:
            raise errors.StoreUnavailable(f"registry at {self.url} answered without {key!r}")
        return body[key]

    def _image(self, body: Any) -> Image:
        try:
            return wire.image_from_json(self._key(body, "image"))
        except errors.ValidationError as exc:
            raise errors.StoreUnavailable(
                f"registry at {self.url} sent a bad image: {exc}"
            ) from None

    @staticmethod
    def _id(image_id: str) -> str:
        return "/images/" + urllib.parse.quote(image_id, safe="")

    # --- Registry --------------------------------------------------------------------

    def create(self, image: Image) -> Image:
        return self._image(self._call("POST", "/images", json={"image": wire.image_to_json(image)}))

    def get(self, image_id: str, *, context: Context) -> Image:
        return self._image(self._call("GET", self._id(image_id), context))

    def update(
        self,
        image_id: str,
        changes: Mapping[str, Any],
        *,
        context: Context,
        purge_props: bool = False,
        expected_status: Status | None = None,
    ) -> Image:
        body = {
            "changes": {k: (v.value if isinstance(v, Status) else v) for k, v in changes.items()},
            "purge_props": purge_props,
            "expected_status": None if expected_status is None else expected_status.value,
        }
        return self._image(self._call("PUT", self._id(image_id), context, json=body))

    def delete(self, image_id: str, *, context: Context) -> Image:
        return self._image(self._call("DELETE", self._id(image_id), context))

    def list(self, query: ListQuery, *, context: Context) -> builtins.list[Image]:
        params = {k: _param(v) for k, v in query.filters.items()}
        params.update(sort_key=query.sort_key, sort_dir=query.sort_dir, limit=str(query.limit))
        if query.marker:
            params["marker"] = query.marker
        rows = self._key(self._call("GET", "/images/detail", context, params=params), "images")
        return [wire.image_from_json(row) for row in rows]

    def list_members(self, image_id: str, *, context: Context) -> builtins.list[Member]:
        body = self._call("GET", self._id(image_id) + "/members", context)
        return [wire.member_from_json(m) for m in self._key(body, "members")]

    def add_member(
        self, image_id: str, member: str, *, can_share: bool = False, context: Context
    ) -> Member:
        path = f"{self._id(image_id)}/members/{urllib.parse.quote(member, safe='')}"
        body = self._call("PUT", path, context, json={"can_share": can_share})
        return wire.member_from_json(self._key(body, "member"))

    def remove_member(self, image_id: str, member: str, *, context: Context) -> None:
        path = f"{self._id(image_id)}/members/{urllib.parse.quote(member, safe='')}"
        self._call("DELETE", path, context)

    def replace_members(
        self, image_id: str, members: Iterable[tuple[str, bool]], *, context: Context
    ) -> builtins.list[Member]:
        rows = [{"member_id": m, "can_share": c} for m, c in members]
        body = self._call(
            "PUT", self._id(image_id) + "/members", context, json={"memberships": rows}
        )
        return [wire.member_from_json(m) for m in self._key(body, "members")]

    def shared_with(self, member: str, *, context: Context) -> builtins.list[Member]:
        body = self._call("GET", "/shared-images/" + urllib.parse.quote(member, safe=""), context)
        return [wire.member_from_json(m) for m in self._key(body, "members")]


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Status):
        return value.value
    return str(value)
