"""Tank's store for OpenStack Swift (and Ceph RGW's Swift API), type ``chase``."""

from tank_store_chase.backend import ChaseBackend

__all__ = ["ChaseBackend"]
