"""Import steps on real files: gzip/xz/zstd archives and qemu-img images."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import attrs
import pytest

from tank import config, errors, hookimpl
from tank.imports.convert import Convert
from tank.imports.decompress import Decompress
from tank.imports.inject import InjectMetadata
from tank.imports.staging import Staging
from tank.imports.steps import ImportStep, StepResult, build_steps
from tank.model import Image
from tank.plugins import make_plugin_manager

PAYLOAD = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(40000))  # 1.25 MiB
MiB = 1 << 20

needs_qemu_img = pytest.mark.skipif(
    shutil.which("qemu-img") is None, reason="qemu-img missing (Debian package qemu-utils)"
)
needs_zstd = pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd missing")


@pytest.fixture
def staging(tmp_path: Path) -> Staging:
    return Staging(tmp_path / "staging")


def image(disk_format: str | None = "raw", **kw: Any) -> Image:
    return Image(id=str(uuid.uuid4()), disk_format=disk_format, container_format="bare", **kw)


def stage(staging: Staging, img: Image, path: Path) -> Path:
    """Put ``path`` into the staging area as ``img``'s uploaded data."""
    with path.open("rb") as f:
        return staging.write(img.id, iter(lambda: f.read(MiB), b""), max_size=1 << 40).path


def compressed(tmp_path: Path, kind: str, data: bytes) -> Path:
    raw = tmp_path / "payload"
    raw.write_bytes(data)
    if kind == "gzip":
        out = tmp_path / "payload.gz"
        out.write_bytes(gzip.compress(data))
    elif kind == "xz":
        out = tmp_path / "payload.xz"
        out.write_bytes(lzma.compress(data))
    else:
        out = tmp_path / "payload.zst"
        subprocess.run(["zstd", "-q", "-f", str(raw), "-o", str(out)], check=True)
    return out


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def names(staging: Staging) -> list[str]:
    return sorted(os.listdir(staging.directory))


# --- decompress ---------------------------------------------------------------------------

KINDS = ["gzip", "xz", pytest.param("zstd", marks=needs_zstd)]


@pytest.mark.parametrize("kind", KINDS)
def test_decompress_real_archives(tmp_path: Path, staging: Staging, kind: str) -> None:
    img = image()
    path = stage(staging, img, compressed(tmp_path, kind, PAYLOAD))
    result = Decompress(Decompress.Config(), staging=staging, size_cap=1 << 30).run(path, img)
    assert result.path != path and path.read_bytes() != PAYLOAD  # the input is left as it was
    assert result.path.read_bytes() == PAYLOAD
    assert result.changes == {
        "size": len(PAYLOAD),
        "checksum": hashlib.md5(PAYLOAD).hexdigest(),
        "os_hash_algo": "sha256",
        "os_hash_value": hashlib.sha256(PAYLOAD).hexdigest(),
    }


@needs_qemu_img
def test_steps_hash_their_output_with_the_staging_areas_multihash(tmp_path: Path) -> None:
    staging = Staging(tmp_path / "staging", hash_algo="sha3_256")
    img = image()
    path = stage(staging, img, compressed(tmp_path, "gzip", PAYLOAD))
    result = Decompress(Decompress.Config(), staging=staging, size_cap=1 << 30).run(path, img)
    assert result.changes["os_hash_algo"] == "sha3_256"
    assert result.changes["os_hash_value"] == hashlib.sha3_256(PAYLOAD).hexdigest()
    qemu_img("create", "-f", "qcow2", str(tmp_path / "small.qcow2"), "1M")
    img = image("qcow2")
    converted = convert(staging).run(stage(staging, img, tmp_path / "small.qcow2"), img)
    assert converted.changes["os_hash_algo"] == "sha3_256"
    assert converted.changes["os_hash_value"] == hashlib.sha3_256(bytes(MiB)).hexdigest()


def test_uncompressed_data_passes_through(tmp_path: Path, staging: Staging) -> None:
    img = image()
    raw = tmp_path / "raw"
    raw.write_bytes(PAYLOAD)
    path = stage(staging, img, raw)
    result = Decompress(Decompress.Config(), staging=staging, size_cap=1 << 30).run(path, img)
    assert result == StepResult(path)
    assert names(staging) == [img.id]


@pytest.mark.parametrize("kind", KINDS)
def test_a_decompression_bomb_is_refused(tmp_path: Path, staging: Staging, kind: str) -> None:
    img = image()
    bomb = compressed(tmp_path, kind, bytes(64 * MiB))
    assert bomb.stat().st_size < MiB
    path = stage(staging, img, bomb)
    step = Decompress(Decompress.Config(), staging=staging, size_cap=4 * MiB)
    with pytest.raises(errors.ImageTooLarge, match="inflates to more than the 4194304 bytes"):
        step.run(path, img)
    assert names(staging) == [img.id]  # no partial output


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_archives_fail_cleanly(tmp_path: Path, staging: Staging, kind: str) -> None:
    img = image()
    whole = compressed(tmp_path, kind, PAYLOAD).read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(whole[: len(whole) // 2])
    path = stage(staging, img, cut)
    step = Decompress(Decompress.Config(), staging=staging, size_cap=1 << 30)
    with pytest.raises(errors.Invalid, match=f"the {kind} data is damaged or cut short"):
        step.run(path, img)
    assert names(staging) == [img.id]


# --- convert ------------------------------------------------------------------------------


def convert(staging: Staging, to: str = "raw", cap: int = 1 << 30) -> Convert:
    return Convert(Convert.Config(convert_to=to), staging=staging, size_cap=cap)


@needs_qemu_img
def test_convert_an_empty_qcow2_to_raw(tmp_path: Path, staging: Staging) -> None:
    qemu_img("create", "-f", "qcow2", str(tmp_path / "small.qcow2"), "1M")
    img = image("qcow2")
    path = stage(staging, img, tmp_path / "small.qcow2")
    result = convert(staging).run(path, img)
    assert result.path.read_bytes() == bytes(MiB)
    assert result.changes == {
        "disk_format": "raw",
        "container_format": "bare",
        "virtual_size": MiB,
        "size": MiB,
        "checksum": hashlib.md5(bytes(MiB)).hexdigest(),
        "os_hash_algo": "sha256",
        "os_hash_value": hashlib.sha256(bytes(MiB)).hexdigest(),
    }
    assert names(staging) == sorted([img.id, f"{img.id}.convert"])


@needs_qemu_img
def test_convert_round_trips_the_data(tmp_path: Path, staging: Staging) -> None:
    data = PAYLOAD[: 2 * MiB // 2] * 2  # 2 MiB, a whole number of sectors
    (tmp_path / "disk.raw").write_bytes(data)
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(tmp_path / "disk.raw"), str(tmp_path / "d"))
    img = image("qcow2")
    result = convert(staging).run(stage(staging, img, tmp_path / "d"), img)
    assert result.path.read_bytes() == data
    assert result.changes["size"] == len(data)
    assert result.changes["os_hash_value"] == hashlib.sha256(data).hexdigest()
    back = convert(staging, "qcow2")
    raw_img = image("raw")
    again = back.run(stage(staging, raw_img, tmp_path / "disk.raw"), raw_img)
    assert again.path.read_bytes()[:4] == b"QFI\xfb"
    assert again.changes["disk_format"] == "qcow2"


@needs_qemu_img
def test_same_format_is_left_as_it_is(tmp_path: Path, staging: Staging) -> None:
    (tmp_path / "disk.raw").write_bytes(PAYLOAD[:MiB])
    img = image("raw")
    path = stage(staging, img, tmp_path / "disk.raw")
    assert convert(staging).run(path, img) == StepResult(path, {"virtual_size": MiB})


VMDK_DESCRIPTOR = """# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="monolithicFlat"

RW 2048 FLAT "{secret}" 0

ddb.adapterType = "ide"
"""


@needs_qemu_img
@pytest.mark.parametrize(
    "make,declared,match",
    [
        (  # CVE-2024-32498's family: a backing file copies host data into the image
            ["create", "-f", "qcow2", "-b", "{secret}", "-F", "raw", "{out}"],
            "qcow2",
            "backing file",
        ),
        (  # ... and so does an external data file
            ["create", "-f", "qcow2", "-o", "data_file={secret}", "{out}", "1M"],
            "qcow2",
            "external data file",
        ),
        (["vmdk-descriptor"], "vmdk", "create type 'monolithicFlat'"),  # its extent: any file
        (["vmdk-descriptor"], "raw", "declared raw but its data is vmdk"),
        (["create", "-f", "qcow2", "{out}", "1M"], "raw", "declared raw but its data is qcow2"),
        (["create", "-f", "raw", "{out}", "1M"], "qcow2", "not a valid qcow2 image"),
    ],
)  # fmt: skip
def test_unsafe_images_are_refused(
    tmp_path: Path, staging: Staging, make: list[str], declared: str, match: str
) -> None:
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"root:secret-hash:" + bytes(MiB - 17))
    out = tmp_path / "user-image"
    if make == ["vmdk-descriptor"]:
        out.write_text(VMDK_DESCRIPTOR.format(secret=secret))
    else:
        qemu_img(*(a.format(secret=secret, out=out) for a in make))
    img = image(declared)
    path = stage(staging, img, out)
    with pytest.raises(errors.Invalid, match=match):
        convert(staging).run(path, img)
    assert names(staging) == [img.id]


@needs_qemu_img
def test_a_virtual_size_over_the_cap_is_refused_before_converting(
    tmp_path: Path, staging: Staging
) -> None:
    qemu_img("create", "-f", "qcow2", str(tmp_path / "huge.qcow2"), "100G")
    img = image("qcow2")
    path = stage(staging, img, tmp_path / "huge.qcow2")
    with pytest.raises(errors.ImageTooLarge, match="virtual size of 107374182400 bytes"):
        convert(staging, cap=1 << 30).run(path, img)
    assert names(staging) == [img.id]


def test_convert_needs_a_known_disk_format(tmp_path: Path, staging: Staging) -> None:
    raw = tmp_path / "x"
    raw.write_bytes(b"x")
    for fmt, match in ((None, "has no disk_format"), ("ami", "cannot convert disk_format 'ami'")):
        img = image(fmt) if fmt != "ami" else Image(disk_format="ami", container_format="ami")
        with pytest.raises(errors.Invalid, match=match):
            convert(staging).run(stage(staging, img, raw), img)
    iso = image("iso")
    path = stage(staging, iso, raw)
    assert convert(staging).run(path, iso) == StepResult(path)


# --- inject_metadata ------------------------------------------------------------------------


def test_inject_metadata_sets_properties_over_the_users(staging: Staging, tmp_path: Path) -> None:
    step = InjectMetadata(
        InjectMetadata.Config(inject_properties={"origin": "import", "hw_agent": "yes"}),
        staging=staging,
        size_cap=1,
    )
    img = image(properties={"origin": "user", "mine": "1"})
    path = tmp_path / "data"
    result = step.run(path, img)
    assert result.path == path
    assert result.changes == {"properties": {"origin": "import", "hw_agent": "yes", "mine": "1"}}
    assert step.run(path, attrs.evolve(img, properties=result.changes["properties"])) == (
        StepResult(path)
    )


@pytest.mark.parametrize("key", ["os_glance_import_task", "name", "visibility", "status"])
def test_reserved_properties_cannot_be_injected(key: str) -> None:
    with pytest.raises(errors.ConfigError, match=f"'{key}' is reserved"):
        config.build(InjectMetadata.Config, {"inject_properties": {key: "x"}}, where="t [import]")


# --- registration and configuration -----------------------------------------------------------


def load(tmp_path: Path, text: str) -> config.TankConfig:
    path = tmp_path / "tank.toml"
    path.write_text(text)
    return config.load(path, data_dir=tmp_path / "data", environ={})


def test_import_section_defaults(tmp_path: Path) -> None:
    settings = config.load(data_dir=tmp_path / "data", environ={}).imports
    assert settings.methods == ("glance-direct", "web-download", "copy-image")
    assert settings.steps == ()
    assert settings.staging_dir == tmp_path / "data" / "staging"
    assert settings.allow_private_networks is False
    assert settings.workers == 2
    assert settings.lease_seconds == 300
    assert (settings.web_download_timeout, settings.web_download_deadline) == (60, 3600)


def test_built_in_steps_are_registered_and_configured(tmp_path: Path, staging: Staging) -> None:
    cfg = load(
        tmp_path,
        """
[import]
steps = ["decompress", "convert", "inject_metadata"]
convert_to = "raw"
staging_dir = "/srv/staging"
inject_properties = { origin = "tank" }
""",
    )
    types = make_plugin_manager(autoload=False).import_step_types()
    assert {"decompress", "convert", "inject_metadata"} <= set(types)
    steps = build_steps(cfg.imports, types, staging=staging, size_cap=5, source=cfg.source)
    assert [type(s) for s in steps] == [Decompress, Convert, InjectMetadata]
    assert steps[1].config.convert_to == "raw"
    assert steps[2].config.inject_properties == {"origin": "tank"}
    assert cfg.imports.staging_dir == Path("/srv/staging")


@pytest.mark.parametrize(
    "text,message",
    [
        ('steps = ["nope"]', "[import] steps: no import step 'nope' is installed"),
        ('steps = ["convert"]', "[import] convert_to: required key is missing"),
        ('steps = ["convert"]\nconvert_to = "iso"', "[import] convert_to: must be one of"),
        ('steps = ["decompress", "decompress"]', "'decompress' is listed twice"),
        ('methods = ["glance-direct", "s3-copy"]', "unknown import method 's3-copy'"),
        ("workers = 0", "[import] workers: must be > 0"),
        ('allow_private_networks = "yes"', "allow_private_networks: expected a boolean"),
        ("lease_seconds = 0.5", "[import] lease_seconds:"),
        ("web_download_deadline = 0", "[import] web_download_deadline:"),
        ('web_download_timeout = "1m"', "[import] web_download_timeout: expected a number"),
        ("stepz = []", "[import] stepz: unknown key (did you mean steps?"),
        ("[import.convert]\nconvert_to = 'raw'", "[import.convert]: there is no step 'convert'"),
        (
            'inject_properties = { os_glance_import_task = "x" }',
            "inject_properties: 'os_glance_import_task' is reserved",
        ),
        (
            'steps = ["convert"]\n[import.convert]\nconvert_to = "raw"\ncolour = 1',
            "[import.convert] colour: unknown key",
        ),
    ],
)
def test_import_config_errors_name_the_key(
    tmp_path: Path, staging: Staging, text: str, message: str
) -> None:
    with pytest.raises(errors.ConfigError) as failed:
        cfg = load(tmp_path, "[import]\n" + text)
        types = make_plugin_manager(autoload=False).import_step_types()
        build_steps(cfg.imports, types, staging=staging, size_cap=5, source=cfg.source)
    assert message in str(failed.value)
    assert str(failed.value).startswith(str(tmp_path / "tank.toml"))


class Stamp(ImportStep):
    """A third-party step, configured from its own [import.stamp] table."""

    name = "stamp"

    @attrs.frozen(kw_only=True)
    class Config:
        mark: str = "stamped"

    def run(self, path: Path, image: Image) -> StepResult:
        with self.staging.creating(image.id, self.name) as pending:
            pending.temp.write_bytes(path.read_bytes() + self.config.mark.encode())
        return StepResult(pending.path)


class StampPlugin:
    @hookimpl
    def tank_register_import_steps(self, register: Any) -> None:
        register(Stamp)


def test_a_plugin_step_gets_its_own_table(tmp_path: Path, staging: Staging) -> None:
    cfg = load(tmp_path, '[import]\nsteps = ["stamp"]\n[import.stamp]\nmark = "!"\n')
    types = make_plugin_manager(autoload=False, plugins=[("stamp", StampPlugin())])
    (step,) = build_steps(
        cfg.imports, types.import_step_types(), staging=staging, size_cap=5, source=cfg.source
    )
    img = image()
    (tmp_path / "in").write_bytes(b"data")
    result = step.run(stage(staging, img, tmp_path / "in"), img)
    assert result.path.read_bytes() == b"data!"


def test_a_step_name_registered_twice_names_the_plugin() -> None:
    class Other(Stamp):
        pass

    class Clash:
        @hookimpl
        def tank_register_import_steps(self, register: Any) -> None:
            register(Other)

    plugins = make_plugin_manager(
        autoload=False, plugins=[("stamp", StampPlugin()), ("clash", Clash())]
    )
    with pytest.raises(errors.PluginLoadError, match=r"'clash'.*'stamp' is already registered"):
        plugins.import_step_types()
