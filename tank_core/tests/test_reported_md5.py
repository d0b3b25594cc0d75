"""Stores whose server reports the MD5 of what it stored (Swift's ETag): Backend.add
records that MD5 instead of computing its own, unless the client announced a checksum."""

from __future__ import annotations

import hashlib

import pytest

from tank import errors
from tank.store import Writer

from .conftest import MemoryBackend, MemoryConfig, MemoryWriter


class ReportingWriter(MemoryWriter):
    reports_md5 = True

    def __init__(self, backend: ReportingBackend, key: str) -> None:
        super().__init__(backend, key)
        self.report = backend.report

    def commit(self) -> str:
        location = super().commit()
        data = self.backend.objects[self.key]
        self.stored_md5 = hashlib.md5(data).hexdigest() if self.report is HONEST else self.report
        return location

    def abort(self) -> None:  # like a real store: undo a commit that already happened
        super().abort()
        if self.committed:
            self.backend.objects.pop(self.key, None)


HONEST = "the MD5 of the data"


class ReportingBackend(MemoryBackend):
    #: What its writers report as the MD5 (HONEST: the real one).
    report: str | None = HONEST

    def open_writer(self, image_id: str, size: int | None) -> Writer:
        writer = ReportingWriter(self, image_id)
        self.writers.append(writer)
        return writer


@pytest.fixture
def store() -> ReportingBackend:
    return ReportingBackend(MemoryConfig())


DATA = b"tank" * 100_000


def test_the_stores_md5_is_recorded(store: ReportingBackend) -> None:
    stored = store.add("a", iter([DATA[:1000], DATA[1000:]]))
    assert stored.checksums.md5 == hashlib.md5(DATA).hexdigest()
    assert stored.checksums.hash_value == hashlib.sha256(DATA).hexdigest()
    # it is the store's word that counts: a (valid) MD5 it reports is what Tank records
    store.report = "0123456789abcdef0123456789ABCDEF"
    assert store.add("b", iter([DATA])).checksums.md5 == "0123456789abcdef0123456789abcdef"


def test_the_multihash_is_still_computed_by_tank(store: ReportingBackend) -> None:
    stored = store.add("m", iter([DATA[:7], DATA[7:]]), hash_algo="sha512")
    assert stored.checksums.md5 == hashlib.md5(DATA).hexdigest()  # the store's
    assert stored.checksums.hash_algo == "sha512"
    assert stored.checksums.hash_value == hashlib.sha512(DATA).hexdigest()


@pytest.mark.parametrize("report", [None, "", "nope", "0" * 31, "g" * 32, "0" * 33])
def test_a_report_that_is_not_an_md5_undoes_the_upload(
    store: ReportingBackend, report: str | None
) -> None:
    store.report = report
    with pytest.raises(errors.StoreError, match="not an MD5"):
        store.add("c", iter([DATA]))
    assert store.objects == {}
    assert store.writers[-1].aborted


def test_an_announced_checksum_is_still_verified_before_commit(store: ReportingBackend) -> None:
    with pytest.raises(errors.ChecksumMismatch):
        store.add("d", iter([DATA]), checksum="0" * 32)
    assert not store.writers[-1].committed and store.objects == {}
    good = hashlib.md5(DATA).hexdigest()
    store.report = "f" * 32  # ignored: Tank computed the MD5 itself to verify it
    assert store.add("e", iter([DATA]), checksum=good.upper()).checksums.md5 == good
