"""The s3 store: image data as objects in one S3 bucket, through botocore.

Tank writes each image to ``s3://<bucket>/<image id>`` on the endpoint of the store
instance, with that instance's credentials: the location holds no endpoint and no
secret. It reads those locations and legacy Glance ones (``s3+https://...``), but only
when they point at the endpoint the store is configured for.

Uploads stream (:mod:`tank_store_s3.writer`); downloads are ranged GETs that resume
where they broke if the connection drops mid-stream (:mod:`tank_store_s3.reader`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

import attrs

from tank import errors
from tank.config import between, http_url, not_negative, one_of, positive
from tank.store import Backend, Capability, ItemKind, ReadResult, StoredItem, Writer, image_id_named
from tank_store_s3.client import (
    error_code,
    library_errors,
    make_client,
    translate,
)
from tank_store_s3.location import SCHEMES, S3Location, endpoint_address, location_example
from tank_store_s3.reader import open_read
from tank_store_s3.writer import MAX_PART_SIZE, MIN_PART_SIZE, S3Writer

log = logging.getLogger(__name__)

MiB = 1 << 20
ADDRESSING_STYLES = ("auto", "path", "virtual")
_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")


def _bucket_name(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not _BUCKET_NAME.fullmatch(value):
        raise ValueError(
            f"{attribute.name} must be a valid S3 bucket name: 3 to 255 letters, digits, "
            "'.', '_' or '-', starting and ending with a letter or digit"
        )


class S3Backend(Backend):
    """Stores images in an S3 bucket; reads ``s3://``, ``s3+http://``, ``s3+https://``."""

    type_name = "s3"
    schemes = SCHEMES
    capabilities = Backend.capabilities | {Capability.LIST}
    location_example = location_example

    @attrs.frozen(kw_only=True)
    class Config:
        """``[stores.s3]``: only ``bucket`` is required. Sizes are in bytes."""

        #: Bucket new images are written to (locations name their own bucket).
        bucket: str = attrs.field(validator=_bucket_name)
        #: S3 endpoint URL, e.g. ``https://rgw.example.com``; unset means AWS S3.
        #: No credentials in it: they go in access_key and secret_key.
        endpoint: str | None = attrs.field(default=None, validator=http_url)
        #: Access key id; leave it and secret_key unset to use the usual credential chain
        #: (environment, profile, instance role).
        access_key: str | None = None
        #: Secret key of access_key; take it from the environment.
        secret_key: str | None = attrs.field(default=None, repr=False)
        #: Region for signing; defaults to us-east-1 with an endpoint, else boto3's choice.
        region: str | None = None
        #: ``auto``, ``path`` (most S3-compatible servers) or ``virtual`` (bucket in host).
        addressing_style: str = attrs.field(default="auto", validator=one_of(*ADDRESSING_STYLES))
        #: Create ``bucket`` at start-up (or on first write) if it does not exist.
        create_bucket_on_put: bool = False
        #: Images announced at most this large go up in one PUT (buffered up to this size).
        large_object_size: int = attrs.field(default=16 * MiB, validator=not_negative)
        #: Part size of multipart uploads (grows for huge images to stay under 10,000 parts),
        #: from S3's smallest part (5 MiB) to its largest (5 GiB). The smallest by default:
        #: an upload holds (thread_pools + 1) parts, and 5 MiB parts went up as fast as
        #: 8 MiB ones with 9 MiB less per upload.
        large_object_chunk_size: int = attrs.field(
            default=MIN_PART_SIZE, validator=between(MIN_PART_SIZE, MAX_PART_SIZE)
        )
        #: Parts uploaded in parallel per image; memory per upload <~ (this + 1) x part size.
        #: Two keep a part going up while the next one arrives; each more holds one more
        #: part in memory.
        thread_pools: int = attrs.field(default=2, validator=positive)
        #: Verify the endpoint's TLS certificate. Use ca_bundle for a private CA.
        verify_tls: bool = True
        #: PEM file of CA certificates to trust instead of botocore's bundle.
        ca_bundle: str | None = None
        #: Seconds to wait for a connection; keeps an unreachable endpoint from hanging.
        connect_timeout: float = attrs.field(default=5.0, validator=positive)
        #: Seconds to wait for each piece of a response.
        read_timeout: float = attrs.field(default=60.0, validator=positive)
        #: Tries per request (botocore "standard" retries, with backoff), and per download.
        max_attempts: int = attrs.field(default=3, validator=positive)

        def __attrs_post_init__(self) -> None:
            if (self.access_key is None) != (self.secret_key is None):
                raise ValueError(
                    "access_key and secret_key must be set together "
                    "(or neither, to use botocore's credential chain)"
                )

    def __init__(self, config: Any, *, name: str | None = None) -> None:
        super().__init__(config, name=name)
        self._client_lock = threading.Lock()
        # Made now (no network I/O): a missing boto3 or a bad setting shows at start-up,
        # and the first upload does not pay for loading botocore's S3 model.
        self._client: Any = make_client(config)

    # --- shared plumbing (also used by the writer) ---------------------------------------

    @property
    def client(self) -> Any:
        """The store's botocore client (made again if used after :meth:`close`)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = make_client(self.config)
        return self._client

    @property
    def endpoint_label(self) -> str:
        """How messages name the endpoint (a URL from config: it holds no credentials)."""
        return self.config.endpoint or "AWS S3"

    def handles(self, location: str) -> bool:
        """Plain ``s3://bucket/key`` locations, and legacy ones naming this endpoint, so
        that with several S3 stores each legacy location reaches the right one."""
        if not super().handles(location):
            return False
        try:
            loc = S3Location.parse(location)
        except errors.TankError:
            return False
        return loc.endpoint is None or self._is_my_endpoint(loc)

    def locate(self, location: str) -> S3Location:
        """Parse ``location`` (of one of this store's schemes); a legacy one must name
        this store's endpoint."""
        loc = S3Location.parse(location)
        if loc.endpoint is not None and not self._is_my_endpoint(loc):
            raise errors.BadLocation(
                f"store {self.name!r} reads {self.endpoint_label}, but {loc.redacted()} names "
                "another endpoint: configure a store for that endpoint (Tank uses each "
                "store's own endpoint and credentials, never those in a location)",
                store=self.name,
                location=loc.redacted(),
            )
        return loc

    def head(self, loc: S3Location, doing: str) -> dict[str, Any]:
        try:
            return self.client.head_object(Bucket=loc.bucket, Key=loc.key)  # type: ignore[no-any-return]
        except library_errors() as exc:
            raise translate(exc, self, doing, loc.redacted()) from exc

    def exists(self, loc: S3Location) -> bool:
        try:
            self.head(loc, "checking")
        except errors.NotFound:
            return False
        return True

    def create_bucket(self) -> None:
        """Create the configured bucket (``create_bucket_on_put``); fine if it exists."""
        bucket = self.config.bucket
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.config.region and self.config.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
        try:
            self.client.create_bucket(**kwargs)
            log.info("store %s: created bucket %s at %s", self.name, bucket, self.endpoint_label)
        except library_errors() as exc:
            code = error_code(exc)[0]
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise translate(exc, self, "creating bucket", bucket) from exc
            try:
                self.client.head_bucket(Bucket=bucket)
            except library_errors():
                raise errors.BadStoreConfig(
                    f"store {self.name!r}: bucket {bucket!r} exists at {self.endpoint_label} "
                    "but belongs to someone else: choose another bucket name",
                    store=self.name,
                ) from exc

    def missing_bucket(self) -> errors.BadStoreConfig:
        return errors.BadStoreConfig(
            f"store {self.name!r}: bucket {self.config.bucket!r} does not exist at "
            f"{self.endpoint_label}: create it, or set create_bucket_on_put = true in "
            f"[stores.{self.name}]",
            store=self.name,
        )

    # --- the store primitives --------------------------------------------------------

    def open_writer(self, image_id: str, size: int | None) -> Writer:
        loc = S3Location(bucket=self.config.bucket, key=image_id)
        if self.exists(loc):
            raise errors.Duplicate(
                f"store {self.name!r}: {loc.redacted()} already exists", store=self.name
            )
        return S3Writer(self, loc, size)

    def read(self, location: str, offset: int, length: int | None) -> ReadResult:
        return open_read(self, self.locate(location), offset, length)

    def remove(self, location: str) -> None:
        loc = self.locate(location)
        self.head(loc, "deleting")  # DeleteObject succeeds on missing keys: NotFound from HEAD
        try:
            self.client.delete_object(Bucket=loc.bucket, Key=loc.key)
        except library_errors() as exc:
            raise translate(exc, self, "deleting", loc.redacted()) from exc

    def size_of(self, location: str) -> int:
        return int(self.head(self.locate(location), "sizing")["ContentLength"])

    def remove_partial(self, image_id: str) -> list[str]:
        """A killed writer leaves its multipart uploads of the image's key unfinished
        (S3 keeps their parts, and bills them, until they are aborted), or the object
        itself if it died after the commit and before the registry recorded it.

        Uploads are listed with the key as prefix and only those of exactly that key
        are aborted: ``<id>`` is never a prefix match for another image's key.
        """
        loc = S3Location(bucket=self.config.bucket, key=image_id)
        removed = []
        try:
            uploads = self._uploads_of(loc)
        except errors.NotFound:
            return []  # no bucket: nothing was written
        for upload_id in uploads:
            try:
                self.client.abort_multipart_upload(
                    Bucket=loc.bucket, Key=loc.key, UploadId=upload_id
                )
            except library_errors() as exc:
                failure = translate(exc, self, "aborting an upload of", loc.redacted())
                if isinstance(failure, errors.NotFound):
                    continue  # gone meanwhile
                raise failure from exc
            removed.append(f"unfinished multipart upload {upload_id} of {loc.redacted()}")
        if self.exists(loc):
            try:
                self.client.delete_object(Bucket=loc.bucket, Key=loc.key)
            except library_errors() as exc:
                raise translate(exc, self, "deleting", loc.redacted()) from exc
            removed.append(f"object {loc.redacted()}")
        return removed

    def list_items(self) -> Iterator[StoredItem]:
        """Objects of the configured bucket whose key is an image id (Tank writes
        ``s3://<bucket>/<image id>``), then the unfinished multipart uploads of such
        keys. Other keys are not Tank's (a bucket may be shared) and are never listed;
        nor are other buckets, which legacy locations may name."""
        bucket = self.config.bucket
        try:
            for page in self._pages("list_objects_v2", "listing bucket", Bucket=bucket):
                for obj in page.get("Contents", []):
                    if image_id_named(obj["Key"]) is None:
                        continue
                    loc = S3Location(bucket=bucket, key=obj["Key"])
                    yield StoredItem(
                        kind=ItemKind.DATA,
                        name=loc.redacted(),
                        location=loc.to_uri(),
                        image_id=loc.key,
                        size=int(obj["Size"]),
                        modified=obj["LastModified"],
                    )
            for page in self._pages("list_multipart_uploads", "listing uploads in", Bucket=bucket):
                for upload in page.get("Uploads", []):
                    if image_id_named(upload["Key"]) is None:
                        continue
                    loc = S3Location(bucket=bucket, key=upload["Key"])
                    yield StoredItem(
                        kind=ItemKind.MULTIPART_UPLOAD,
                        name=f"{loc.redacted()} (upload {upload['UploadId']})",
                        image_id=loc.key,
                        size=self._upload_size(loc, upload["UploadId"]),
                        modified=upload["Initiated"],
                        handle=upload["UploadId"],
                    )
        except errors.NotFound:
            return  # no bucket (or it went meanwhile): nothing was written

    def remove_item(self, item: StoredItem) -> None:
        if item.kind is ItemKind.DATA and item.location is not None:
            self.remove(item.location)
            return
        if (
            item.kind is not ItemKind.MULTIPART_UPLOAD
            or image_id_named(item.image_id or "") is None
        ):
            raise errors.Invalid(f"store {self.name!r} did not list {item.name}")
        try:
            self.client.abort_multipart_upload(
                Bucket=self.config.bucket, Key=item.image_id, UploadId=item.handle
            )
        except library_errors() as exc:
            raise translate(exc, self, "aborting", item.name) from exc

    def canonical_location(self, location: str) -> str:
        """``s3://<bucket>/<key>``, also for a legacy location naming this endpoint."""
        try:
            loc = self.locate(location)
        except errors.TankError:
            return location
        return S3Location(bucket=loc.bucket, key=loc.key).to_uri()

    def check_writable(self) -> None:
        """The bucket must exist (or be created); an unreachable endpoint only warns."""
        bucket = self.config.bucket
        try:
            self.client.head_bucket(Bucket=bucket)
            return
        except library_errors() as exc:
            problem = translate(exc, self, "checking bucket", bucket)
        if isinstance(problem, errors.NotFound):
            if not self.config.create_bucket_on_put:
                raise self.missing_bucket()
            try:
                self.create_bucket()
            except errors.TankError as exc:
                raise errors.BadStoreConfig(str(exc), store=self.name) from exc
            return
        if isinstance(problem, errors.StoreUnavailable):
            # Down now is not misconfigured: writes stay enabled and fail while it is down.
            log.warning("store %s: cannot check bucket yet: %s", self.name, problem)
            return
        raise errors.BadStoreConfig(str(problem), store=self.name) from problem

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    # --- helpers ---------------------------------------------------------------------

    def _uploads_of(self, loc: S3Location) -> list[str]:
        """Ids of the unfinished multipart uploads of exactly ``loc``'s key."""
        found: list[str] = []
        markers: dict[str, str] = {}
        while True:
            try:
                page = self.client.list_multipart_uploads(
                    Bucket=loc.bucket, Prefix=loc.key, **markers
                )
            except library_errors() as exc:
                raise translate(exc, self, "listing uploads of", loc.redacted()) from exc
            found.extend(u["UploadId"] for u in page.get("Uploads", []) if u["Key"] == loc.key)
            following = {
                "KeyMarker": page.get("NextKeyMarker") or "",
                "UploadIdMarker": page.get("NextUploadIdMarker") or "",
            }
            if not page.get("IsTruncated") or following == markers:
                return found
            markers = following

    def _pages(self, operation: str, doing: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The pages of a listing, errors translated."""
        pages = iter(self.client.get_paginator(operation).paginate(**kwargs))
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except library_errors() as exc:
                raise translate(exc, self, doing, kwargs["Bucket"]) from exc
            yield page

    def _upload_size(self, loc: S3Location, upload_id: str) -> int | None:
        """Bytes the parts of an unfinished upload hold (None if it just ended)."""
        size = 0
        try:
            for page in self._pages(
                "list_parts", "listing parts in", Bucket=loc.bucket, Key=loc.key, UploadId=upload_id
            ):
                size += sum(int(part["Size"]) for part in page.get("Parts", []))
        except errors.NotFound:
            return None
        return size

    def _is_my_endpoint(self, loc: S3Location) -> bool:
        address = loc.endpoint_address
        assert address is not None
        if self.config.endpoint is None:
            host = address[0]
            return host == "amazonaws.com" or host.endswith(".amazonaws.com")
        return endpoint_address(self.config.endpoint) == address
