"""Every error the server answers is `{"error": "<plain words>", "status": N}`; none carries a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from odqa.api import IndexNotFound, OdqaError

log = logging.getLogger("odqa.server")
KINDS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method", 413: "too_large",
         422: "invalid", 500: "internal", 503: "not_ready", 504: "timeout"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def plain_validation(errors: list[dict]) -> str:
    """pydantic's validation errors in plain words: `question: the question is empty ...`."""
    out = []
    for e in errors[:3]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        if e.get("type") == "json_invalid":
            out.append("the body is not valid JSON")
            continue
        msg = e.get("msg", "invalid value").removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field"
        out.append(f"{where}: {msg[0].lower() + msg[1:]}" if where else msg)
    return "; ".join(dict.fromkeys(out)) or "invalid request"


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, e: ApiError):
        return error_response(e.status, e.message, e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError):
        return error_response(422, plain_validation(list(e.errors())))

    @app.exception_handler(OdqaError)
    async def _odqa(_: Request, e: OdqaError):
        return error_response(404 if isinstance(e, IndexNotFound) else 422, str(e))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, e: HTTPException):
        return error_response(e.status_code, str(e.detail), getattr(e, "headers", None))
