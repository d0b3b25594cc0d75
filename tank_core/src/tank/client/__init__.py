"""A Python client for a remote tank-api, as python-glanceclient is for Glance::

    from tank.client import Client

    with Client("http://127.0.0.1:9292") as tank:   # Images API v2; api="v1" for v1
        with open("cirros.img", "rb") as f:
            image = tank.create(f, name="cirros", disk_format="qcow2", container_format="bare")
        tank.download_to(image.id, "copy.img")
        for image in tank.iter_images(filters={"disk_format": "qcow2"}):
            print(image.id, image.name)

Calls return :class:`tank.model.Image` and :class:`tank.model.Member` and raise the
:mod:`tank.errors` tree (via the subclasses in :mod:`tank.client.errors`), exactly as the
in-process :class:`tank.service.ImageService` does, whichever API version it speaks.
"""

from tank.client.client import API_VERSIONS, DEFAULT_API, DEFAULT_URL, Client, parse_api
from tank.client.errors import ConnectionFailed, HTTPError, ImportFailed, Unsupported
from tank.client.transfer import Download
from tank.client.wire import BriefImage
from tank.client.wire_v2 import StoreInfo

__all__ = [
    "API_VERSIONS",
    "DEFAULT_API",
    "DEFAULT_URL",
    "BriefImage",
    "Client",
    "ConnectionFailed",
    "Download",
    "HTTPError",
    "ImportFailed",
    "StoreInfo",
    "Unsupported",
    "parse_api",
]
