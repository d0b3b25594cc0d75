"""``GET /healthcheck``, as oslo.middleware's healthcheck answers it for Glance.

``200 OK`` (text) while this server serves; ``503 DISABLED BY FILE`` while the file
``[api] healthcheck_disable_file`` exists (oslo's ``disable_by_file`` backend), so an
operator can drain a server behind a load balancer before stopping it. Answered before
authentication, like the versions document. ``?detail`` (admins only) answers JSON
with the registry and each store probed, and how long each probe took; any probe
failing makes it a 503.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from tank import errors
from tank.model import Context, ListQuery
from tank.store import Backend, Capability
from tank.web import Request, Response

if TYPE_CHECKING:
    from tank.api.app import Api

OK = "OK"
DISABLED = "DISABLED BY FILE"


def healthcheck(api: Api, req: Request, ctx: Context) -> Response:
    """The handler; ``ctx`` is the caller's (``?detail`` needs an admin)."""
    disable_file = api.config.healthcheck_disable_file
    disabled = disable_file is not None and os.path.exists(disable_file)
    if "detail" in req.query:
        if not ctx.is_admin:
            raise errors.Forbidden("the detailed healthcheck is for admins")
        return _detail(api, disabled)
    if disabled:
        return _text(503, DISABLED)
    return _text(200, OK)


def _text(status: int, text: str) -> Response:
    body = text.encode()
    headers = [("Content-Type", "text/plain; charset=UTF-8"), ("Content-Length", str(len(body)))]
    return Response(status, headers, [body])


def _detail(api: Api, disabled: bool) -> Response:
    checks: dict[str, Any] = {"registry": probe_registry(api)}
    checks["stores"] = {b.name: probe_store(b) for b in api.service.stores}
    healthy = checks["registry"]["ok"] and all(s["ok"] for s in checks["stores"].values())
    status = DISABLED if disabled else OK if healthy else "FAILED"
    document = {"status": status, "pid": os.getpid(), **checks}
    return Response.json(document, 200 if status == OK else 503)


def probe_registry(api: Api) -> dict[str, Any]:
    """One listing of one image: the registry answers (SQL or tank-registry)."""
    started = time.monotonic()
    try:
        api.service.registry.list(ListQuery(limit=1), context=Context.admin())
    except Exception as exc:  # noqa: BLE001  (any failure is what the probe reports)
        return _result(started, False, f"{type(exc).__name__}: {_one_line(exc)}")
    return _result(started, True)


def probe_store(backend: Backend) -> dict[str, Any]:
    """The store's own start-up probe (:meth:`Backend.check_writable`); a read-only
    store has none and is reported as such."""
    started = time.monotonic()
    if Capability.WRITE not in backend.capabilities:
        return {**_result(started, True), "read_only": True}
    try:
        backend.check_writable()
    except Exception as exc:  # noqa: BLE001  (any failure is what the probe reports)
        return _result(started, False, f"{type(exc).__name__}: {_one_line(exc)}")
    return _result(started, True)


def _result(started: float, ok: bool, error: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": ok, "seconds": round(time.monotonic() - started, 6)}
    if error is not None:
        out["error"] = error
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def metrics(api: Api, req: Request, ctx: Context) -> Response:
    """``GET /metrics``: Prometheus text format, every worker's counts summed."""
    if api.metrics is None or not api.config.metrics:
        raise errors.NotFound("metrics are off here ([api] metrics = false)")
    body, content_type = api.metrics.render()
    return Response(
        200, [("Content-Type", content_type), ("Content-Length", str(len(body)))], [body]
    )
