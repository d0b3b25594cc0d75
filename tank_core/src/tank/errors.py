"""The one error tree of Tank.

Stores, registries and the service layer raise only these. Library exceptions (boto3,
rados, SQLAlchemy, OSError) are translated at the boundary where they occur, so the HTTP
API can map every error to a status code in one table (``http_status``) and a message a
person can act on.

Messages must never contain secrets: pass locations through
:func:`tank.locations.redact` before putting them into a message.
"""

from __future__ import annotations


class TankError(Exception):
    """Base of every error Tank raises on purpose."""

    http_status: int = 500
    #: Seconds a client should wait before it tries again, sent as ``Retry-After``.
    retry_after: int | None = None

    def __init__(
        self,
        message: str,
        *,
        store: str | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.store = store
        #: Always a redacted location, safe to show to a user.
        self.location = location

    def __str__(self) -> str:
        return self.message


# --- client errors -------------------------------------------------------------------


class Invalid(TankError, ValueError):
    """The request itself is wrong (bad value, unknown store, checksum mismatch)."""

    http_status = 400


class ValidationError(Invalid):
    """A field of an image or of a query has a bad value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class SizeMismatch(Invalid):
    """The data received does not have the size the client announced."""


class ChecksumMismatch(Invalid):
    """The data received does not have the checksum the client announced."""


class InvalidImageData(Invalid):
    """The data is not what the image's ``disk_format`` says, or fails the format's
    safety checks (a qcow2 backing file, a VMDK extent elsewhere): see
    :mod:`tank.image_format`. 400; the v2 upload answers 415, as Glance does."""


class UnknownStore(Invalid):
    """No store of that name is configured."""


class UnknownScheme(Invalid):
    """No installed store handles the scheme of a location."""


class BadLocation(Invalid):
    """A location cannot be parsed, or points somewhere it must not (outside a data dir)."""


class ClientTooSlow(TankError):
    """The client sent its request body slower than the server's floor allows."""

    http_status = 408


class NotFound(TankError, LookupError):
    """An image, member or piece of stored data does not exist (or is not visible)."""

    http_status = 404


class Forbidden(TankError, PermissionError):
    """The caller, or Tank's credentials at a store, may not do this."""

    http_status = 403


class ReadOnlyStore(Forbidden):
    """The store cannot write or delete (by design, or because its config is bad)."""


class Conflict(TankError):
    """The request clashes with the current state of the resource."""

    http_status = 409


class Duplicate(Conflict):
    """Something with that identity already exists (image id, stored object)."""


class InvalidTransition(Conflict):
    """An image status change the lifecycle does not allow (e.g. active -> saving)."""


class InUse(Conflict):
    """Stored data cannot be deleted because something depends on it (RBD clones)."""


class UnsupportedMediaType(TankError):
    """The request body is in a media type this endpoint does not take (a v2 PATCH that
    is not one of the two OpenStack JSON patch types)."""

    http_status = 415


class ImageTooLarge(TankError):
    """The image exceeds the configured size cap."""

    http_status = 413


class StorageFull(TankError):
    """The store has no room for the data."""

    http_status = 413


class RegistryFull(StorageFull):
    """The registry's database has no room: 507 Insufficient Storage, not 413, since
    the request was not too large (a DELETE or PATCH meets it too)."""

    http_status = 507


class OverLimit(TankError):
    """More properties, tags or members than an image may have (Glance's quotas: 413)."""

    http_status = 413


class QuotaExceeded(OverLimit):
    """A project's quota (``[quotas]``: image_count_total, image_size_total, ...) would be
    exceeded; the message names the limit, its value and the project's usage."""


# --- server side errors --------------------------------------------------------------


class FetchFailed(TankError):
    """A URL given to an import (web-download) could not be fetched: the server answered
    with an error, could not be reached, broke off or timed out."""

    http_status = 502


class ImportStepFailed(TankError):
    """An import step (decompress, convert, ...) could not process the data; the message
    says why and is safe to record on the image."""

    http_status = 500


class StoreUnavailable(TankError):
    """The store (or registry) could not be reached, or timed out."""

    http_status = 503


class Busy(TankError):
    """This server is already doing as much of this kind of work as it may at once (image
    data going out to ``download_threads`` clients); the client may retry after
    ``retry_after`` seconds."""

    http_status = 503

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShuttingDown(TankError):
    """The server is stopping and ended this request (an upload still running after the
    grace period); the client did nothing wrong and may retry."""

    http_status = 503


class StoreError(TankError):
    """The store failed in a way none of the other errors describes."""

    http_status = 500


class BadStoreConfig(TankError):
    """A store's configuration is unusable; the message says which key and why."""

    http_status = 500


class ConfigError(TankError):
    """Tank's configuration file or environment is wrong; names file, section and key."""


class SharedStoreDirectory(ConfigError):
    """Two stores, or a store and tank-api's cache or staging area, would share a local
    directory (:mod:`tank.store_dirs`): tank-api refuses to start (exit status 2)."""


class PluginLoadError(TankError):
    """A plugin could not be imported or registered; names the plugin and its distribution."""

    def __init__(self, plugin: str, distribution: str | None, cause: BaseException) -> None:
        dist = f" (from distribution {distribution})" if distribution else ""
        super().__init__(
            f"plugin {plugin!r}{dist} failed to load: {cause}; to start without it, set "
            f"TANK_DISABLE_PLUGINS={plugin} (or uninstall its distribution)"
        )
        self.plugin = plugin
        self.distribution = distribution
        self.cause = cause
