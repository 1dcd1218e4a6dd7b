"""ASGI middleware of the server: metrics, body size limit, and the catch-all for bugs."""

from __future__ import annotations

import time

from odqa.server.errors import KINDS, error_response, log
from odqa.server.metrics import ServerMetrics



def _header(scope, name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == name), "")


class Metrics:
    """Counts every answered request (route template as the endpoint label), its errors and latency."""

    def __init__(self, app, metrics: ServerMetrics, known_paths: set[str]):
        self.app, self.m, self.known = app, metrics, known_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, status = time.perf_counter(), [500]

        async def sending(msg):
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)
        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or scope["path"]
            endpoint = path if path in self.known else "other"
            self.m.requests.labels(endpoint, scope["method"], str(status[0])).inc()
            self.m.latency.labels(endpoint).observe(time.perf_counter() - t0)
            if status[0] >= 400:
                self.m.errors.labels(endpoint, KINDS.get(status[0], str(status[0]))).inc()


class BodyLimit:
    """Refuses a request body over `limit` bytes with 413 (read up to the limit, then replayed to the app)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = error_response(413, f"the request body is over {self.limit} bytes")
        length = _header(scope, b"content-length")
        if length.isdigit() and int(length) > self.limit:
            return await too_big(scope, receive, send)
        body, more = b"", True
        while more:
            msg = await receive()
            if msg["type"] != "http.request":
                return                                    # the client went away
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
            if len(body) > self.limit:
                return await too_big(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replay, send)


class CatchAll:
    """A bug answers 500 with a one-line JSON error; its traceback goes to the server's log only."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = [False]

        async def sending(msg):
            if msg["type"] == "http.response.start":
                started[0] = True
            await send(msg)
        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("internal error answering %s %s", scope["method"], scope["path"])
            if not started[0]:
                await error_response(500, "internal error: the server could not answer this request "
                                          "(the details are in its log)")(scope, receive, send)
