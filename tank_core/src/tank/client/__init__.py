"""A Python client for a remote tank-api, as python-glanceclient is for Glance v1.

    from tank.client import Client

    with Client("http://127.0.0.1:9292") as tank:
        with open("cirros.img", "rb") as f:
            image = tank.create(f, name="cirros", disk_format="qcow2", container_format="bare")
        tank.download_to(image.id, "copy.img")
        for image in tank.iter_images(filters={"disk_format": "qcow2"}):
            print(image.id, image.name)

Calls return :class:`tank.model.Image` and :class:`tank.model.Member` and raise the
:mod:`tank.errors` tree (via the subclasses in :mod:`tank.client.errors`), exactly as the
in-process :class:`tank.service.ImageService` does.
"""

from tank.client.client import DEFAULT_URL, Client
from tank.client.errors import ConnectionFailed, HTTPError
from tank.client.transfer import Download
from tank.client.wire import BriefImage

__all__ = ["DEFAULT_URL", "BriefImage", "Client", "ConnectionFailed", "Download", "HTTPError"]
