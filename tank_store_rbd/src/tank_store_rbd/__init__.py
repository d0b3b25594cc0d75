"""Tank store for Ceph RBD: each image is an RBD image with a protected snapshot ``snap``.

Compute hosts on the same cluster clone that snapshot copy-on-write instead of
downloading the image. The ``rados``/``rbd`` bindings come with Ceph, not from PyPI.
"""

from tank_store_rbd.backend import RBDBackend

__all__ = ["RBDBackend"]
