"""Tank's small web toolkit, shared by tank-api and tank-registry.

* :mod:`tank.web.routing`: path templates to handlers, one line per endpoint;
* :mod:`tank.web.messages`: ``Request``, ``Response``, ``FileBody``;
* :mod:`tank.web.app`: ``WebApp``, dispatch and errors → responses;
* :mod:`tank.web.headers`: header values between text and the wire (UTF-8);
* :mod:`tank.web.server`: the HTTP/1.1 server; :mod:`tank.web.serving`: its run loop.
"""

from tank.web.app import WebApp
from tank.web.messages import ClientGone, FileBody, Request, Response
from tank.web.routing import Match, MethodNotAllowed, Router

__all__ = [
    "ClientGone",
    "FileBody",
    "Match",
    "MethodNotAllowed",
    "Request",
    "Response",
    "Router",
    "WebApp",
]
