"""Image format inspection while the data streams in, as Glance does since OSSA-2024-001.

A hypervisor host that believes an image is qcow2 follows the qcow2's *backing file* or
*external data file*, and a VMDK's descriptor may name extents anywhere on the host:
an image whose data is not what its ``disk_format`` says, or that points outside
itself, is how a user reads a host's files (OSSA-2024-001, CVE-2024-32498). So every
upload's bytes go through oslo.utils' format inspectors (the ones Glance and Nova use,
:mod:`oslo_utils.imageutils.format_inspector`) in the same pass that hashes and stores
them, and before the store commits, Glance's rules decide (``glance/location.py``,
``ImageProxy.set_data``):

* only ``container_format = bare`` images are inspected (what is inside an ``ova``,
  ``docker``, ... is not a disk image); v1 data sent before any format is set is
  inspected as ``raw`` (below);
* the detected format must be the ``disk_format``; data that none of the inspectors
  recognise is ``raw``, and passes for formats no inspector knows (``ami``, ``ari``,
  ``aki``, ``ploop``); an ISO with a GPT in front (a hybrid, bootable as a disk) is iso;
* ``disk_format = raw`` takes any data (Glance's rule: a guest given a qcow2 as raw
  sees its bytes, not the host's files), but the detected format's safety checks still
  run, so a qcow2 with a backing file is refused even as "raw";
* whatever was detected must pass its safety checks: no qcow2 backing file or data
  file or unknown feature, only single-file VMDKs whose extents name no path, a GPT
  whose protective MBR is sane (``gpt_safety_checks_nonfatal`` relaxes those), ...;
* data too short for a format's header is not that format (a 100-byte "qcow2" is raw,
  so it does not match ``qcow2``); data that matches two formats at once is refused.

``[image_format] require_image_format_match = false`` (Glance's key and default,
true) lets a mismatch through with a warning; failed safety checks are refused either
way (Glance skips them after a tolerated mismatch; Tank runs the detected format's).
Data registered by location (v1 ``x-image-meta-location``, the v2 locations API) is
not inspected: Tank does not read it on the way in.

Cost: the inspectors keep fixed regions (headers, the first MiB for a VMDK descriptor,
the VHD and VMDK footers), about 2 MiB an upload with the chunks gathered for them,
and cost per chunk, not per byte: ~0.05 CPU-s per GiB on 1 MiB chunks (MD5 alone:
~2). Importing oslo.utils and cryptography adds ~9 MiB to a process's RSS and ~0.5 s
of CPU, paid on the first upload (:func:`_oslo`).
"""

from __future__ import annotations

import functools
import importlib
import logging
from types import ModuleType
from typing import TYPE_CHECKING

from tank import errors
from tank.config import ImageFormatConfig

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from oslo_utils.imageutils.format_inspector import FileInspector, SafetyCheckFailed


@functools.cache
def _oslo() -> ModuleType:
    """oslo.utils' format_inspector, imported on the first upload: importing it takes
    ~0.5 s of CPU (oslo_utils.strutils compiles hundreds of regular expressions), which
    a ``tank`` command or a tank-api that never receives data need not pay."""
    return importlib.import_module("oslo_utils.imageutils.format_inspector")


def inspectable() -> frozenset[str]:
    """Formats oslo.utils can recognise; a ``disk_format`` outside them (``ploop``)
    accepts data none of them recognises."""
    return frozenset(_oslo().ALL_FORMATS)


#: Smaller chunks are gathered up to this size before the inspectors see them: each
#: chunk costs them ~50 us whatever its size (10 inspectors, their regions), so 64 KiB
#: chunks fed one by one would take ~0.75 CPU-s per GiB, 1 MiB ones ~0.05.
_FEED_MIN = 1 << 20


class _Handoff:
    """The source an oslo ``InspectWrapper`` reads: the chunk the
    upload loop just handed over (the wrapper then shows it to every inspector)."""

    chunk: bytes = b""

    def read(self, size: int = -1) -> bytes:
        chunk, self.chunk = self.chunk, b""
        return chunk


class FormatCheck:
    """Show it every chunk (:meth:`update`); :meth:`verify` before the data is kept.

    Used as ``check`` of :meth:`tank.store.Backend.add`, which aborts the store's write
    when :meth:`verify` raises :class:`~tank.errors.InvalidImageData`.
    """

    def __init__(
        self,
        disk_format: str,
        config: ImageFormatConfig | None = None,
    ) -> None:
        self.disk_format = disk_format
        self.config = config or ImageFormatConfig()
        #: The detected format's virtual size once verified (0 when unknown).
        self.virtual_size = 0
        #: The detected format's name once verified.
        self.detected: str | None = None
        self._pending = bytearray()
        self._source = _Handoff()
        self._fi = _oslo()
        self._wrapper = self._fi.InspectWrapper(self._source)

    def update(self, chunk: bytes) -> None:
        if not self._pending and len(chunk) >= _FEED_MIN:
            self._feed(chunk)
            return
        self._pending += chunk
        if len(self._pending) >= _FEED_MIN:
            self._feed(bytes(self._pending))
            self._pending.clear()

    def _feed(self, chunk: bytes) -> None:
        self._source.chunk = chunk
        self._wrapper.read(len(chunk))

    def verify(self) -> None:
        """Raise InvalidImageData unless the data may be kept (see the module doc)."""
        if self._pending:
            self._feed(bytes(self._pending))
            self._pending.clear()
        self._wrapper.close()
        try:
            inspector = self._detect()
            mismatch = self._compare(str(inspector), inspector)
        except self._fi.ImageFormatError as exc:  # several formats at once
            self._mismatch(str(exc))
            return
        except Exception:  # an inspector's bug: Glance's "inspection failed"
            log.exception("image format inspection failed")
            self._mismatch("image format inspection failed")
            return
        if mismatch is not None:
            self._mismatch(mismatch)  # with the check off, the safety checks still run
        try:
            inspector.safety_check()
        except self._fi.SafetyCheckFailed as exc:
            fatal = set(exc.failures) - set(self.config.gpt_safety_checks_nonfatal)
            if inspector.NAME == "gpt" and not fatal:
                log.warning("image data (gpt) failed non-fatal safety checks: %s", exc)
                return
            raise errors.InvalidImageData(
                f"image data ({inspector}) failed safety checks: {_reasons(exc)}"
            ) from None
        except self._fi.ImageFormatError as exc:  # incomplete: not that format
            self._mismatch(f"image data ({inspector}): {exc}")

    def _mismatch(self, message: str) -> None:
        if self.config.require_image_format_match:
            raise errors.InvalidImageData(message)
        log.warning("%s (allowed: require_image_format_match is off)", message)

    def _detect(self) -> FileInspector:
        """The detected format's inspector (raw: none recognised the data)."""
        named = {str(i): i for i in self._wrapper.formats or []}
        if set(named) == {"iso", "gpt"}:  # a hybrid ISO boots as a disk too: Glance's rule
            return named["iso"]
        found = self._wrapper.format  # ImageFormatError for several at once
        if found is None:  # cannot happen once closed: every inspector has decided
            raise self._fi.ImageFormatError("the image format was not decided")
        return found

    def _compare(self, detected: str, inspector: FileInspector) -> str | None:
        """Glance's rules (see the module doc): None if ``detected`` may be the
        ``disk_format``, else what is wrong."""
        self.detected = detected
        if detected == self.disk_format:
            self.virtual_size = inspector.virtual_size
        elif detected == "raw" and self.disk_format not in inspectable():
            pass  # ploop: no inspector can say what it is, so raw is fine
        elif self.disk_format == "raw":
            log.warning("image data declared raw is %s (allowed, as in Glance)", detected)
            self.virtual_size = inspector.actual_size
        else:
            return f"image data is {detected} but disk_format is {self.disk_format}"
        return None


def _reasons(exc: SafetyCheckFailed) -> str:
    """The failed checks' own words ('Image has a backing file'), sorted."""
    return "; ".join(sorted(f"{name}: {why}" for name, why in exc.failures.items()))


def format_check(
    disk_format: str | None,
    container_format: str | None,
    config: ImageFormatConfig | None,
) -> FormatCheck | None:
    """The check an upload of such an image gets, or None: only ``bare`` images are
    inspected, as in Glance. Without a ``disk_format`` (v1 lets data come first) the
    data is checked as ``raw`` would be: any format, but only a safe one."""
    if container_format not in ("bare", None):
        return None
    return FormatCheck(disk_format or "raw", config)
