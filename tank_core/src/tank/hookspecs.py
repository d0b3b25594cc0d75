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
    from tank.model import Context, Image
    from tank.registry import Registry
    from tank.store import Backend

hookspec = pluggy.HookspecMarker("tank")


class RegisterStore(Protocol):
    def __call__(self, backend: type[Backend]) -> None: ...


class RegisterRegistry(Protocol):
    def __call__(self, registry: type[Registry]) -> None: ...


class RegisterImportStep(Protocol):
    def __call__(self, step: type[ImportStep]) -> None: ...


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
    """An image's metadata was changed by a user (not by the upload lifecycle).

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
