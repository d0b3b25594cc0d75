"""Images API v2 calls, as python-glanceclient and openstacksdk make them.

Metadata travels as JSON (``POST /v2/images``, JSON-patch ``PATCH``), data separately
(``PUT .../file``, ``PUT .../stage`` + ``POST .../import``). Downloads fetch the image
first, so the data can be checked against its ``checksum`` and multihash as it streams.
The JSON format itself is :mod:`tank.client.wire_v2`.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from tank.client import errors
from tank.client.http import Http, segment
from tank.client.transfer import (
    Download,
    Progress,
    known_size,
    range_header,
    ranged_chunks,
    upload_body,
)
from tank.client.wire import BriefImage
from tank.client.wire_v2 import (
    FAILED_IMPORT,
    IMPORT_TASK,
    IMPORTING_TO_STORES,
    PATCH_MEDIA_TYPE,
    StoreInfo,
    image_body,
    image_from_v2,
    list_params,
    member_from_v2,
    patch_ops,
    store_list,
    stores_from_v2,
)
from tank.errors import ValidationError
from tank.model import (
    MAX_LIMIT,
    Image,
    Member,
    Status,
    has_control,
    parse_image_id,
    parse_member_status,
)
from tank.streams import DataSource

#: Import methods Glance defines (the server says which it has enabled).
IMPORT_METHODS = ("glance-direct", "web-download", "copy-image")
_DONE = (Status.ACTIVE, Status.DEACTIVATED)


class ImagesV2:
    """The Glance v2 calls of one :class:`~tank.client.http.Http`."""

    api = "v2"

    def __init__(self, http: Http) -> None:
        self.http = http

    # --- reading metadata ------------------------------------------------------------

    def get(self, image_id: str) -> Image:
        return image_from_v2(self._view(image_id))

    def image_stores(self, image_id: str) -> tuple[str, ...]:
        """The stores holding the image's data (the view's ``stores``: unlike
        ``Image.stores``, which needs the locations, every reader sees them)."""
        return stores_from_v2(self._view(image_id))

    def _view(self, image_id: str) -> dict[str, Any]:
        resp = self.http.request("GET", _image_path(image_id))
        return self.http.json(resp, None, dict)  # type: ignore[no-any-return]

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
        params = list_params(filters, sort_key, sort_dir, sort, limit, marker)
        return self._page("?" + urllib.parse.urlencode(params))[0]

    def index(self, **kwargs: Any) -> builtins.list[BriefImage]:
        """v2 has no brief listing: the full one, cut down to v1's brief fields."""
        return [_brief(image) for image in self.list(**kwargs)]

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
        """Pages following the server's ``next`` links (its marker, filters and sort)."""
        page_size = max(1, min(page_size, MAX_LIMIT))
        first = page_size if limit is None else max(1, min(page_size, limit))
        params = list_params(filters, sort_key, sort_dir, sort, first, marker)
        query: str | None = "?" + urllib.parse.urlencode(params)
        seen = 0
        while query is not None and (limit is None or seen < limit):
            page, query = self._page(query)
            for image in page:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield image

    def iter_index(self, **kwargs: Any) -> Iterator[BriefImage]:
        return (_brief(image) for image in self.iter_images(**kwargs))

    def _page(self, query: str) -> tuple[builtins.list[Image], str | None]:
        """One page of ``/v2/images<query>`` and the query of the next page, if any.

        Only the query of a ``next`` link is used: it always names ``/v2/images`` of
        this server, whatever host or prefix the link itself carries."""
        resp = self.http.request("GET", "/v2/images" + query)
        body = self.http.json(resp, None, dict)
        rows = body.get("images")
        if not isinstance(rows, list):
            raise errors.UnexpectedResponse(
                f"expected a JSON object with 'images' from GET {resp.url}",
                status=resp.status_code,
                method="GET",
                url=resp.url,
            )
        next_link = body.get("next")
        next_query = None
        if isinstance(next_link, str) and next_link and rows:
            next_query = "?" + urllib.parse.urlsplit(next_link).query
        return [image_from_v2(row) for row in rows], next_query

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
        """``POST /v2/images``, then the data (``PUT .../file``) or the location.

        When the upload fails the image this call created is deleted again, so a
        failure leaves nothing behind."""
        if location is not None and data is not None:
            raise ValidationError("location", "give either data or a location, not both")
        if data is None and (size is not None or checksum is not None) and location is None:
            raise ValidationError("size", "size and checksum describe data: pass the data too")
        resp = self.http.request("POST", "/v2/images", json=image_body(fields))
        image = image_from_v2(self.http.json(resp, None, dict))
        if data is None and location is None:
            return image
        try:
            if location is not None:
                return self.add_location(image.id, location, checksum=checksum)
            assert data is not None
            return self.upload(
                image.id, data, size=size, checksum=checksum, store=store, progress=progress
            )
        except BaseException:
            self._discard(image)
            raise

    def _discard(self, image: Image) -> None:
        """Best effort: delete an image this client just created (unprotecting it first
        if it was created protected), keeping the error that made it useless."""
        with contextlib.suppress(Exception):
            if image.protected:
                self.update(image.id, protected=False)
            self.delete(image.id)

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
        """``PATCH`` the ``fields`` (if any), then ``PUT .../file`` the data.

        v2 uploads carry no checksum: ``checksum`` is checked here, and the last chunk
        is sent only if it matches, so the server never stores data the caller did not
        mean (the image stays queued)."""
        image_id = parse_image_id(image_id)
        if fields:
            self.update(image_id, **fields)
        self._put_data(image_id, "file", data, size, checksum, store, progress)
        return self.get(image_id)

    def stage(
        self,
        image_id: str,
        data: DataSource,
        *,
        size: int | None = None,
        checksum: str | None = None,
        progress: Progress | None = None,
    ) -> Image:
        """``PUT .../stage``: data for a later ``glance-direct`` import (status uploading)."""
        image_id = parse_image_id(image_id)
        self._put_data(image_id, "stage", data, size, checksum, None, progress)
        return self.get(image_id)

    def _put_data(
        self,
        image_id: str,
        where: str,
        data: DataSource,
        size: int | None,
        checksum: str | None,
        store: str | None,
        progress: Progress | None,
    ) -> None:
        if size is None:
            size = known_size(data)
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["x-openstack-image-size"] = str(size)
        if store is not None:
            headers["X-Image-Meta-Store"] = _name("store", store)
        body = upload_body(data, size, self.http.chunk_size, progress, expect_md5=checksum)
        self.http.request("PUT", f"{_image_path(image_id)}/{where}", headers=headers, data=body)

    def update(self, image_id: str, *, purge_props: bool = False, **fields: Any) -> Image:
        """``PATCH`` with a JSON patch: base attributes replaced, properties added (or
        replaced), tags replaced; ``purge_props`` removes the properties not given
        (the image is read first to know them)."""
        current = self.get(image_id) if purge_props else None
        ops = patch_ops(fields, current)
        resp = self.http.request(
            "PATCH",
            _image_path(image_id),
            data=_json_bytes(ops),
            headers={"Content-Type": PATCH_MEDIA_TYPE},
        )
        return image_from_v2(self.http.json(resp, None, dict))

    def delete(self, image_id: str) -> None:
        self.http.request("DELETE", _image_path(image_id))

    def add_location(
        self, image_id: str, url: str, *, checksum: str | None = None, **validation: str
    ) -> Image:
        """``POST .../locations`` (services and admins): data already in a store.
        ``checksum``/``os_hash_algo``/``os_hash_value`` are checked by the server."""
        data: dict[str, Any] = {"url": url}
        checks = {k: v for k, v in {"checksum": checksum, **validation}.items() if v is not None}
        if checks:
            data["validation_data"] = checks
        self.http.request("POST", _image_path(image_id) + "/locations", json=data)
        return self.get(image_id)

    def remove_from_store(self, image_id: str, store: str) -> None:
        """``DELETE /v2/stores/<store>/<id>``: drop one store's copy (admins; the image
        keeps its other locations, and an image's only copy cannot go this way)."""
        path = f"/v2/stores/{segment('store', store)}/{parse_image_id(image_id)}"
        self.http.request("DELETE", path)

    # --- tags and actions --------------------------------------------------------------

    def add_tag(self, image_id: str, tag: str) -> None:
        self.http.request("PUT", f"{_image_path(image_id)}/tags/{segment('tag', tag)}")

    def remove_tag(self, image_id: str, tag: str) -> None:
        self.http.request("DELETE", f"{_image_path(image_id)}/tags/{segment('tag', tag)}")

    def deactivate(self, image_id: str) -> None:
        self.http.request("POST", _image_path(image_id) + "/actions/deactivate")

    def reactivate(self, image_id: str) -> None:
        self.http.request("POST", _image_path(image_id) + "/actions/reactivate")

    # --- import ----------------------------------------------------------------------

    def import_image(
        self,
        image_id: str,
        method: str,
        *,
        uri: str | None = None,
        stores: Sequence[str] | None = None,
        all_stores: bool = False,
        all_stores_must_succeed: bool | None = None,
    ) -> Image:
        """``POST .../import`` (202): the server imports in the background; see
        :meth:`wait_for_import`."""
        if method not in IMPORT_METHODS:
            raise ValidationError("method", f"{method!r} is not one of {', '.join(IMPORT_METHODS)}")
        if (uri is not None) != (method == "web-download"):
            raise ValidationError("uri", "web-download needs a uri; other methods take none")
        if stores and all_stores:
            raise ValidationError("stores", "give either stores or all_stores, not both")
        if method == "copy-image" and not stores and not all_stores:
            raise ValidationError("stores", "copy-image needs stores or all_stores")
        body: dict[str, Any] = {"method": {"name": method}}
        if uri is not None:
            body["method"]["uri"] = uri
        if stores:
            body["stores"] = [_name("stores", s) for s in stores]
        if all_stores:
            body["all_stores"] = True
        if all_stores_must_succeed is not None:
            body["all_stores_must_succeed"] = bool(all_stores_must_succeed)
        image_id = parse_image_id(image_id)
        self.http.request("POST", _image_path(image_id) + "/import", json=body)
        return self.get(image_id)

    def wait_for_import(
        self,
        image_id: str,
        *,
        stores: Sequence[str] = (),
        timeout: float = 600.0,
        interval: float = 0.5,
    ) -> Image:
        """Poll until the import is over (no import task holds the image, it is not
        importing, no store is still being written) and return the image.

        Raises :class:`~tank.client.errors.ImportFailed` when the image did not end
        active (or deactivated), or one of ``stores`` does not hold its data; and when
        ``timeout`` seconds pass first (the import may still finish then)."""
        deadline = time.monotonic() + timeout
        while True:
            view = self._view(image_id)
            image = image_from_v2(view)
            props = image.properties
            failed = store_list(props.get(FAILED_IMPORT))
            running = (
                bool(props.get(IMPORT_TASK))
                or image.status is Status.IMPORTING
                or bool(store_list(props.get(IMPORTING_TO_STORES)))
            )
            if not running:
                noted = f" (failed stores: {', '.join(failed)})" if failed else ""
                if image.status not in _DONE:
                    raise errors.ImportFailed(
                        f"import of image {image.id} failed: its status is {image.status}{noted}",
                        image_id=image.id,
                        stores=failed,
                    )
                held = stores_from_v2(view)
                missing = tuple(s for s in stores if s not in held)
                if missing:
                    raise errors.ImportFailed(
                        f"image {image.id} is not in store(s) {', '.join(missing)}{noted}",
                        image_id=image.id,
                        stores=missing,
                    )
                return image
            if time.monotonic() >= deadline:
                raise errors.ImportFailed(
                    f"import of image {image.id} still running after {timeout:g} s "
                    f"(status {image.status}); it may yet finish",
                    image_id=image.id,
                )
            time.sleep(interval)

    def stores_info(self) -> builtins.list[StoreInfo]:
        """``GET /v2/info/stores``: the stores the server writes to, default flagged."""
        resp = self.http.request("GET", "/v2/info/stores")
        return [StoreInfo.from_json(row) for row in self.http.json(resp, "stores", list)]

    def import_methods(self) -> builtins.list[str]:
        """``GET /v2/info/import``: the import methods the server has enabled."""
        resp = self.http.request("GET", "/v2/info/import")
        value = self.http.json(resp, "import-methods", dict).get("value")
        if not isinstance(value, list):
            return []
        return [str(v) for v in value]

    # --- data ------------------------------------------------------------------------

    def download(
        self, image_id: str, *, offset: int = 0, length: int | None = None, verify: bool = True
    ) -> Download:
        """The image's record first (for the checks), then ``GET .../file``."""
        image = self.get(image_id)
        headers = range_header(offset, length)
        resp = self.http.request(
            "GET", _image_path(image.id) + "/file", headers=headers, stream=True
        )
        if resp.status_code == 204:
            resp.close()
            raise errors.NoData(
                f"image {image.id} has no data (status {image.status})",
                status=204,
                method="GET",
                url=resp.url,
            )
        try:
            size = int(resp.headers["Content-Length"]) if "Content-Length" in resp.headers else None
        except ValueError:
            resp.close()
            raise
        content_md5 = resp.headers.get("Content-MD5")
        chunks, size = ranged_chunks(self.http.stream(resp), resp.status_code, size, offset, length)
        ranged = bool(headers)
        return Download(
            image,
            size,
            chunks,
            close=resp.close,
            verify=verify and not ranged,
            content_md5=content_md5,
        )

    # --- members ---------------------------------------------------------------------

    def members(self, image_id: str) -> builtins.list[Member]:
        image_id = parse_image_id(image_id)
        resp = self.http.request("GET", _image_path(image_id) + "/members")
        return [
            member_from_v2(row, image_id=image_id) for row in self.http.json(resp, "members", list)
        ]

    def member(self, image_id: str, member: str) -> Member:
        image_id = parse_image_id(image_id)
        resp = self.http.request("GET", _member_path(image_id, member))
        return member_from_v2(self.http.json(resp, None, dict), image_id=image_id)

    def add_member(self, image_id: str, member: str, *, can_share: bool | None = None) -> Member:
        """``POST .../members``: the member starts ``pending`` until it accepts."""
        if can_share:
            raise errors.Unsupported("can_share", api="v2", hint="v2 members cannot share further")
        image_id = parse_image_id(image_id)
        segment("member", member)
        resp = self.http.request(
            "POST", _image_path(image_id) + "/members", json={"member": member}
        )
        return member_from_v2(self.http.json(resp, None, dict), image_id=image_id)

    def remove_member(self, image_id: str, member: str) -> None:
        self.http.request("DELETE", _member_path(image_id, member))

    def set_member_status(self, image_id: str, member: str, status: str) -> Member:
        """``PUT .../members/<member>``: the member's answer (pending/accepted/rejected)."""
        value = parse_member_status(status).value
        image_id = parse_image_id(image_id)
        resp = self.http.request("PUT", _member_path(image_id, member), json={"status": value})
        return member_from_v2(self.http.json(resp, None, dict), image_id=image_id)

    def replace_members(self, image_id: str, members: Iterable[tuple[str, bool]]) -> None:
        """v2 has no call for this: the members not wanted are removed and the new ones
        added, one request each (not atomic; members kept keep their status)."""
        wanted: dict[str, None] = {}
        for name, can_share in members:
            if can_share:
                raise errors.Unsupported(
                    "can_share", api="v2", hint="v2 members cannot share further"
                )
            wanted[name] = None
        current = {m.member for m in self.members(image_id)}
        for name in current - set(wanted):
            self.remove_member(image_id, name)
        for name in wanted:
            if name not in current:
                self.add_member(image_id, name)


def _brief(image: Image) -> BriefImage:
    return BriefImage(
        id=image.id,
        name=image.name,
        disk_format=image.disk_format,
        container_format=image.container_format,
        size=image.size,
        checksum=image.checksum,
    )


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def _name(field: str, value: Any) -> str:
    """A store name: a non-empty string fit for a header and a JSON body."""
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ValidationError(field, f"expected a store name, got {value!r}")
    if has_control(value):
        raise ValidationError(field, "a store name has no control characters")
    return value


def _image_path(image_id: str) -> str:
    return "/v2/images/" + parse_image_id(image_id)


def _member_path(image_id: str, member: str) -> str:
    return f"{_image_path(image_id)}/members/{segment('member', member)}"
