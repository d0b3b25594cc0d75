"""RBD locations: ``rbd://<fsid>/<pool>/<image>/<snapshot>`` and the legacy ``rbd://<image>``.

The long form is what Glance writes and what Nova and Cinder parse to decide whether they
can clone an image: same cluster (fsid), then clone ``pool/image@snapshot``. The short
form comes from very old Glance deployments; its pool is the store's configured pool.
Locations name data only, so the redacted form is the location itself.
"""

from __future__ import annotations

import urllib.parse

import attrs

from tank.errors import BadLocation

SCHEME = "rbd"
#: The snapshot every image gets; clones hang off it.
SNAPSHOT = "snap"
EXAMPLE = "rbd://<fsid>/<pool>/<image>/snap"


def _component(value: str) -> str:
    return urllib.parse.quote(value, safe="")


@attrs.frozen
class RBDLocation:
    """Where an image's data lives in a Ceph cluster.

    ``fsid``, ``pool`` and ``snapshot`` are None only for the legacy short form.
    """

    image: str
    pool: str | None = None
    fsid: str | None = None
    snapshot: str | None = None

    @classmethod
    def parse(cls, uri: str) -> RBDLocation:
        """Parse either form; :class:`~tank.errors.BadLocation` names what is wrong."""
        prefix = f"{SCHEME}://"
        if not isinstance(uri, str) or not uri[: len(prefix)].lower() == prefix:
            raise BadLocation(f"not an rbd location: {uri!r} (expected {EXAMPLE})")
        pieces = uri[len(prefix) :].split("/")
        if len(pieces) not in (1, 4) or any(not p for p in pieces):
            raise BadLocation(
                f"rbd location {uri!r} must be {EXAMPLE} or rbd://<image> "
                "(1 or 4 non-empty components)"
            )
        values = [urllib.parse.unquote(p) for p in pieces]
        if len(values) == 1:
            return cls(image=values[0])
        fsid, pool, image, snapshot = values
        return cls(image=image, pool=pool, fsid=fsid, snapshot=snapshot)

    @property
    def legacy(self) -> bool:
        """True for the short ``rbd://<image>`` form."""
        return self.fsid is None

    def to_uri(self) -> str:
        if self.legacy:
            return f"{SCHEME}://{_component(self.image)}"
        parts = (self.fsid, self.pool, self.image, self.snapshot)
        return f"{SCHEME}://" + "/".join(_component(p or "") for p in parts)

    def redacted(self) -> str:
        """Safe to show anyone: an RBD location carries no credentials."""
        return self.to_uri()

    def __str__(self) -> str:
        return self.to_uri()
