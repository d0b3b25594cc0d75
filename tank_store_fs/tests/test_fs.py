"""What the filesystem store adds to the contract: atomic durable writes, cleanup on a
full disk, refusing every location outside the data directory, and start-up checks."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tank import errors
from tank.config import TankConfig, build, load
from tank.errors import ConfigError
from tank.plugins import make_plugin_manager
from tank.stores import StoreSet
from tank.testing import generated_stream, irregular_chunks, pattern, read_all
from tank_store_fs import FilesystemBackend
from tank_store_fs.backend import TEMP_PREFIX, translate
from tank_store_fs.direct import DirectWriter
from tank_store_fs.location import FileLocation

from .conftest import make_backend, stored

MiB = 1 << 20


def new_id() -> str:
    return str(uuid.uuid4())


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *options: str) -> Iterator[Path]:
    """A small tmpfs mounted at ``path`` (root only; skips otherwise), unmounted after."""
    path.mkdir(parents=True)
    opts = ",".join((f"size={size}", *options))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tank-test", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


# --- locations ----------------------------------------------------------------------


def test_location_round_trip_is_percent_quoted() -> None:
    loc = FileLocation.parse("file:///srv/my%20images/100%25%3F%23")
    assert str(loc.path) == "/srv/my images/100%?#"
    assert loc.to_uri() == "file:///srv/my%20images/100%25%3F%23"
    assert FileLocation.parse(loc.to_uri()) == loc
    assert loc.redacted() == loc.to_uri()
    assert FileLocation.parse("file://localhost/a/b").path == FileLocation.parse("file:/a/b").path


@pytest.mark.parametrize(
    "uri",
    [
        "file:///srv/images/x",
        "FILE:///srv/images/x",
        "file://localhost/srv/images/x",
        "file://LocalHost/srv/images/x",
        "file:/srv/images/x",
        "file:////srv/images/x",
        "file:///srv//images///x",
        "file:///%73rv/images/%78",
    ],
)
def test_every_spelling_of_a_file_has_one_uri(uri: str) -> None:
    """Issue #15: two spellings registered as two images' data."""
    assert FileLocation.parse(uri).to_uri() == "file:///srv/images/x"


def test_canonical_location_is_in_the_data_directory_as_configured(
    backend: FilesystemBackend, datadir: Path, tmp_path: Path
) -> None:
    image_id = new_id()
    stored = backend.add(image_id, iter([b"abc"])).location
    assert backend.canonical_location(f"FILE://localhost/{datadir}//{image_id}") == stored
    link = tmp_path / "link-to-datadir"
    link.symlink_to(datadir, target_is_directory=True)
    linked = FilesystemBackend(FilesystemBackend.Config(datadir=str(link)), name="file")
    assert linked.canonical_location(f"file://{os.path.realpath(link)}/{image_id}") == (
        f"file://{link}/{image_id}"
    )
    with pytest.raises(errors.BadLocation):
        backend.canonical_location("file:///etc/passwd")
    with pytest.raises(errors.UnknownScheme):
        backend.canonical_location("s3://bucket/x")


@pytest.mark.parametrize(
    "uri",
    [
        "file://otherhost/srv/images/x",
        "file://user:secret@host/srv/images/x",
        "file:///srv/images/../etc/passwd",
        "file:///srv/images/%2e%2e/etc/passwd",
        "file:///srv/images/..%2fetc/passwd",
        "file:///srv/./images/x",
        "file:///srv/images/x%00.img",
        "file:relative/path",
        "file:///srv/images/x?version=2",
        "file:///srv/images/%ff",
        "s3://bucket/x",
    ],
)
def test_bad_locations_do_not_parse(uri: str) -> None:
    with pytest.raises(errors.BadLocation) as info:
        FileLocation.parse(uri)
    assert "secret" not in str(info.value)


def test_written_location_names_the_file(backend: FilesystemBackend, datadir: Path) -> None:
    image_id = new_id()
    stored_data = backend.add(image_id, iter([b"abc"]))
    assert stored_data.location == f"file://{datadir}/{image_id}"
    assert backend.get_size(stored_data.location) == 3
    assert backend.direct_url(stored_data.location) == stored_data.location
    assert backend.direct_url(f"file://{datadir}/{new_id()}") is None
    assert (datadir / image_id).read_bytes() == b"abc"
    assert stat.S_IMODE((datadir / image_id).stat().st_mode) & 0o007 == 0  # not world-readable


# --- refusing locations outside the data directory ------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not an image")
    return secret


def attack_locations(datadir: Path, outside: Path) -> dict[str, str]:
    """Each way a location could try to reach a file it must not."""
    (datadir / "to-outside").symlink_to(outside)
    (datadir / "real").write_bytes(b"inside")
    (datadir / "to-inside").symlink_to(datadir / "real")
    (datadir / "linked-dir").symlink_to(outside.parent, target_is_directory=True)
    (datadir / "sub").mkdir()
    (datadir / "sub" / "file").write_bytes(b"nested")
    (datadir / f"{TEMP_PREFIX}upload").write_bytes(b"in progress")
    os.mkfifo(datadir / "fifo")
    return {
        "dotdot": f"file://{datadir}/../{outside.name}",
        "quoted-dotdot": f"file://{datadir}/%2E%2E/{outside.name}",
        "absolute-elsewhere": f"file://{outside}",
        "other-host": f"file://otherhost{datadir}/real",
        "symlink-out": f"file://{datadir}/to-outside",
        "symlink-in": f"file://{datadir}/to-inside",
        "through-symlinked-dir": f"file://{datadir}/linked-dir/{outside.name}",
        "subdirectory": f"file://{datadir}/sub/file",
        "temp-file": f"file://{datadir}/{TEMP_PREFIX}upload",
        "datadir-itself": f"file://{datadir}",
        "fifo": f"file://{datadir}/fifo",
    }


ATTACKS = [
    "dotdot",
    "quoted-dotdot",
    "absolute-elsewhere",
    "other-host",
    "symlink-out",
    "symlink-in",
    "through-symlinked-dir",
    "subdirectory",
    "temp-file",
    "datadir-itself",
    "fifo",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_locations_outside_datadir_are_refused(
    backend: FilesystemBackend, datadir: Path, outside: Path, attack: str
) -> None:
    location = attack_locations(datadir, outside)[attack]
    before = {p.name: p.lstat().st_ino for p in datadir.iterdir()}
    operations = {
        "read": lambda loc: read_all(backend, loc),
        "get_size": backend.get_size,
        "delete": backend.delete,
    }
    for name, operation in operations.items():
        with pytest.raises(errors.BadLocation):
            operation(location)
            pytest.fail(f"{name} accepted {location}")
    assert backend.direct_url(location) is None
    assert outside.read_bytes() == b"not an image"
    assert {p.name: p.lstat().st_ino for p in datadir.iterdir()} == before


def test_symlinked_datadir_is_followed_by_configuration(tmp_path: Path) -> None:
    """The configured datadir may itself be a symlink: that is the admin's choice."""
    real = tmp_path / "real-images"
    real.mkdir()
    (tmp_path / "images").symlink_to(real)
    backend = make_backend(tmp_path / "images")
    location = backend.add(new_id(), iter([b"data"])).location
    assert read_all(backend, location) == b"data"
    resolved = location.replace(str(tmp_path / "images"), str(real))
    assert backend.get_size(resolved) == 4


@pytest.mark.parametrize(
    "image_id", ["../escape", "a/b", ".hidden", "", "x" * 300, "id\x00", "..", "-rf"]
)
def test_unsafe_image_ids_are_refused(
    backend: FilesystemBackend, datadir: Path, image_id: str
) -> None:
    with pytest.raises(errors.Invalid):
        backend.add(image_id, iter([b"x"]))
    assert stored(datadir) == set()
    assert stored(datadir.parent) == {datadir.name}


# --- atomic, durable writes ---------------------------------------------------------------


def test_nothing_visible_under_the_final_name_while_writing(
    backend: FilesystemBackend, datadir: Path, mode: str
) -> None:
    image_id = new_id()
    final = datadir / image_id
    seen: list[set[str]] = []

    def source() -> Iterator[bytes]:
        for _ in range(3):
            yield b"x" * MiB
            assert not final.exists()
            seen.append(stored(datadir))

    location = backend.add(image_id, source()).location
    assert final.stat().st_size == 3 * MiB
    assert stored(datadir) == {image_id}
    if mode == "named":  # a hidden temporary file, renamed at the end
        assert all(len(s) == 1 and s.pop().startswith(TEMP_PREFIX + image_id) for s in seen)
    else:  # an unnamed O_TMPFILE file: nothing in the directory at all
        assert seen == [set()] * 3
    assert read_all(backend, location) == b"x" * 3 * MiB


def test_file_and_directory_are_fsynced_around_the_publish(
    backend: FilesystemBackend, datadir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_id = new_id()
    calls: list[tuple[str, bool]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        calls.append((kind, (datadir / image_id).exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    backend.add(image_id, iter([b"durable"]))
    # The data reaches the disk before it gets its name; the name reaches it after.
    assert calls == [("file", False), ("dir", True)]


def test_abort_removes_everything_and_is_idempotent(
    backend: FilesystemBackend, datadir: Path
) -> None:
    fds = open_fds()
    writer = backend.open_writer(new_id(), None)
    writer.write(b"partial")
    writer.abort()
    writer.abort()
    assert stored(datadir) == set()
    assert open_fds() == fds
    with pytest.raises(errors.StoreError):
        writer.commit()


def test_duplicate_at_commit_keeps_the_first(backend: FilesystemBackend, datadir: Path) -> None:
    """Two uploads of one id racing: the no-clobber publish lets exactly one win."""
    image_id = new_id()
    first = backend.open_writer(image_id, None)
    second = backend.open_writer(image_id, None)
    first.write(b"first")
    second.write(b"second")
    location = first.commit()
    with pytest.raises(errors.Duplicate):
        second.commit()
    second.abort()
    assert read_all(backend, location) == b"first"
    assert stored(datadir) == {image_id}


# --- full disk and other write errors -----------------------------------------------------------


@pytest.mark.parametrize("known_size", [False, True])
def test_full_disk_is_storage_full_and_leaves_nothing(
    tmp_path: Path, mode: str, known_size: bool
) -> None:
    with tmpfs(tmp_path / "small", "2m") as mount:
        backend = make_backend(mount / "images", mode)
        free_before = os.statvfs(mount).f_bavail
        consumed: list[int] = []

        def source() -> Iterator[bytes]:
            for chunk in generated_stream(4 * MiB, chunk=256 * 1024):
                consumed.append(len(chunk))
                yield chunk

        with pytest.raises(errors.StorageFull, match=r"space|fit"):
            backend.add(new_id(), source(), size=4 * MiB if known_size else None)
        assert stored(mount / "images") == set()
        assert os.statvfs(mount).f_bavail == free_before
        if known_size:  # refused before reading any data
            assert consumed == []
        # The store still works once there is room.
        location = backend.add(new_id(), iter([b"fits"])).location
        assert read_all(backend, location) == b"fits"


@pytest.mark.parametrize(
    "code,error",
    [
        (errno.ENOSPC, errors.StorageFull),
        (errno.EDQUOT, errors.StorageFull),
        (errno.EFBIG, errors.StorageFull),
        (errno.EACCES, errors.Forbidden),
        (errno.EPERM, errors.Forbidden),
        (errno.EIO, errors.StoreError),
    ],
)
def test_write_errors_are_translated_and_clean_up(
    backend: FilesystemBackend,
    datadir: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    error: type[Exception],
) -> None:
    real_write = os.write
    written = [0]

    def write(fd: int, data: bytes) -> int:
        if written[0] >= MiB:
            raise OSError(code, os.strerror(code))
        written[0] += len(data)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(error) as info:
        backend.add(new_id(), generated_stream(3 * MiB))
    assert os.strerror(code) in str(info.value)
    monkeypatch.undo()
    assert stored(datadir) == set()


# --- start-up: creating the data directory, disabling writes -------------------------------------


def store_set(datadir: Path) -> StoreSet:
    config = TankConfig(
        source="test.toml", data_dir=datadir.parent, stores={"file": {"datadir": str(datadir)}}
    )
    return StoreSet.from_config(config, make_plugin_manager(environ={}))


def test_embedded_defaults_create_the_data_directory(tmp_path: Path) -> None:
    config = load(data_dir=tmp_path / "tank", environ={})
    stores = StoreSet.from_config(config, make_plugin_manager(environ={}))
    backend = stores.get("file")
    assert isinstance(backend, FilesystemBackend)
    assert backend.datadir == tmp_path / "tank" / "images"
    assert backend.datadir.is_dir()
    assert backend.write_disabled is None


def test_uncreatable_datadir_disables_writes(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    stores = store_set(tmp_path / "a-file" / "images")
    backend = stores.get("file")
    assert backend.write_disabled is not None
    assert "cannot be created" in backend.write_disabled
    assert str(tmp_path / "a-file" / "images") in backend.write_disabled
    with pytest.raises(errors.ReadOnlyStore, match="cannot be created"):
        backend.add(new_id(), iter([b"x"]))


def test_read_only_datadir_disables_writes_but_reads_work(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "4m") as mount:
        datadir = mount / "images"
        location = make_backend(datadir).add(new_id(), iter([b"kept"])).location
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        backend = store_set(datadir).get("file")
        assert backend.write_disabled is not None
        assert "not writable" in backend.write_disabled
        assert "Read-only file system" in backend.write_disabled
        with pytest.raises(errors.ReadOnlyStore, match="Read-only file system"):
            backend.add(new_id(), iter([b"x"]))
        assert read_all(backend, location) == b"kept"
        assert backend.get_size(location) == 4


def test_config_is_checked_with_the_key_named() -> None:
    where = "tank.toml [stores.file]"
    config = build(FilesystemBackend.Config, {"datadir": "/srv/images"}, where=where)
    assert config.read_chunk_size == MiB
    assert str(config.datadir) == "/srv/images"
    bad = [
        ({"datadir": "relative/images"}, r"\[stores.file\] datadir: must be an absolute path"),
        ({}, "datadir: required key is missing"),
        ({"datadir": "/x", "read_chunk_size": 0}, "read_chunk_size"),
        ({"datadir": "/x", "read_chunk_size": 1 << 30}, "read_chunk_size"),
        ({"datadir": "/x", "chunk": 1}, "chunk: unknown key"),
        ({"datadir": "/x", "thin_provisioning": "yes"}, "thin_provisioning"),
    ]
    for section, message in bad:
        with pytest.raises(ConfigError, match=message):
            build(FilesystemBackend.Config, section, where=where)


def test_registered_through_the_entry_point() -> None:
    plugins = make_plugin_manager(environ={})
    assert plugins.store_types()["file"] is FilesystemBackend


# --- reading ------------------------------------------------------------------------------


def test_reads_use_the_configured_chunk_size_and_close_the_file(datadir: Path) -> None:
    backend = make_backend(datadir, read_chunk_size=64 * 1024)
    data = pattern(200 * 1024 + 5)
    location = backend.add(new_id(), io.BytesIO(data)).location
    fds = open_fds()
    result = backend.get(location, 10)
    chunks = list(result)
    assert [len(c) for c in chunks] == [65536, 65536, 65536, 200 * 1024 + 5 - 10 - 3 * 65536]
    assert all(type(c) is bytes for c in chunks)
    assert b"".join(chunks) == data[10:]
    assert open_fds() == fds  # closed at the end, without close()
    backend.get(location).close()  # closed without being iterated
    assert open_fds() == fds


def test_read_offers_its_one_open_file_for_sendfile(
    backend: FilesystemBackend, datadir: Path
) -> None:
    data = pattern(MiB + 7)
    location = backend.add(new_id(), io.BytesIO(data)).location
    fds = open_fds()
    with backend.get(location, 5, 100) as result:
        assert result.fd is not None
        assert open_fds() - fds == {str(result.fd)}  # one open serves chunks and sendfile
        assert (result.offset, result.size, result.total_size) == (5, 100, len(data))
        assert os.fstat(result.fd).st_ino == (datadir / location.rsplit("/", 1)[1]).stat().st_ino
        os.lseek(result.fd, 0, os.SEEK_SET)  # chunks do not depend on the file position
        assert b"".join(result.chunks) == data[5:105]
    assert result.fd is None
    assert open_fds() == fds


def test_file_truncated_while_reading_is_an_error(
    backend: FilesystemBackend, datadir: Path
) -> None:
    image_id = new_id()
    location = backend.add(image_id, generated_stream(3 * MiB)).location
    with backend.get(location) as result:
        next(result.chunks)
        os.truncate(datadir / image_id, MiB)
        with pytest.raises(errors.StoreError, match="truncated"):
            list(result.chunks)


def test_missing_datadir_reads_as_not_found(tmp_path: Path) -> None:
    backend = FilesystemBackend(FilesystemBackend.Config(datadir=str(tmp_path / "none")))
    location = f"file://{tmp_path}/none/{new_id()}"
    with pytest.raises(errors.NotFound):
        backend.get(location)
    with pytest.raises(errors.NotFound):
        backend.delete(location)


def test_filesystem_without_hard_links_disables_writes(
    datadir: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing is a hard link: a filesystem that refuses them is caught at start-up."""

    def link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "link", link)
    backend = make_backend(datadir, mode, check=False)
    with pytest.raises(errors.BadStoreConfig, match=r"not writable: Operation not permitted"):
        backend.check_writable()
    assert stored(datadir) == set()


# --- thin provisioning ----------------------------------------------------------------------

ZERO_RUNS = {
    "leading": bytes(3 * MiB + 5) + pattern(MiB + 3),
    "middle": pattern(100_000) + bytes(5 * MiB + 3) + pattern(70_000, seed=1),
    "trailing": pattern(MiB, seed=2) + bytes(4 * MiB + 1),
    "all-zero": bytes(6 * MiB),
    "zero-length": b"",
    "zeros-inside-blocks": (b"\0" * 4095 + b"\1") * 700,  # no whole zero block
}


@pytest.mark.parametrize("thin", [True, False], ids=["thin", "thick"])
@pytest.mark.parametrize("name", list(ZERO_RUNS))
def test_zero_runs_round_trip(datadir: Path, mode: str, thin: bool, name: str) -> None:
    data = ZERO_RUNS[name]
    backend = make_backend(datadir, mode, thin_provisioning=thin)
    stored_data = backend.add(new_id(), irregular_chunks(data), size=len(data))
    assert stored_data.size == len(data)
    assert stored_data.checksums.md5 == hashlib.md5(data).hexdigest()
    assert stored_data.checksums.hash_value == hashlib.sha256(data).hexdigest()
    assert backend.get_size(stored_data.location) == len(data)
    assert read_all(backend, stored_data.location) == data
    middle = len(data) // 3
    assert read_all(backend, stored_data.location, middle, MiB) == data[middle : middle + MiB]


def allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


@pytest.mark.parametrize("chunks", ["irregular", "one"])
def test_thin_files_are_sparse_and_thick_ones_are_not(
    tmp_path: Path, mode: str, chunks: str
) -> None:
    """Zero runs become holes whatever the chunk boundaries: the writer looks for zeros
    in blocks aligned on the file offset, not on the chunks it is given."""
    data = bytes(8 * MiB + 100) + pattern(65536) + bytes(16 * MiB) + pattern(4096) + bytes(8 * MiB)
    sizes = {}
    for thin in (True, False):
        backend = make_backend(tmp_path / str(thin), mode, thin_provisioning=thin)
        source = irregular_chunks(data) if chunks == "irregular" else iter([data])
        location = backend.add(new_id(), source)
        path = tmp_path / str(thin) / location.location.rsplit("/", 1)[1]
        assert path.stat().st_size == len(data)  # the trailing hole counts
        assert path.read_bytes() == data
        sizes[thin] = allocated(path)
    assert sizes[True] <= 512 * 1024, "thin: more than the data's blocks are allocated"
    assert sizes[False] >= len(data), "thick: the file has holes"


def test_thin_all_zero_image_allocates_nothing(tmp_path: Path) -> None:
    backend = make_backend(tmp_path / "images", thin_provisioning=True)
    location = backend.add(new_id(), iter([bytes(MiB)] * 5)).location
    path = tmp_path / "images" / location.rsplit("/", 1)[1]
    assert path.stat().st_size == 5 * MiB
    assert allocated(path) == 0


def test_thin_store_skips_the_free_space_check(datadir: Path) -> None:
    """The room a thin image needs is unknown until its data is seen: an announced size
    larger than the free space is no reason to refuse a mostly-zero image."""
    backend = make_backend(datadir, thin_provisioning=True)
    st = os.statvfs(datadir)
    huge = st.f_bavail * st.f_frsize + 64 * MiB
    data = iter([pattern(4096)])
    with pytest.raises(errors.SizeMismatch):  # not StorageFull: the data was read
        backend.add(new_id(), data, size=huge)
    assert stored(datadir) == set()
    with pytest.raises(errors.StorageFull):
        make_backend(datadir).add(new_id(), iter([b"x"]), size=huge)


def test_thin_provisioning_is_set_in_a_store_section(tmp_path: Path) -> None:
    (tmp_path / "tank.toml").write_text(
        'default_store = "sparse"\n[stores.sparse]\ntype = "file"\n'
        f'datadir = "{tmp_path / "images"}"\nthin_provisioning = true\n'
    )
    config = load(tmp_path / "tank.toml", data_dir=tmp_path, environ={})
    backend = StoreSet.from_config(config, make_plugin_manager(environ={})).get()
    assert isinstance(backend, FilesystemBackend) and backend.config.thin_provisioning
    location = backend.add(new_id(), iter([bytes(4 * MiB), b"end"])).location
    path = tmp_path / "images" / location.rsplit("/", 1)[1]
    assert path.stat().st_size == 4 * MiB + 3
    assert allocated(path) < MiB


# --- direct I/O ------------------------------------------------------------------------------


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
@pytest.mark.parametrize("size", [0, 1, 4095, 4096, MiB - 1, MiB, 3 * MiB + 4097])
def test_direct_and_buffered_writes_round_trip(datadir: Path, direct: bool, size: int) -> None:
    data = pattern(size, seed=size % 7)
    backend = make_backend(datadir, "tmpfile", direct_io=direct)
    stored_data = backend.add(new_id(), irregular_chunks(data), size=size)
    assert stored_data.checksums.md5 == hashlib.md5(data).hexdigest()
    assert backend.get_size(stored_data.location) == size
    assert read_all(backend, stored_data.location) == data


def test_uploads_bypass_the_page_cache_where_the_filesystem_allows(datadir: Path) -> None:
    backend = make_backend(datadir, "tmpfile")
    writer = backend.open_writer(new_id(), None)
    try:
        direct = writer._direct is not None  # type: ignore[attr-defined]
        flags = fcntl.fcntl(writer._fd, fcntl.F_GETFL)  # type: ignore[attr-defined]
    finally:
        writer.abort()
    assert bool(flags & os.O_DIRECT) == direct
    if not direct:
        pytest.skip(f"{datadir} does not take O_DIRECT")
    thin = make_backend(datadir, "tmpfile", thin_provisioning=True).open_writer(new_id(), None)
    try:  # holes are made with lseek through the page cache
        assert thin._direct is None  # type: ignore[attr-defined]
    finally:
        thin.abort()


def test_a_refused_direct_write_goes_through_the_page_cache(tmp_path: Path) -> None:
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        writer = DirectWriter(fd, size=8192)  # O_DIRECT never set: unaligned writes work
        writer.write(b"x" * 10_000)
        writer.finish()
        writer.close()
    finally:
        os.close(fd)
    assert path.read_bytes() == b"x" * 10_000


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE])
def test_running_out_of_file_descriptors_is_unavailable_not_a_store_error(code: int) -> None:
    """The outside probe's finding: an upload at the open-file limit answered 500."""
    error = translate(OSError(code, os.strerror(code)), "opening", store="file", location="x")
    assert isinstance(error, errors.StoreUnavailable) and error.http_status == 503


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only); skipped where it cannot be mounted."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace')[:200]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_full_at_start_up_is_413_and_writable_again_once_freed(tiny_tmpfs: Path) -> None:
    """The reliability issue's finding: a store full at start-up was read-only (403) until
    tank-api restarted, whatever space was freed."""
    filler = tiny_tmpfs / "filler"
    with open(filler, "wb") as f, contextlib.suppress(OSError):
        f.write(b"x" * (4 << 20))
    backend = store_set(tiny_tmpfs / "images").get("file")
    assert backend.write_disabled
    with pytest.raises(errors.StorageFull):
        backend.add(new_id(), iter([b"data"]))
    filler.unlink()
    backend.RECHECK_SECONDS = 0  # type: ignore[misc]  # probe again on the next write
    backend._recheck_at = 0  # the back-off has passed
    stored_data = backend.add(new_id(), iter([b"data"]))
    assert backend.write_disabled is None
    assert read_all(backend, stored_data.location) == b"data"


# --- what an upload whose process died leaves (remove_partial) --------------------------


def test_remove_partial_cleans_up_after_a_writer_killed_midway(
    backend: FilesystemBackend, datadir: Path, mode: str
) -> None:
    """A process killed (SIGKILL) mid-write: an unnamed file vanishes with it, a named
    temporary file stays until ``remove_partial`` removes it; other data stays."""
    other = new_id()
    backend.add(other, iter([b"keep"]))
    image_id = new_id()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the uploading process
        try:
            writer = backend.open_writer(image_id, None)
            writer.write(b"x" * MiB)
            os.write(ready_w, b"1")
            time.sleep(60)  # killed here
        finally:
            os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"1"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(ready_w)
    left = stored(datadir) - {other}
    if mode == "named":
        assert [n.startswith(f"{TEMP_PREFIX}{image_id}.") for n in left] == [True]
    else:
        assert left == set()
    assert backend.remove_partial(image_id) == sorted(left)
    assert stored(datadir) == {other}
    assert backend.remove_partial(image_id) == []


def test_remove_partial_removes_data_committed_but_never_recorded(
    backend: FilesystemBackend, datadir: Path
) -> None:
    """Killed between the store's commit and the registry's record: the file is there
    under the image's name, and no image points at it."""
    image_id, other = new_id(), new_id()
    backend.add(image_id, iter([b"orphan"]))
    backend.add(other, iter([b"keep"]))
    assert backend.remove_partial(image_id) == [image_id]
    assert stored(datadir) == {other}


def test_remove_partial_without_a_data_directory(tmp_path: Path) -> None:
    backend = make_backend(tmp_path / "never-made", check=False)
    assert backend.remove_partial(new_id()) == []
