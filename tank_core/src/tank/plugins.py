"""The plugin manager: one per Tank instance, built here and passed down.

Plugins are found only through the ``tank`` entry-point group. Loading is done here
rather than by pluggy's ``load_setuptools_entrypoints`` so that a plugin that fails to
import or register raises :class:`~tank.errors.PluginLoadError` naming the plugin and
its distribution. ``TANK_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point name;
``TANK_DISABLE_PLUGIN_AUTOLOAD=1`` loads none (tests then register plugins by hand).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

import attrs
import pluggy
from pluggy import HookImpl

from tank import hookspecs
from tank.errors import PluginLoadError

if TYPE_CHECKING:
    from tank.imports.steps import ImportStep
    from tank.model import Context, Image, Member
    from tank.notify.sink import Sink
    from tank.registry import Registry
    from tank.store import Backend

log = logging.getLogger(__name__)

GROUP = "tank"
#: Plugins that ship with tank-core, registered like any other (and blockable by name).
DEFAULT_PLUGINS = (
    ("http-registry", "tank.registry_http.plugin"),
    ("import-steps", "tank.imports.plugin"),
    ("notification-sinks", "tank.notify.plugin"),
)


@attrs.frozen
class PluginInfo:
    """One loaded plugin, for ``tank plugins`` / ``tank stores``."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]


class Plugins:
    """A pluggy manager with one typed method per hook (so call sites are type-checked).

    Every hook is called once per event through ``pm.hook.<name>(...)``, so pluggy's
    tracing, hook-call monitoring and plugins' wrappers see each call.
    """

    def __init__(self, pm: pluggy.PluginManager, dists: Mapping[str, Any]) -> None:
        self.pm = pm
        self._dists = dict(dists)
        self._stores: dict[str, type[Backend]] | None = None
        self._store_plugins: dict[str, str] = {}
        self._registries: dict[str, type[Registry]] | None = None
        self._steps: dict[str, type[ImportStep]] | None = None
        self._sinks: dict[str, type[Sink]] | None = None

    # --- registration hooks ----------------------------------------------------------

    def store_types(self) -> dict[str, type[Backend]]:
        """Installed store classes by type name (``file``, ``s3``, ...)."""
        if self._stores is None:
            self._stores, self._store_plugins = self._collect(
                self.pm.hook.tank_register_stores, _store_key
            )
        return dict(self._stores)

    def store_plugins(self) -> dict[str, str]:
        """The plugin that registered each installed store type, by type name."""
        self.store_types()
        return dict(self._store_plugins)

    def registry_types(self) -> dict[str, type[Registry]]:
        """Installed registry classes by kind (``sql``, ``http``, ...)."""
        if self._registries is None:
            self._registries, _ = self._collect(
                self.pm.hook.tank_register_registries, _registry_key
            )
        return dict(self._registries)

    def import_step_types(self) -> dict[str, type[ImportStep]]:
        """Installed import step classes by name (``decompress``, ``convert``, ...)."""
        if self._steps is None:
            self._steps, _ = self._collect(self.pm.hook.tank_register_import_steps, _step_key)
        return dict(self._steps)

    def sink_types(self) -> dict[str, type[Sink]]:
        """Installed notification sink classes by name (``log``, ``webhook``, ...)."""
        if self._sinks is None:
            self._sinks, _ = self._collect(self.pm.hook.tank_register_notification_sinks, _sink_key)
        return dict(self._sinks)

    def _collect(
        self, hook: pluggy.HookCaller, key_of: Any
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Call a registration hook once; return the classes and their plugins by key.

        ``register`` learns which plugin calls it from the call stack (pluggy passes
        every implementation the same arguments). The registrations are then taken in
        plugin registration order, whatever order pluggy called them in: the first
        plugin keeps a key, and a clash names the later one.
        """
        codes = _implementation_codes(hook)
        registered: list[tuple[str, Any]] = []

        def register(cls: Any) -> None:
            plugin = _plugin_in_frames(sys._getframe(1), codes)
            try:
                key_of(cls)
            except TypeError as exc:
                raise PluginLoadError(plugin, self._dist_name(plugin), exc) from exc
            registered.append((plugin, cls))

        try:
            hook(register=register)
        except PluginLoadError:
            raise
        except Exception as exc:
            plugin = _plugin_in_traceback(exc, codes)
            raise PluginLoadError(plugin, self._dist_name(plugin), exc) from exc

        order = {name: i for i, (name, _) in enumerate(self.pm.list_name_plugin())}
        registered.sort(key=lambda entry: order.get(entry[0], len(order)))
        found: dict[str, Any] = {}
        owners: dict[str, str] = {}
        schemes: dict[str, str] = {}
        for plugin, cls in registered:
            key = key_of(cls)
            if key in found:
                if found[key] is not cls:
                    raise self._clash(
                        plugin, f"{key!r} is already registered by plugin {owners[key]!r}"
                    )
                continue  # the same class from several plugins: the first keeps it
            for scheme in cls.schemes if hook.name == "tank_register_stores" else ():
                if scheme in schemes:
                    raise self._clash(
                        plugin,
                        f"scheme {scheme!r} is already handled by store {schemes[scheme]!r} "
                        f"of plugin {owners[schemes[scheme]]!r}",
                    )
                schemes[scheme] = key
            found[key] = cls
            owners[key] = plugin
        return found, owners

    def _clash(self, plugin: str, message: str) -> PluginLoadError:
        return PluginLoadError(plugin, self._dist_name(plugin), ValueError(message))

    # --- lifecycle hooks (observers: failures are logged, never raised) ------------------

    def image_created(self, *, image: Image, context: Context) -> None:
        self._notify(self.pm.hook.tank_image_created, image=image, context=context)

    def image_activated(self, *, image: Image, context: Context) -> None:
        self._notify(self.pm.hook.tank_image_activated, image=image, context=context)

    def image_updated(self, *, image: Image, previous: Image, context: Context) -> None:
        self._notify(
            self.pm.hook.tank_image_updated, image=image, previous=previous, context=context
        )

    def image_deleted(self, *, image: Image, context: Context) -> None:
        self._notify(self.pm.hook.tank_image_deleted, image=image, context=context)

    def image_killed(self, *, image: Image, reason: str, context: Context) -> None:
        self._notify(self.pm.hook.tank_image_killed, image=image, reason=reason, context=context)

    def image_upload_started(self, *, image: Image, store: str, context: Context) -> None:
        self._notify(
            self.pm.hook.tank_image_upload_started, image=image, store=store, context=context
        )

    def image_data_stored(self, *, image: Image, store: str, context: Context) -> None:
        self._notify(self.pm.hook.tank_image_data_stored, image=image, store=store, context=context)

    def image_upload_failed(self, *, image: Image, reason: str, context: Context) -> None:
        self._notify(
            self.pm.hook.tank_image_upload_failed, image=image, reason=reason, context=context
        )

    def image_sent(self, *, image: Image, bytes_sent: int, expected: int, context: Context) -> None:
        self._notify(
            self.pm.hook.tank_image_sent,
            image=image,
            bytes_sent=bytes_sent,
            expected=expected,
            context=context,
        )

    def member_created(self, *, member: Member, context: Context) -> None:
        self._notify(self.pm.hook.tank_member_created, member=member, context=context)

    def member_updated(self, *, member: Member, context: Context) -> None:
        self._notify(self.pm.hook.tank_member_updated, member=member, context=context)

    def member_deleted(self, *, member: Member, context: Context) -> None:
        self._notify(self.pm.hook.tank_member_deleted, member=member, context=context)

    def _notify(self, hook: pluggy.HookCaller, **kwargs: Any) -> None:
        try:
            hook(**kwargs)
        except Exception as exc:
            subject = kwargs.get("image") or kwargs.get("member")
            log.exception(
                "plugin %s failed in %s for image %s",
                _plugin_in_traceback(exc, _implementation_codes(hook)),
                hook.name,
                getattr(subject, "id", None) or getattr(subject, "image_id", "?"),
            )

    # --- listing ---------------------------------------------------------------------

    def list_plugins(self) -> list[PluginInfo]:
        out = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda p: p[0]):
            dist = self._dists.get(name)
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or ()))
            out.append(
                PluginInfo(
                    name=name,
                    distribution=dist.metadata["Name"] if dist is not None else None,
                    version=dist.version if dist is not None else None,
                    hooks=hooks,
                )
            )
        return out

    def _dist_name(self, plugin_name: str) -> str | None:
        dist = self._dists.get(plugin_name)
        return dist.metadata["Name"] if dist is not None else None


def _implementation_codes(hook: pluggy.HookCaller) -> dict[CodeType, list[HookImpl]]:
    """The implementations of ``hook`` by code object (one class's instances share one)."""
    codes: dict[CodeType, list[HookImpl]] = {}
    for impl in hook.get_hookimpls():
        function = getattr(impl.function, "__func__", impl.function)  # bound methods
        code = getattr(function, "__code__", None)
        if code is not None:
            codes.setdefault(code, []).append(impl)
    return codes


def _plugin_running(frame: FrameType, impls: list[HookImpl]) -> str:
    """Which of ``impls`` (sharing ``frame``'s code) runs in ``frame``: by its ``self``."""
    if len(impls) > 1 and frame.f_code.co_argcount:
        first = frame.f_locals.get(frame.f_code.co_varnames[0])
        for impl in impls:
            if getattr(impl.function, "__self__", None) is first:
                return impl.plugin_name
    return impls[0].plugin_name


def _plugin_in_frames(frame: FrameType | None, codes: Mapping[CodeType, list[HookImpl]]) -> str:
    """The plugin whose hook implementation is running in ``frame`` or a caller of it."""
    while frame is not None:
        if frame.f_code in codes:
            return _plugin_running(frame, codes[frame.f_code])
        frame = frame.f_back
    return "(unknown plugin)"


def _plugin_in_traceback(exc: BaseException, codes: Mapping[CodeType, list[HookImpl]]) -> str:
    """The plugin whose hook implementation ``exc`` was raised in (or came through)."""
    tb = exc.__traceback__
    culprit = "(unknown plugin)"
    while tb is not None:
        if tb.tb_frame.f_code in codes:
            culprit = _plugin_running(tb.tb_frame, codes[tb.tb_frame.f_code])
        tb = tb.tb_next
    return culprit


def _store_key(cls: Any) -> str:
    from tank.store import Backend

    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"register() takes a tank.store.Backend subclass, got {cls!r}")
    for attr in ("type_name", "schemes", "Config"):
        if not hasattr(cls, attr):
            raise TypeError(f"store class {cls.__name__} has no {attr!r} attribute")
    return str(cls.type_name)


def _registry_key(cls: Any) -> str:
    from tank.registry import Registry

    if not (isinstance(cls, type) and issubclass(cls, Registry)):
        raise TypeError(f"register() takes a tank.registry.Registry subclass, got {cls!r}")
    for attr in ("kind", "Config"):
        if not hasattr(cls, attr):
            raise TypeError(f"registry class {cls.__name__} has no {attr!r} attribute")
    return str(cls.kind)


def _step_key(cls: Any) -> str:
    from tank.imports.steps import ImportStep

    if not (isinstance(cls, type) and issubclass(cls, ImportStep)):
        raise TypeError(f"register() takes a tank.imports.steps.ImportStep subclass, got {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"import step class {cls.__name__} has no 'name' that is an identifier")
    return name


def _sink_key(cls: Any) -> str:
    from tank.notify.sink import Sink

    if not (isinstance(cls, type) and issubclass(cls, Sink)):
        raise TypeError(f"register() takes a tank.notify.sink.Sink subclass, got {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(
            f"notification sink class {cls.__name__} has no 'name' that is an identifier"
        )
    if not hasattr(cls, "Config"):
        raise TypeError(f"notification sink class {cls.__name__} has no 'Config' attribute")
    return name


def make_plugin_manager(
    *,
    plugins: Iterable[tuple[str, object]] = (),
    autoload: bool | None = None,
    blocked: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Plugins:
    """Build the plugin manager of one Tank instance.

    :param plugins: ``(name, module_or_object)`` pairs registered before entry points
        (tests use this to add plugins without installing them).
    :param autoload: load the ``tank`` entry points; default: unless
        ``TANK_DISABLE_PLUGIN_AUTOLOAD`` is set.
    :param blocked: entry-point names not to load; default: ``TANK_DISABLE_PLUGINS``.
    :raises PluginLoadError: a plugin failed to import, has a bad hook, or clashes.
    """
    env = os.environ if environ is None else environ
    if autoload is None:
        autoload = not env.get("TANK_DISABLE_PLUGIN_AUTOLOAD")
    if blocked is None:
        blocked = [b.strip() for b in env.get("TANK_DISABLE_PLUGINS", "").split(",")]
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        if name:
            pm.set_blocked(name)
    dists: dict[str, Any] = {}
    for name, plugin in plugins:
        _register(pm, plugin, name, None)
    for name, module in DEFAULT_PLUGINS:
        if not pm.is_blocked(name) and not pm.has_plugin(name):
            _register(pm, importlib.import_module(module), name, "tank-core")
    if autoload:
        for ep in importlib.metadata.entry_points(group=GROUP):
            if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
                continue
            dist = ep.dist
            dist_name = dist.metadata["Name"] if dist is not None else None
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginLoadError(ep.name, dist_name, exc) from exc
            _register(pm, plugin, ep.name, dist_name)
            dists[ep.name] = dist
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        dist = dists.get(name)
        cause: Exception = exc
        hint = _misspelled_hooks(exc.plugin)
        if hint:
            cause = pluggy.PluginValidationError(exc.plugin, f"{exc}; {hint}")
        raise PluginLoadError(name, dist.metadata["Name"] if dist else None, cause) from exc
    return Plugins(pm, dists)


def _misspelled_hooks(plugin: object) -> str:
    """``did you mean ...`` for each of a plugin's ``tank_*`` functions that is no hook."""
    known = [n for n in dir(hookspecs) if n.startswith("tank_")]
    hints = []
    for attr in dir(plugin):
        if attr.startswith("tank_") and attr not in known and callable(getattr(plugin, attr)):
            close = difflib.get_close_matches(attr, known, n=1)
            if close:
                hints.append(f"{attr}: did you mean {close[0]}?")
    return "; ".join(hints)


def _register(pm: pluggy.PluginManager, plugin: object, name: str, dist: str | None) -> None:
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginLoadError(name, dist, exc) from exc
