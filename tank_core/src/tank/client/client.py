"""``tank.client.Client``: a remote tank-api, used as one would use the service in-process.

One :class:`requests.Session` per client pools connections. Calls take and return the
core model (:class:`~tank.model.Image`, :class:`~tank.model.Member`) and raise the core
error tree (see :mod:`tank.client.errors`). Bodies stream both ways.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import secrets
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

import requests

from tank.client import errors
from tank.client.transfer import Download, Progress, SourceError, known_size, upload_body
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
from tank.model import MAX_LIMIT, Image, Member, parse_image_id
from tank.streams import DEFAULT_CHUNK_SIZE, DataSource, slice_chunks

DEFAULT_URL = "http://127.0.0.1:9292"
#: (connect, read) seconds. The read timeout is the longest silence tolerated, e.g. while
#: the server syncs a large upload to disk before answering.
DEFAULT_TIMEOUT = (10.0, 300.0)
DEFAULT_PAGE_SIZE = MAX_LIMIT


class Client:
    """A tank-api (or any Glance v1 API) at ``url``.

    :param url: base URL, with or without the ``/v1`` suffix.
    :param timeout: seconds, or ``(connect, read)``.
    :param headers: sent with every request, e.g. ``{"X-Auth-Token": ...}`` or the
        identity headers a trusted front proxy would set (``X-Tenant-Id``, ``X-Roles``).
    :param session: a :class:`requests.Session` to use (TLS settings, adapters...).

    Thread use: calls keep no state on the client besides the connection pool, so one
    client may serve several threads.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError("url", f"expected http(s)://host[:port], got {url!r}")
        path = parts.path.rstrip("/")
        if path.endswith("/v1"):
            path = path[: -len("/v1")]
        # user:password@ in the URL becomes basic auth; self.url (shown in every message)
        # keeps only the host.
        netloc = parts.netloc.rpartition("@")[2]
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))
        self.timeout = timeout
        self.chunk_size = chunk_size
        self._session = session or requests.Session()
        self._session.headers.update(headers or {})
        if parts.username is not None:
            self._session.auth = (
                urllib.parse.unquote(parts.username),
                urllib.parse.unquote(parts.password or ""),
            )

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # --- images: reading metadata ------------------------------------------------------

    def get(self, image_id: str) -> Image:
        """The image's metadata (``HEAD /v1/images/<id>``)."""
        path = self._image_path(image_id)
        resp = self._request("HEAD", path, subject=f"image {path.rsplit('/', 1)[1]}")
        return image_from_headers(resp.headers)

    def list(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> builtins.list[Image]:
        """One page of images with all their metadata (``GET /v1/images/detail``).

        ``filters``: name, disk_format, container_format, status, size_min, size_max,
        is_public (None: public and private alike), ``property-KEY``, or
        ``properties={KEY: VALUE}``. ``marker`` is the id of the last image of the
        previous page. The server caps ``limit`` (1000).
        """
        rows = self._page("/v1/images/detail", filters, sort_key, sort_dir, limit, marker)
        return [image_from_json(row) for row in rows]

    def index(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> builtins.list[BriefImage]:
        """One page of the brief listing (``GET /v1/images``); arguments as :meth:`list`."""
        rows = self._page("/v1/images", filters, sort_key, sort_dir, limit, marker)
        return [brief_from_json(row) for row in rows]

    def iter_images(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Image]:
        """Every matching image (at most ``limit``), fetching pages as it goes."""
        return _paged(self.list, limit, marker, page_size, filters, sort_key, sort_dir)

    def iter_index(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_key: str | None = None,
        sort_dir: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[BriefImage]:
        """:meth:`iter_images` over the brief listing."""
        return _paged(self.index, limit, marker, page_size, filters, sort_key, sort_dir)

    def _page(
        self,
        path: str,
        filters: Mapping[str, Any] | None,
        sort_key: str | None,
        sort_dir: str | None,
        limit: int | None,
        marker: str | None,
    ) -> builtins.list[Any]:
        params = query_params(filters)
        for key, value in (
            ("sort_key", sort_key),
            ("sort_dir", sort_dir),
            ("limit", limit),
            ("marker", marker),
        ):
            if value is not None:
                params[key] = str(value)
        return self._json_key(self._request("GET", path, params=params), "images", list)  # type: ignore[no-any-return]

    # --- images: writing ---------------------------------------------------------------

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
        """Register an image (``POST /v1/images``) and upload ``data`` if given.

        ``fields``: id, name, disk_format, container_format, is_public, owner, min_ram,
        min_disk, protected, properties. ``data`` is a binary file or an iterable of
        bytes; its size is taken from the file when it can be, else it is sent chunked.
        ``size``/``checksum`` are verified by the server against what it received.
        ``location`` registers data already in a store instead of uploading. Without
        either, the image is queued; upload later with :meth:`upload`.
        """
        headers = meta_headers(fields, allowed=CREATE_FIELDS)
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
        """Upload data to a queued image (``PUT`` with a body; Conflict otherwise).

        ``fields`` change metadata in the same request; properties are merged (a PUT
        that uploads data never purges properties)."""
        headers = meta_headers(fields, allowed=UPDATE_FIELDS)
        headers[PURGE_PROPS_HEADER] = b"false"
        if store is not None:
            headers[META_PREFIX + "store"] = header_value("store", store)
        path = self._image_path(image_id)
        return self._send_image("PUT", path, headers, data, size, checksum, progress)

    def update(self, image_id: str, *, purge_props: bool = False, **fields: Any) -> Image:
        """Change metadata (``PUT /v1/images/<id>``). ``properties`` are merged into the
        existing ones, unless ``purge_props``: then they replace them all."""
        headers = meta_headers(fields, allowed=UPDATE_FIELDS)
        headers[PURGE_PROPS_HEADER] = b"true" if purge_props else b"false"
        return self._send_image("PUT", self._image_path(image_id), headers, None, None, None, None)

    def delete(self, image_id: str) -> None:
        """Delete the image and its data (Forbidden if protected)."""
        self._request("DELETE", self._image_path(image_id))

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
            body = upload_body(data, size, self.chunk_size, progress)
        if size is not None:
            headers[META_PREFIX + "size"] = str(size).encode()
        if checksum is not None:
            headers[META_PREFIX + "checksum"] = checksum.encode()
        resp = self._request(method, path, headers=headers, data=body)
        return image_from_json(self._json_key(resp, "image", dict))

    # --- images: data --------------------------------------------------------------------

    def download(
        self, image_id: str, *, offset: int = 0, length: int | None = None, verify: bool = True
    ) -> Download:
        """Stream the image's data (``GET /v1/images/<id>``), or the byte range
        ``offset``..``offset+length``. Iterate the result; close it if you stop early.
        A full download is checked against the image's size and checksum."""
        headers = {}
        ranged = offset > 0 or length is not None
        if ranged:
            if offset < 0 or (length is not None and length <= 0):
                raise ValidationError("range", "offset must be >= 0 and length > 0")
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        resp = self._request("GET", self._image_path(image_id), headers=headers, stream=True)
        try:
            image = image_from_headers(resp.headers)
            size = int(resp.headers["Content-Length"]) if "Content-Length" in resp.headers else None
        except Exception:
            resp.close()
            raise
        chunks = self._stream(resp)
        if ranged and resp.status_code == 200:
            # The whole image (Glance v1 ignores Range): cut out what was asked for.
            chunks = slice_chunks(chunks, offset, length)
            if size is not None:
                size = max(0, min(size - offset, size if length is None else length))
        return Download(image, size, chunks, close=resp.close, verify=verify and not ranged)

    def download_to(
        self,
        image_id: str,
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        verify: bool = True,
        progress: Progress | None = None,
    ) -> Image:
        """Write the image's data to a path or a binary file; returns its metadata.

        A path is written to a temporary file beside it and renamed at the end, so a
        failed download never leaves a partial image under the final name.
        """
        with self.download(image_id, verify=verify) as download:
            if not isinstance(dest, str | os.PathLike):
                _copy(download, dest, progress)
                return download.image
            target = Path(dest)
            try:
                fd, tmp = _create_beside(target)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(target)) from None
            try:
                with os.fdopen(fd, "wb") as out:
                    _copy(download, out, progress)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            return download.image

    # --- members ---------------------------------------------------------------------

    def members(self, image_id: str) -> builtins.list[Member]:
        """Who the image is shared with (``GET /v1/images/<id>/members``)."""
        image_id = parse_image_id(image_id)
        resp = self._request("GET", self._image_path(image_id) + "/members")
        rows = self._json_key(resp, "members", list)
        return [member_from_json(row, image_id=image_id) for row in rows]

    def add_member(self, image_id: str, member: str, *, can_share: bool | None = None) -> None:
        """Share the image with ``member`` (a tenant), or change its ``can_share``."""
        body = None if can_share is None else {"member": {"can_share": bool(can_share)}}
        self._request("PUT", self._member_path(image_id, member), json=body)

    def remove_member(self, image_id: str, member: str) -> None:
        self._request("DELETE", self._member_path(image_id, member))

    def replace_members(
        self, image_id: str, members: Iterable[str | tuple[str, bool] | Member]
    ) -> None:
        """Make ``members`` the whole member list (names, ``(name, can_share)`` or Member)."""
        memberships = []
        for entry in members:
            if isinstance(entry, Member):
                name, can_share = entry.member, entry.can_share
            elif isinstance(entry, str):
                name, can_share = entry, False
            else:
                name, can_share = entry
            memberships.append({"member_id": name, "can_share": bool(can_share)})
        path = self._image_path(image_id) + "/members"
        self._request("PUT", path, json={"memberships": memberships})

    def shared_images(self, member: str) -> builtins.list[Member]:
        """The images shared with ``member`` (``GET /v1/shared-images/<member>``)."""
        resp = self._request("GET", "/v1/shared-images/" + _segment("member", member))
        rows = self._json_key(resp, "shared_images", list)
        return [member_from_json(row, member=member) for row in rows]

    # --- plumbing --------------------------------------------------------------------

    @staticmethod
    def _image_path(image_id: str) -> str:
        return "/v1/images/" + parse_image_id(image_id)

    def _member_path(self, image_id: str, member: str) -> str:
        return f"{self._image_path(image_id)}/members/{_segment('member', member)}"

    def _request(
        self, method: str, path: str, *, subject: str = "", **kwargs: Any
    ) -> requests.Response:
        url = self.url + path
        try:
            # Glance v1 never redirects; following one would hand X-Auth-Token (which
            # requests keeps across hosts) to whoever the Location names.
            resp = self._session.request(
                method, url, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except SourceError as exc:
            raise exc.cause from None
        except requests.Timeout as exc:
            raise errors.ConnectionFailed(
                f"tank-api at {self.url} did not answer in time ({_reason(exc)})", url=self.url
            ) from exc
        except requests.ConnectionError as exc:
            raise errors.ConnectionFailed(
                f"cannot reach tank-api at {self.url}: {_reason(exc)}", url=self.url
            ) from exc
        except requests.RequestException as exc:
            raise errors.ConnectionFailed(
                f"request to tank-api at {self.url} failed: {_reason(exc)}", url=self.url
            ) from exc
        if resp.status_code >= 300:  # a redirect too: see above
            try:
                body = None if method == "HEAD" else resp.json()
            except ValueError:
                body = None
            finally:
                resp.close()
            raise errors.error_for(
                resp.status_code,
                body,
                method=method,
                url=url,
                reason=resp.reason or "",
                subject=subject,
            )
        return resp

    def _stream(self, resp: requests.Response) -> Iterator[bytes]:
        try:
            yield from resp.iter_content(self.chunk_size)
        except requests.RequestException as exc:
            raise errors.ConnectionFailed(
                f"download from tank-api at {self.url} broke off: {_reason(exc)}", url=self.url
            ) from exc

    @staticmethod
    def _json_key(resp: requests.Response, key: str, kind: type) -> Any:
        try:
            value = resp.json()[key]
        except (ValueError, KeyError, TypeError):
            value = None
        if not isinstance(value, kind):
            raise errors.UnexpectedResponse(
                f"expected a JSON object with {key!r} from {resp.request.method} {resp.url}",
                status=resp.status_code,
                method=str(resp.request.method),
                url=resp.url,
            )
        return value


T = TypeVar("T", Image, BriefImage)


def _paged(
    fetch: Callable[..., list[T]],
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


def _copy(download: Download, out: IO[bytes], progress: Progress | None) -> None:
    for chunk in download:
        out.write(chunk)
        if progress is not None:
            progress(len(chunk))


def _segment(field: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, f"expected a non-empty string, got {value!r}")
    return urllib.parse.quote(value, safe="")


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, in a few words."""
    text = str(exc)
    for marker, words in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("timed out", "timed out"),
        ("Connection reset", "connection reset by the server"),
        ("IncompleteRead", "the server closed the connection early"),
        ("Connection aborted", "the server closed the connection"),
    ):
        if marker in text:
            return words
    return text


def _create_beside(target: Path) -> tuple[int, str]:
    """A new, uniquely named file beside ``target``: ``(fd, path)``. Unlike mkstemp's 0600
    it gets the mode any new file gets (0666 less the umask, applied by the kernel)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        path = str(target.parent / f".{target.name}.{secrets.token_hex(6)}")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent))
