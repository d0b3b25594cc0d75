"""Tank's HTTP/1.1 server, for any WSGI application (tank-api, tank-registry).

The parts, each a module: :mod:`~tank.web.server.heads` (request heads, strict
framing), :mod:`~tank.web.server.bodies` (request bodies as ``wsgi.input``, deferred
``100 Continue``), :mod:`~tank.web.server.responses` (framing out, ``sendfile``),
:mod:`~tank.web.server.exchange` (one request on a connection: the WSGI gateway) and
:mod:`~tank.web.server.listener` (connections: heads read off the worker threads).
"""

from tank.web.server.bodies import BadChunking, BodyIncomplete
from tank.web.server.exchange import WSGIApp
from tank.web.server.listener import HttpServer, default_transfer_threads, listen_socket
from tank.web.server.responses import FileWrapper
from tank.web.server.transfers import Transfers

__all__ = [
    "BadChunking",
    "BodyIncomplete",
    "FileWrapper",
    "HttpServer",
    "Transfers",
    "WSGIApp",
    "default_transfer_threads",
    "listen_socket",
]
