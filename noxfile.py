"""Test, lint and type-check sessions for every distribution of the monorepo.

Nothing is listed by hand: every top-level ``tank_*/pyproject.toml`` is a distribution.

    nox -s lint typecheck docs tests_all # what CI runs (and the README's test command)
    nox -s "tests(package='tank_store_s3')"
    nox -s example compat
    nox -s build               # every wheel and sdist into dist/

``tests_all`` starts the project's throwaway test servers (PostgreSQL, Swift, Ceph, RabbitMQ) with
``tests/servers/*.sh`` (or the scripts in ``$TANK_SERVICES``) and stops them afterwards; the
scripts' own variables (``TANK_PG_PORT``, ``TANK_CEPH_DIR``, ...) pick ports and folders. Set
``TANK_START_SERVERS=0`` to use servers you started yourself (their ``TANK_TEST_*``
variables are passed through). Store tests whose server is missing skip and say which
variable to set.
"""

from __future__ import annotations

import os
import shlex
import tarfile
import tomllib
import zipfile
from pathlib import Path

import nox
from packaging.requirements import Requirement

ROOT = Path(__file__).parent
PACKAGES = sorted(p.parent.name for p in ROOT.glob("tank_*/pyproject.toml"))
EXAMPLES = sorted(p.parent for p in ROOT.glob("examples/*/pyproject.toml"))
SERVICES = Path(os.environ.get("TANK_SERVICES", ROOT / "tests" / "servers"))
#: The Ceph script of the project links Debian's rados/rbd bindings into a venv.
CEPH_SCRIPT = ROOT / "tests" / "servers" / "ceph.sh"
#: Servers started for the whole suite, in start order.
SERVERS = ("postgres", "swift", "ceph", "rabbitmq")
#: tank-core's guarded HTTP client (``tank/net/transport.py``) overrides urllib3's private
#: ``HTTPConnection._new_conn``: the tests of its users run on the lowest and the highest
#: urllib3 tank-core's pin allows (``nox -s compat``); keep both in the pin.
URLLIB3 = ("2.0.2", "2.8.0")
EXTRAS = {
    "tank_core": "[testing]",
    "tank_registry_sql": "[postgresql]",
    # its tests receive with an unchanged oslo.messaging notification listener
    "tank_notify_amqp": "[testing]",
    "tank_store_chase": "[keystone]",
}

nox.options.sessions = ["lint", "docs", "tests_all"]
nox.options.reuse_existing_virtualenvs = True


def _install(session: nox.Session, *packages: str) -> None:
    args = []
    for package in dict.fromkeys(("tank_core", *packages)):
        args += ["-e", f"./{package}{EXTRAS.get(package, '')}"]
    session.install("pytest", "pytest-timeout", "hatchling", *args)  # hatchling: scaffold test


def _link_ceph_bindings(session: nox.Session) -> None:
    """rados/rbd are Debian packages, not on PyPI: link them into the session's venv."""
    if list(Path("/usr/lib/python3/dist-packages").glob("rados.*.so")):
        session.run(
            "bash", str(CEPH_SCRIPT), "python-link", session.virtualenv.location, external=True
        )


def _start_servers(session: nox.Session, started: list[str]) -> None:
    """Start each server and take its variables; ``started`` names every one to stop,
    including one whose start failed half-way (its script's ``stop`` cleans up after it)."""
    if os.environ.get("TANK_START_SERVERS", "1") == "0":
        return
    if not SERVICES.is_dir():
        session.warn(f"{SERVICES} not found: store integration tests will skip")
        return
    for name in SERVERS:
        script = SERVICES / f"{name}.sh"
        session.log(f"starting {name} test server")
        started.append(name)
        session.run("bash", str(script), "start", external=True)
        out = session.run("bash", str(script), "env", external=True, silent=True)
        for line in str(out).splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                session.env[key] = shlex.split(value)[0] if value else ""


def _stop_servers(session: nox.Session, started: list[str]) -> None:
    for name in reversed(started):
        session.run(
            "bash", str(SERVICES / f"{name}.sh"), "stop", external=True, success_codes=[0, 1]
        )


@nox.session
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """One distribution's tests (uses test servers only if TANK_TEST_* are set)."""
    _install(session, package)
    if package == "tank_store_rbd":
        _link_ceph_bindings(session)
    session.run("pytest", f"{package}/tests", *session.posargs)


@nox.session
def tests_all(session: nox.Session) -> None:
    """Every distribution, the example plugin and the end-to-end tests, on real servers."""
    _install(session, *[p for p in PACKAGES if p != "tank_core"])
    session.install(*[f"./{e.relative_to(ROOT)}" for e in EXAMPLES])
    session.install("requests", "boto3", "python-swiftclient")
    started: list[str] = []
    try:
        _start_servers(session, started)
        _link_ceph_bindings(session)
        paths = [f"{p}/tests" for p in PACKAGES] + [
            f"{e.relative_to(ROOT)}/tests" for e in EXAMPLES
        ]
        if (ROOT / "tests").is_dir():
            paths.append("tests")
        session.run("pytest", "--timeout=600", *paths, *session.posargs)
    finally:
        _stop_servers(session, started)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site into docs/_build/html; every warning is an error."""
    _install(session, *[p for p in PACKAGES if p != "tank_core"])
    session.install("sphinx>=8,<10", "myst-parser>=4,<6")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-q", "-b", "html", "docs", "docs/_build/html"
    )


@nox.session
def example(session: nox.Session) -> None:
    """The third-party example plugins, installed as an outside author would."""
    session.install("-e", "./tank_core[testing]", *[str(e) for e in EXAMPLES])
    session.run("pytest", *[f"{e}/tests" for e in EXAMPLES], *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check over the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over each distribution's src/."""
    _install(session, *[p for p in PACKAGES if p != "tank_core"])
    session.install("mypy", "types-requests")
    session.run("mypy", *[f"{p}/src" for p in PACKAGES])


@nox.session
@nox.parametrize("urllib3", URLLIB3)
def compat(session: nox.Session, urllib3: str) -> None:
    """The guarded HTTP client's tests (tank-store-http's, web-download's) on the lowest and
    the highest urllib3 tank-core's pin allows."""
    meta = tomllib.loads((ROOT / "tank_core" / "pyproject.toml").read_text())["project"]
    pin = next(r for r in map(Requirement, meta["dependencies"]) if r.name == "urllib3")
    if urllib3 not in pin.specifier:
        session.error(f"urllib3 {urllib3} is outside tank-core's pin {pin}")
    _install(session, "tank_store_http")
    session.install(f"urllib3=={urllib3}")
    session.run("python", "-c", "import urllib3; print('urllib3', urllib3.__version__)")
    session.run(
        "pytest", "tank_store_http/tests", "tank_core/tests/test_imports_web.py", *session.posargs
    )


@nox.session
def build(session: nox.Session) -> None:
    """Every distribution's wheel and sdist into dist/ (none is on PyPI yet); each must
    carry the LICENSE and, in its wheel, the py.typed marker."""
    session.install("build")
    out = ROOT / "dist"
    for old in [*out.glob("*.whl"), *out.glob("*.tar.gz")]:
        old.unlink()
    for dist in [*(ROOT / p for p in PACKAGES), *EXAMPLES]:
        session.run("python", "-m", "build", "--outdir", str(out), str(dist))
    built = sorted(out.glob("*.whl")) + sorted(out.glob("*.tar.gz"))
    if len(built) != 2 * (len(PACKAGES) + len(EXAMPLES)):
        session.error(f"expected a wheel and an sdist per distribution, got {built}")
    for path in built:
        if path.suffix == ".whl":
            names = zipfile.ZipFile(path).namelist()
            need = {"/licenses/LICENSE": "LICENSE", "/py.typed": "py.typed"}
        else:
            names = tarfile.open(path).getnames()
            need = {"/LICENSE": "LICENSE"}
        for suffix, what in need.items():
            if not any(n.endswith(suffix) for n in names):
                session.error(f"{path.name} carries no {what}")
    session.log(f"{len(built)} files in {out}: " + ", ".join(p.name for p in built))
