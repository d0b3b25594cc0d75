"""Test, lint and type-check sessions for every distribution of the monorepo.

Nothing is listed by hand: every top-level ``tank_*/pyproject.toml`` is a distribution.

    nox -s lint tests_all      # what CI runs (and the README's test command)
    nox -s "tests(package='tank_store_s3')"
    nox -s example typecheck

``tests_all`` starts the throwaway test servers (PostgreSQL, Ceph, Swift) from
``../shared/services`` (or ``$TANK_SERVICES``) when that folder exists, and stops them
afterwards; set ``TANK_START_SERVERS=0`` to use servers you started yourself (their
``TANK_TEST_*`` variables are passed through). Store tests whose server is missing skip
and say which variable to set.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = sorted(p.parent.name for p in ROOT.glob("tank_*/pyproject.toml"))
EXAMPLES = sorted(p.parent for p in ROOT.glob("examples/*/pyproject.toml"))
SERVICES = Path(os.environ.get("TANK_SERVICES", ROOT.parent / "shared" / "services"))
#: Servers started for the whole suite, in start order.
SERVERS = ("postgres", "swift", "ceph")
EXTRAS = {
    "tank_core": "[testing]",
    "tank_registry_sql": "[postgresql]",
    "tank_store_chase": "[keystone]",
}

nox.options.sessions = ["lint", "tests_all"]
nox.options.reuse_existing_virtualenvs = True


def _install(session: nox.Session, *packages: str) -> None:
    args = []
    for package in dict.fromkeys(("tank_core", *packages)):
        args += ["-e", f"./{package}{EXTRAS.get(package, '')}"]
    session.install("pytest", "pytest-timeout", *args)


def _link_ceph_bindings(session: nox.Session) -> None:
    """rados/rbd are Debian packages, not on PyPI: link them into the session's venv."""
    script = SERVICES / "ceph.sh"
    if script.exists() and list(Path("/usr/lib/python3/dist-packages").glob("rados.*.so")):
        session.run("bash", str(script), "python-link", session.virtualenv.location, external=True)


def _start_servers(session: nox.Session) -> list[str]:
    if os.environ.get("TANK_START_SERVERS", "1") == "0":
        return []
    if not SERVICES.is_dir():
        session.warn(f"{SERVICES} not found: store integration tests will skip")
        return []
    started = []
    for name in SERVERS:
        script = SERVICES / f"{name}.sh"
        session.log(f"starting {name} test server")
        session.run("bash", str(script), "start", external=True)
        started.append(name)
        out = session.run("bash", str(script), "env", external=True, silent=True)
        for line in str(out).splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                session.env[key] = shlex.split(value)[0] if value else ""
    return started


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
    started = _start_servers(session)
    try:
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
