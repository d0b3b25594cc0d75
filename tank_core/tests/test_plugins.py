from __future__ import annotations

import inspect
import re
import sys
import textwrap
from pathlib import Path

import pytest

from tank import hookimpl, hookspecs
from tank.errors import PluginLoadError
from tank.plugins import make_plugin_manager

from .conftest import MemoryBackend, MemoryPlugin


def fake_distribution(root: Path, dist: str, entry: str, module: str, source: str) -> None:
    """An installed distribution with one ``tank`` entry point, as pip would leave it."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[tank]\n{entry} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in list(sys.modules):
        if name.startswith("fakeplug"):
            del sys.modules[name]


GOOD = """
    import tank, attrs
    from tank.store import Backend

    class Cfg: pass

    class Good(Backend):
        type_name = "good"
        schemes = ("good",)
        Config = Cfg

    @tank.hookimpl
    def tank_register_stores(register):
        register(Good)
"""


def test_entry_point_plugin_is_found(site: Path) -> None:
    fake_distribution(site, "tank-store-good", "good", "fakeplug_good", GOOD)
    plugins = make_plugin_manager(environ={})
    assert plugins.store_types()["good"].__name__ == "Good"
    info = {p.name: p for p in plugins.list_plugins()}["good"]
    assert info.distribution == "tank-store-good"
    assert info.version == "1.2.3"
    assert info.hooks == ("tank_register_stores",)


def test_blocked_and_autoload_off(site: Path) -> None:
    fake_distribution(site, "tank-store-good", "good", "fakeplug_good", GOOD)
    assert (
        "good" not in make_plugin_manager(environ={"TANK_DISABLE_PLUGINS": "x, good"}).store_types()
    )
    assert make_plugin_manager(environ={"TANK_DISABLE_PLUGIN_AUTOLOAD": "1"}).store_types() == {}


def test_import_error_names_the_plugin(site: Path) -> None:
    fake_distribution(
        site, "tank-store-broken", "broken", "fakeplug_broken", "import nonexistent_lib\n"
    )
    with pytest.raises(PluginLoadError) as info:
        make_plugin_manager(environ={})
    message = str(info.value)
    assert "'broken'" in message and "tank-store-broken" in message
    assert "nonexistent_lib" in message
    assert "set TANK_DISABLE_PLUGINS=broken" in message


def test_misspelled_hook_names_the_plugin(site: Path) -> None:
    source = """
        import tank
        @tank.hookimpl
        def tank_register_store(register):
            pass
    """
    fake_distribution(site, "tank-store-typo", "typo", "fakeplug_typo", source)
    with pytest.raises(PluginLoadError, match=r"'typo'.*tank-store-typo.*tank_register_store"):
        make_plugin_manager(environ={})
    with pytest.raises(PluginLoadError) as info:
        make_plugin_manager(environ={})
    assert "tank_register_store: did you mean tank_register_stores?" in str(info.value)


def test_extra_hook_argument_names_the_plugin(site: Path) -> None:
    source = """
        import tank
        @tank.hookimpl
        def tank_register_stores(register, colour):
            pass
    """
    fake_distribution(site, "tank-store-args", "args", "fakeplug_args", source)
    with pytest.raises(PluginLoadError, match="'args'"):
        make_plugin_manager(environ={})


def test_failing_registration_names_the_plugin() -> None:
    class Bad:
        @hookimpl
        def tank_register_stores(self, register):  # type: ignore[no-untyped-def]
            register(object)

    plugins = make_plugin_manager(plugins=[("bad", Bad())], autoload=False)
    with pytest.raises(PluginLoadError, match=r"'bad'.*Backend subclass"):
        plugins.store_types()


def test_clashing_stores_name_both_plugins() -> None:
    plugins = make_plugin_manager(
        plugins=[("first", MemoryPlugin()), ("second", MemoryPlugin())], autoload=False
    )
    assert plugins.store_types() == {"memory": MemoryBackend}  # same class twice is fine

    class Other(MemoryBackend):
        pass

    class Clash:
        @hookimpl
        def tank_register_stores(self, register):  # type: ignore[no-untyped-def]
            register(Other)

    plugins = make_plugin_manager(
        plugins=[("first", MemoryPlugin()), ("second", Clash())], autoload=False
    )
    with pytest.raises(PluginLoadError, match=r"'second'.*already registered by plugin 'first'"):
        plugins.store_types()


def test_scheme_clash_is_an_error() -> None:
    class SameScheme(MemoryBackend):
        type_name = "memory2"

    class Clash:
        @hookimpl
        def tank_register_stores(self, register):  # type: ignore[no-untyped-def]
            register(SameScheme)

    plugins = make_plugin_manager(
        plugins=[("first", MemoryPlugin()), ("second", Clash())], autoload=False
    )
    with pytest.raises(PluginLoadError, match="scheme 'memory' is already handled"):
        plugins.store_types()


def test_observer_failures_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    from tank.model import Context, Image

    seen = []

    class Broken:
        @hookimpl
        def tank_image_created(self, image):  # type: ignore[no-untyped-def]
            raise RuntimeError("notification queue down")

    class Good:
        @hookimpl
        def tank_image_created(self, image, context):  # type: ignore[no-untyped-def]
            seen.append((image.id, context.is_admin))

    plugins = make_plugin_manager(plugins=[("broken", Broken()), ("good", Good())], autoload=False)
    image = Image()
    plugins.image_created(image=image, context=Context.admin())
    assert seen == [(image.id, True)]
    assert "plugin broken failed in tank_image_created" in caplog.text


def documented_hooks() -> dict[str, list[str]]:
    """The hook table of tank_core/README.md: ``| `name(arg, ...)` | when | what |``."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| `(tank_\w+)\(([^)]*)\)` \|", readme, re.MULTILINE)
    return {name: [a.strip() for a in args.split(",") if a.strip()] for name, args in rows}


def specified_hooks() -> dict[str, list[str]]:
    """Every hookspec in tank.hookspecs, with its argument names."""
    return {
        name: list(inspect.signature(function).parameters)
        for name, function in vars(hookspecs).items()
        if callable(function) and hasattr(function, "tank_spec")
    }


def test_the_documented_hooks_are_the_real_ones() -> None:
    """As datasette's docs test: the README's table lists exactly the hooks of
    tank.hookspecs, each with its arguments, in order."""
    specified = specified_hooks()
    assert len(specified) == 16
    assert documented_hooks() == specified
    plugins = make_plugin_manager(autoload=False)
    assert sorted(n for n in dir(plugins.pm.hook) if n.startswith("tank_")) == sorted(specified)


def test_every_hookspec_docstring_says_when_and_names_its_arguments() -> None:
    for name, args in specified_hooks().items():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert ":return:" in doc, name
        assert re.search(r"\b(called|Called|An image|An upload)\b", doc), name
        assert re.findall(r":param (\w+):", doc) == args, name


def test_a_registration_that_raises_names_the_plugin() -> None:
    class Raises:
        @hookimpl
        def tank_register_stores(self, register):  # type: ignore[no-untyped-def]
            raise RuntimeError("cannot import the SDK")

    plugins = make_plugin_manager(
        plugins=[("good", MemoryPlugin()), ("raises", Raises())], autoload=False
    )
    with pytest.raises(PluginLoadError, match=r"'raises'.*cannot import the SDK"):
        plugins.store_types()


def test_a_store_registered_by_two_plugins_belongs_to_the_first() -> None:
    plugins = make_plugin_manager(
        plugins=[("first", MemoryPlugin()), ("second", MemoryPlugin())], autoload=False
    )
    assert plugins.store_plugins() == {"memory": "first"}
