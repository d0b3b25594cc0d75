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
  ``docker``, ... is not a disk image);
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
way, as in Glance. Data registered by location (v1 ``x-image-meta-location``, the v2
locations API) is not inspected: Tank does not read it on the way in.

Cost: the inspectors look at fixed regions (headers, the VHD and VMDK footers in the
last bytes), not every byte: on 1 MiB chunks they take a few per cent of one core at
upload speed; see the README for the figures measured.
"""

from __future__ import annotations

import logging

from oslo_utils.imageutils import format_inspector

from tank import errors
from tank.config import ImageFormatConfig

log = logging.getLogger(__name__)

#: Formats oslo.utils can recognise; a ``disk_format`` outside them (``ami``, ``ari``,
#: ``aki``, ``ploop``) accepts data none of them recognises.
INSPECTABLE: frozenset[str] = frozenset(format_inspector.ALL_FORMATS)


class _Handoff:
    """The source an :class:`~format_inspector.InspectWrapper` reads: the chunk the
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
        self._source = _Handoff()
        self._wrapper = format_inspector.InspectWrapper(self._source)  # type: ignore[arg-type]

    def update(self, chunk: bytes) -> None:
        self._source.chunk = chunk
        self._wrapper.read(len(chunk))

    def verify(self) -> None:
        """Raise InvalidImageData unless the data may be kept (see the module doc)."""
        self._wrapper.close()
        try:
            inspector = self._decide()
        except format_inspector.ImageFormatError as exc:
            if self.config.require_image_format_match:
                raise errors.InvalidImageData(str(exc)) from None
            log.warning("image data not checked (require_image_format_match is off): %s", exc)
            return
        try:
            inspector.safety_check()
        except format_inspector.SafetyCheckFailed as exc:
            fatal = set(exc.failures) - set(self.config.gpt_safety_checks_nonfatal)
            if inspector.NAME == "gpt" and not fatal:
                log.warning("image data (gpt) failed non-fatal safety checks: %s", exc)
                return
            raise errors.InvalidImageData(
                f"image data ({inspector}) failed safety checks: {_reasons(exc)}"
            ) from None
        except format_inspector.ImageFormatError as exc:
            if self.config.require_image_format_match:
                raise errors.InvalidImageData(f"image data ({inspector}): {exc}") from None
            log.warning("image data not checked (require_image_format_match is off): %s", exc)

    def _decide(self) -> format_inspector.FileInspector:
        """The inspector of the detected format; ImageFormatError for a mismatch."""
        matches = self._wrapper.formats or []
        named = {str(i): i for i in matches}
        if set(named) == {"iso", "gpt"}:  # a hybrid ISO boots as a disk too: Glance's rule
            inspector = named["iso"]
        else:
            found = self._wrapper.format  # ImageFormatError for several at once
            if found is None:  # cannot happen once closed: every inspector decided
                raise format_inspector.ImageFormatError("the image format was not decided")
            inspector = found
        detected = str(inspector)
        self.detected = detected
        if detected == self.disk_format:
            self.virtual_size = inspector.virtual_size
        elif detected == "raw" and self.disk_format not in INSPECTABLE:
            pass  # ami, ari, aki, ploop: nothing can say what they are, raw is fine
        elif self.disk_format == "raw":
            log.warning("image data declared raw is %s (allowed, as in Glance)", detected)
            self.virtual_size = inspector.actual_size
        else:
            raise format_inspector.ImageFormatError(
                f"image data is {detected} but disk_format is {self.disk_format}"
            )
        return inspector


def _reasons(exc: format_inspector.SafetyCheckFailed) -> str:
    """The failed checks' own words ('Image has a backing file'), sorted."""
    return "; ".join(sorted(f"{name}: {why}" for name, why in exc.failures.items()))


def format_check(
    disk_format: str | None,
    container_format: str | None,
    config: ImageFormatConfig | None,
) -> FormatCheck | None:
    """The check an upload of such an image gets, or None (not ``bare``, as in Glance;
    no ``disk_format`` to compare with)."""
    if container_format != "bare" or not disk_format:
        return None
    return FormatCheck(disk_format, config)
