"""The API key: `Authorization: Bearer KEY` or `X-API-Key: KEY` on every request but the page and the docs,
checked by a FastAPI security dependency of the app (the OpenAPI spec at /docs shows both schemes)."""

from __future__ import annotations

import hmac
from typing import Callable, Optional

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from odqa.server.errors import ApiError

OPEN_PATHS = ("/", "/docs", "/openapi.json", "/favicon.ico")   # documents holding no data: served without a key
OPEN_PREFIXES = ("/static/", "/docs-assets/")
BEARER = APIKeyHeader(name="Authorization", auto_error=False, scheme_name="Bearer",
                      description="`Bearer KEY`")
HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="X-API-Key")


def api_key_check(key: str) -> Callable:
    """The dependency that refuses (401) a request to a data route without `key`."""
    expected = key.encode()

    async def require_key(request: Request, auth: Optional[str] = Security(BEARER),
                          header: Optional[str] = Security(HEADER)) -> None:
        path = request.url.path
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or request.method == "OPTIONS":
            return
        auth, header = auth or "", header or ""
        given = auth[7:] if auth[:7].lower() == "bearer " else header
        if given and hmac.compare_digest(given.encode(), expected):
            return
        raise ApiError(401, "this server needs an API key: send it as 'Authorization: Bearer KEY' or "
                            "'X-API-Key: KEY'" if not (auth or header) else "wrong API key",
                       {"WWW-Authenticate": "Bearer"})
    return require_key
