"""Images API v1 calls: metadata in ``x-image-meta-*`` headers, data in the same request.

Moved here unchanged in behaviour from the first client; :class:`tank.client.Client`
calls it when it speaks v1. The header format itself is :mod:`tank.client.wire`.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from tank.client.http import Http, segment
from tank.client.transfer import (
    Download,
    Progress,
    known_size,
    range_header,
    ranged_chunks,
    upload_body,
)
from tank.client.wire import (
    CREATE_FIELDS,
    META_PREFIX,
    PURGE_PROPS_HEADER,
    UPDATE_FIELDS,
    BriefImage,
    brief_from_json,
    header_value,
    image_from_headers,
    image_from_json,
    member_from_json,
    meta_headers,
    query_params,
)
from tank.errors import ValidationError
from tank.model import MAX_LIMIT, Image, Member, parse_image_id, parse_visibility
from tank.streams import DataSource

#: Fields only v2 has: refused with a message that says so.
_V2_ONLY_FIELDS = ("tags", "os_hidden")


class ImagesV1:
    """The Glance v1 calls of one :class:`~tank.client.http.Http`."""

    api = "v1"

    def __init__(self, http: Http) -> None:
        self.http = http

    # --- reading metadata ------------------------------------------------------------

    def get(self, image_id: str) -> Image:
        path = _image_path(image_id)
        resp = self.http.request("HEAD", path, subject=f"image {path.rsplit('/', 1)[1]}")
        return image_from_headers(resp.headers)

    def list(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        sort: Sequence[tuple[str, str]] | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> builtins.list[Image]:
        rows = self._page("/v1/images/detail", filters, sort_key, sort_dir, sort, limit, marker)
        return [image_from_json(row) for row in rows]

    def index(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        sort: Sequence[tuple[str, str]] | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> builtins.list[BriefImage]:
        rows = self._page("/v1/images", filters, sort_key, sort_dir, sort, limit, marker)
        return [brief_from_json(row) for row in rows]

    def iter_images(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        sort: Sequence[tuple[str, str]] | None = None,
        limit: int | None = None,
        marker: str | None = None,
        page_size: int = MAX_LIMIT,
    ) -> Iterator[Image]:
        sort_key, sort_dir = _one_sort(sort_key, sort_dir, sort)
        return _paged(self.list, limit, marker, page_size, filters, sort_key, sort_dir)

    def iter_index(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        sort: Sequence[tuple[str, str]] | None = None,
        limit: int | None = None,
        marker: str | None = None,
        page_size: int = MAX_LIMIT,
    ) -> Iterator[BriefImage]:
        sort_key, sort_dir = _one_sort(sort_key, sort_dir, sort)
        return _paged(self.index, limit, marker, page_size, filters, sort_key, sort_dir)

    def _page(
        self,
        path: str,
        filters: Mapping[str, Any] | None,
        sort_key: str | None,
        sort_dir: str | None,
        sort: Sequence[tuple[str, str]] | None,
        limit: int | None,
        marker: str | None,
    ) -> builtins.list[Any]:
        sort_key, sort_dir = _one_sort(sort_key, sort_dir, sort)
        params = query_params(filters)
        for key, value in (
            ("sort_key", sort_key),
            ("sort_dir", sort_dir),
            ("limit", limit),
            ("marker", marker),
        ):
            if value is not None:
                params[key] = str(value)
        resp = self.http.request("GET", path, params=params)
        return self.http.json(resp, "images", list)  # type: ignore[no-any-return]

    # --- writing ---------------------------------------------------------------------

    def create(
        self,
        data: DataSource | None = None,
        *,
        size: int | None = None,
        checksum: str | None = None,
        store: str | None = None,
        location: str | None = None,
        progress: Progress | None = None,
        **fields: Any,
    ) -> Image:
        headers = meta_headers(_v1_fields(fields), allowed=CREATE_FIELDS)
        if store is not None:
            headers[META_PREFIX + "store"] = header_value("store", store)
        if location is not None:
            headers[META_PREFIX + "location"] = header_value("location", location)
        return self._send_image("POST", "/v1/images", headers, data, size, checksum, progress)

    def upload(
        self,
        image_id: str,
        data: DataSource,
        *,
        size: int | None = None,
        checksum: str | None = None,
        store: str | None = None,
        progress: Progress | None = None,
        **fields: Any,
    ) -> Image:
        headers = meta_headers(_v1_fields(fields), allowed=UPDATE_FIELDS)
        headers[PURGE_PROPS_HEADER] = b"false"
        if store is not None:
            headers[META_PREFIX + "store"] = header_value("store", store)
        path = _image_path(image_id)
        return self._send_image("PUT", path, headers, data, size, checksum, progress)

    def update(self, image_id: str, *, purge_props: bool = False, **fields: Any) -> Image:
        headers = meta_headers(_v1_fields(fields), allowed=UPDATE_FIELDS)
        headers[PURGE_PROPS_HEADER] = b"true" if purge_props else b"false"
        return self._send_image("PUT", _image_path(image_id), headers, None, None, None, None)

    def delete(self, image_id: str) -> None:
        self.http.request("DELETE", _image_path(image_id))

    def _send_image(
        self,
        method: str,
        path: str,
        headers: dict[str, bytes],
        data: DataSource | None,
        size: int | None,
        checksum: str | None,
        progress: Progress | None,
    ) -> Image:
        body: Any = None
        if data is not None:
            if size is None:
                size = known_size(data)
            headers["Content-Type"] = b"application/octet-stream"
            body = upload_body(data, size, self.http.chunk_size, progress)
        if size is not None:
            headers[META_PREFIX + "size"] = str(size).encode()
        if checksum is not None:
            headers[META_PREFIX + "checksum"] = checksum.encode()
        resp = self.http.request(method, path, headers=headers, data=body)
        return image_from_json(self.http.json(resp, "image", dict))

    # --- data ------------------------------------------------------------------------

    def download(
        self, image_id: str, *, offset: int = 0, length: int | None = None, verify: bool = True
    ) -> Download:
        headers = range_header(offset, length)
        resp = self.http.request("GET", _image_path(image_id), headers=headers, stream=True)
        try:
            image = image_from_headers(resp.headers)
            size = int(resp.headers["Content-Length"]) if "Content-Length" in resp.headers else None
        except Exception:
            resp.close()
            raise
        chunks, size = ranged_chunks(self.http.stream(resp), resp.status_code, size, offset, length)
        ranged = bool(headers)
        return Download(image, size, chunks, close=resp.close, verify=verify and not ranged)

    # --- members ---------------------------------------------------------------------

    def members(self, image_id: str) -> builtins.list[Member]:
        image_id = parse_image_id(image_id)
        resp = self.http.request("GET", _image_path(image_id) + "/members")
        rows = self.http.json(resp, "members", list)
        return [member_from_json(row, image_id=image_id) for row in rows]

    def add_member(self, image_id: str, member: str, *, can_share: bool | None = None) -> None:
        body = None if can_share is None else {"member": {"can_share": bool(can_share)}}
        self.http.request("PUT", _member_path(image_id, member), json=body)

    def remove_member(self, image_id: str, member: str) -> None:
        self.http.request("DELETE", _member_path(image_id, member))

    def replace_members(self, image_id: str, members: Iterable[tuple[str, bool]]) -> None:
        memberships = [{"member_id": name, "can_share": can_share} for name, can_share in members]
        path = _image_path(image_id) + "/members"
        self.http.request("PUT", path, json={"memberships": memberships})

    def shared_images(self, member: str) -> builtins.list[Member]:
        resp = self.http.request("GET", "/v1/shared-images/" + segment("member", member))
        rows = self.http.json(resp, "shared_images", list)
        return [member_from_json(row, member=member) for row in rows]


def _v1_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``visibility`` as v1's ``is_public`` (public, or shared: v1 has nothing else)."""
    out = dict(fields)
    for name in _V2_ONLY_FIELDS:
        if name in out:
            raise ValidationError(name, "not part of Images API v1 (use v2)")
    if "visibility" in out:
        visibility = parse_visibility(out.pop("visibility"))
        if visibility.value not in ("public", "shared"):
            raise ValidationError(
                "visibility", f"Images API v1 has only public and shared images, not {visibility}"
            )
        out["is_public"] = visibility.value == "public"
    return out


def _one_sort(
    sort_key: str | None, sort_dir: str | None, sort: Sequence[tuple[str, str]] | None
) -> tuple[str | None, str | None]:
    if not sort:
        return sort_key, sort_dir
    if sort_key is not None or sort_dir is not None:
        raise ValidationError("sort", "give either sort or sort_key/sort_dir, not both")
    if len(sort) != 1:
        raise ValidationError("sort", "Images API v1 sorts by one key only")
    return sort[0][0], sort[0][1]


def _image_path(image_id: str) -> str:
    return "/v1/images/" + parse_image_id(image_id)


def _member_path(image_id: str, member: str) -> str:
    return f"{_image_path(image_id)}/members/{segment('member', member)}"


T = TypeVar("T", Image, BriefImage)


def _paged(
    fetch: Callable[..., builtins.list[T]],
    limit: int | None,
    marker: str | None,
    page_size: int,
    filters: Mapping[str, Any] | None,
    sort_key: str | None,
    sort_dir: str | None,
) -> Iterator[T]:
    page_size = max(1, min(page_size, MAX_LIMIT))
    seen = 0
    while limit is None or seen < limit:
        want = page_size if limit is None else min(page_size, limit - seen)
        page = fetch(
            filters=filters, sort_key=sort_key, sort_dir=sort_dir, limit=want, marker=marker
        )
        yield from page
        seen += len(page)
        if len(page) < want:
            return
        marker = page[-1].id
