"""The import pool: bounded, one import per image, and a shutdown that says what is left."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from tank import errors
from tank.imports.runner import ImportRunner

WAIT = 10  # seconds; a deadline for events that must happen, never a measured time


@pytest.fixture
def runner() -> Iterator[ImportRunner]:
    pool = ImportRunner(workers=2)
    yield pool
    pool.shutdown(wait=False)


class Gate:
    """A job that says it started, then waits until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.ran = False

    def __call__(self) -> str:
        self.started.set()
        assert self.release.wait(WAIT)
        self.ran = True
        return "done"


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_jobs_run_in_the_background_with_their_result(runner: ImportRunner) -> None:
    gate = Gate()
    (image,) = ids(1)
    future = runner.submit(image, gate)
    assert gate.started.wait(WAIT)
    assert runner.busy(image) and not future.done()
    gate.release.set()
    assert future.result(WAIT) == "done"
    assert not runner.busy(image)
    assert runner.pending() == []


def test_at_most_workers_jobs_run_at_once(runner: ImportRunner) -> None:
    gates = [Gate() for _ in range(3)]
    images = ids(3)
    futures = [runner.submit(i, g) for i, g in zip(images, gates, strict=True)]
    assert gates[0].started.wait(WAIT) and gates[1].started.wait(WAIT)
    assert not gates[2].started.is_set()  # queued: both workers are busy
    assert runner.pending() == sorted(images)
    gates[0].release.set()
    assert gates[2].started.wait(WAIT)  # it starts when a worker is free
    for gate in gates:
        gate.release.set()
    assert [f.result(WAIT) for f in futures] == ["done"] * 3


def test_one_import_per_image_at_a_time(runner: ImportRunner) -> None:
    gate = Gate()
    (image,) = ids(1)
    first = runner.submit(image, gate)
    with pytest.raises(errors.Conflict, match=image):
        runner.submit(image, Gate())
    gate.release.set()
    first.result(WAIT)
    again = Gate()
    again.release.set()
    assert runner.submit(image, again).result(WAIT) == "done"  # once finished, allowed again


def test_a_failing_job_is_logged_and_frees_the_image(
    runner: ImportRunner, caplog: pytest.LogCaptureFixture
) -> None:
    (image,) = ids(1)

    def fails() -> None:
        raise errors.ImportStepFailed("qemu-img convert failed: no space")

    future = runner.submit(image, fails)
    with pytest.raises(errors.ImportStepFailed):
        future.result(WAIT)
    assert f"import of image {image} failed" in caplog.text
    assert not runner.busy(image)


@pytest.mark.parametrize("wait", [True, False])
def test_shutdown_reports_the_imports_that_did_not_finish(wait: bool) -> None:
    runner = ImportRunner(workers=1)
    running, queued = Gate(), Gate()
    first, second = ids(2)
    runner.submit(first, running)
    assert running.started.wait(WAIT)
    runner.submit(second, queued)
    if wait:  # the running job is let finish; the queued one is dropped
        threading.Timer(0.05, running.release.set).start()
        assert runner.shutdown(wait=True) == [second]
        assert running.ran
    else:  # abandoned: a restart finds both by their os_glance_import_task
        assert sorted(runner.shutdown(wait=False)) == sorted([first, second])
        assert runner.stopping.is_set()
        running.release.set()
    assert not queued.started.is_set()
    with pytest.raises(errors.ShuttingDown):
        runner.submit(str(uuid.uuid4()), Gate())


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers"):
        ImportRunner(workers=0)
