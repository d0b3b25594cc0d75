"""Every hook a Tank plugin can implement.

A plugin is a module listed under the ``tank`` entry-point group::

    [project.entry-points.tank]
    mystore = "tank_store_mystore.plugin"

whose functions are marked with :data:`tank.hookimpl` and named after the hooks below.
An implementation may accept fewer arguments than the spec (pluggy passes only those it
names), so hooks can grow new arguments without breaking plugins. Hooks are called with
keyword arguments only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import pluggy

if TYPE_CHECKING:
    from tank.imports.steps import ImportStep
    from tank.model import Context, Image, Member
    from tank.notify.sink import Sink
    from tank.registry import Registry
    from tank.store import Backend

hookspec = pluggy.HookspecMarker("tank")


class RegisterStore(Protocol):
    def __call__(self, backend: type[Backend]) -> None: ...


class RegisterRegistry(Protocol):
    def __call__(self, registry: type[Registry]) -> None: ...


class RegisterImportStep(Protocol):
    def __call__(self, step: type[ImportStep]) -> None: ...


class RegisterSink(Protocol):
    def __call__(self, sink: type[Sink]) -> None: ...


# --- Registration hooks: called once when the plugin manager is set up ---------------


@hookspec
def tank_register_stores(register: RegisterStore) -> None:
    """Contribute store backends.

    Called once per :class:`tank.plugins.Plugins`, when the stores named in the config
    are built (and by ``tank stores``). Call ``register(BackendClass)`` for each
    :class:`tank.store.Backend` subclass the plugin provides. Stores are keyed by
    ``BackendClass.type_name``; a type name or URI scheme already registered by another
    plugin is an error naming both plugins.

    :param register: the registrar; takes a Backend subclass.
    :return: ignored.
    """


@hookspec
def tank_register_registries(register: RegisterRegistry) -> None:
    """Contribute registry implementations (where image metadata lives).

    Called once per :class:`tank.plugins.Plugins`, when the registry is opened. Call
    ``register(RegistryClass)`` for each :class:`tank.registry.Registry` subclass;
    they are keyed by ``RegistryClass.kind`` (``sql``, ``http``, ...), chosen by the
    ``[registry] kind`` config key. A kind registered twice is an error naming both
    plugins.

    :param register: the registrar; takes a Registry subclass.
    :return: ignored.
    """


@hookspec
def tank_register_import_steps(register: RegisterImportStep) -> None:
    """Contribute import steps: what an interoperable import does to the data between
    fetching it and storing it (decompress, convert, inject metadata, ...).

    Called once per :class:`tank.plugins.Plugins`, when the steps named in
    ``[import] steps`` are built. Call ``register(StepClass)`` for each
    :class:`tank.imports.steps.ImportStep` subclass; they are keyed by
    ``StepClass.name`` and configured from ``[import.<name>]`` (plus the ``[import]``
    keys the class lists in ``import_keys``). A name registered twice is an error naming
    both plugins. tank-core registers its built-in steps through this hook too.

    :param register: the registrar; takes an ImportStep subclass.
    :return: ignored.
    """


@hookspec
def tank_register_notification_sinks(register: RegisterSink) -> None:
    """Contribute notification sinks: where Tank's events (Glance's notifications,
    :mod:`tank.notify`) are delivered.

    Called once per :class:`tank.plugins.Plugins`, when the sinks named in
    ``[notifications] sinks`` are built. Call ``register(SinkClass)`` for each
    :class:`tank.notify.sink.Sink` subclass; they are keyed by ``SinkClass.name`` and
    configured from ``[notifications.<name>]`` with ``SinkClass.Config``. A name
    registered twice is an error naming both plugins. tank-core registers its built-in
    sinks (``log``, ``webhook``) through this hook too.

    :param register: the registrar; takes a Sink subclass.
    :return: ignored.
    """


# --- Image lifecycle hooks: observers, called by tank.service.ImageService ----------
# Each is called once per event, through the plugin manager (``pm.hook.<name>``), after
# the registry has recorded the change. An exception raised by an implementation is
# logged with the plugin's name and does not undo the change or fail the request; as
# with any pluggy hook, the implementations pluggy would have called after it miss that
# event, so an observer should catch its own errors.


@hookspec
def tank_image_created(image: Image, context: Context) -> None:
    """An image record was created (status ``queued``, or ``active`` for a location).

    :param image: the image as stored in the registry.
    :param context: who asked.
    :return: ignored.
    """


@hookspec
def tank_image_activated(image: Image, context: Context) -> None:
    """An image's data was uploaded and verified, and the image is now ``active``.

    :param image: the image with its ``size``, ``checksum``, ``os_hash_algo`` /
        ``os_hash_value`` and ``locations``.
    :param context: who asked.
    :return: ignored.
    """


@hookspec
def tank_image_updated(image: Image, previous: Image, context: Context) -> None:
    """An image's metadata was changed by a user (not by the upload lifecycle), or an
    import began (status ``importing``, or the stores a copy-image writes to listed).

    :param image: the image after the change.
    :param previous: the image before the change.
    :param context: who asked.
    :return: ignored.
    """


@hookspec
def tank_image_deleted(image: Image, context: Context) -> None:
    """An image was deleted: its record is marked deleted and its data removed.

    :param image: the image as it was marked deleted.
    :param context: who asked.
    :return: ignored.
    """


@hookspec
def tank_image_killed(image: Image, reason: str, context: Context) -> None:
    """An upload failed and the image became ``killed``; no data was kept.

    :param image: the killed image.
    :param reason: what went wrong, safe to show a user (no secrets).
    :param context: who asked.
    :return: ignored.
    """


@hookspec
def tank_image_upload_started(image: Image, store: str, context: Context) -> None:
    """Image data began to go into ``store``: an upload (the image is now ``saving``),
    or an import writing to one of its target stores (called once per store, as
    Glance's import sets the data store by store; the image is ``importing``, or
    ``active`` for copy-image).

    :param image: the image as recorded (status ``saving``; for an import ``importing``
        or ``active``, with the formats its data is written as, and
        ``os_glance_importing_to_stores`` still listing ``store``).
    :param store: the name of the store the data is written to.
    :param context: who asked.
    :return: ignored.
    """


@hookspec
def tank_image_data_stored(image: Image, store: str, context: Context) -> None:
    """An image's data was written to ``store`` and recorded: an upload's, just before
    :func:`tank_image_activated`; an import's, once per target store (copy-image
    included), as Glance's import sets the data store by store. Not called for a
    location registered or handed over (Tank wrote no data).

    :param image: the image as recorded with the new location (an upload's: ``active``;
        an import's: ``importing``, or ``active`` for copy-image, with
        ``os_glance_importing_to_stores`` no longer listing ``store``, and the size,
        checksums and formats of the data written, which an import records as it ends).
    :param store: the name of the store the data was written to.
    :param context: who asked.
    :return: ignored.
    """


@hookspec
def tank_image_upload_failed(image: Image, reason: str, context: Context) -> None:
    """An upload or an import failed and no data was kept: the image is ``killed`` (v1;
    then :func:`tank_image_killed` follows) or ``queued`` again (v2, to be tried again).

    :param image: the image as recorded after the failure.
    :param reason: what went wrong, safe to show a user (no secrets).
    :param context: who asked.
    :return: ignored.
    """


@hookspec
def tank_image_sent(image: Image, bytes_sent: int, expected: int, context: Context) -> None:
    """Called when a download ended: ``bytes_sent`` of the ``expected`` bytes (the whole image or
    the requested range) went to the client; fewer when the client went away.

    :param image: the image downloaded.
    :param bytes_sent: bytes of data sent.
    :param expected: bytes the response announced.
    :param context: who downloaded it.
    :return: ignored.
    """


@hookspec
def tank_member_created(member: Member, context: Context) -> None:
    """An image was shared with a tenant (a member was added).

    :param member: the member as recorded.
    :param context: who asked.
    :return: ignored.
    """


@hookspec
def tank_member_updated(member: Member, context: Context) -> None:
    """Called when a member changed: its status (v2: accepted, rejected, pending) or ``can_share``.

    :param member: the member after the change.
    :param context: who asked.
    :return: ignored.
    """


@hookspec
def tank_member_deleted(member: Member, context: Context) -> None:
    """An image is no longer shared with a tenant.

    :param member: the member as it was before it was removed.
    :param context: who asked.
    :return: ignored.
    """
