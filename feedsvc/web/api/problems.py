"""RFC 9457 problem details: every error under /api/v1 is `application/problem+json`, never an HTML page."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, json, request
from werkzeug.exceptions import HTTPException, default_exceptions

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)


class ApiProblem(Exception):
    """Raised by a handler: answer `status` with `detail` (and extension members, and headers)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers, self.extra = status, detail, headers or {}, extra


def problem(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """The problem+json response: type about:blank, the status's own title, `detail`, the request's path."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.path,
        **extra,
    }
    response = Response(json.dumps(body, ensure_ascii=False), status, mimetype=MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


def install(bp: Blueprint) -> None:
    """Answer every error of `bp`'s requests as a problem: raised problems, HTTP errors, and crashes."""

    @bp.errorhandler(ApiProblem)
    def _raised(error: ApiProblem) -> Response:
        return problem(error.status, error.detail, error.headers, **error.extra)

    def _http(error: HTTPException) -> Response:
        headers = {k: v for k, v in error.get_headers() if k.lower() in ("allow", "retry-after")}
        return problem(error.code or 500, error.description or HTTPStatus(error.code or 500).phrase, headers)

    # By code, not only by class: Flask prefers an app's handler for a code (the public 404 page) over a
    # blueprint's handler for a class.
    bp.register_error_handler(HTTPException, _http)
    for code in default_exceptions:
        bp.register_error_handler(code, _http)

    @bp.errorhandler(Exception)
    def _crash(error: Exception) -> Response:
        log.exception("API request %s %s failed", request.method, request.path)
        return problem(500, "the server failed to answer this request; it has been logged")
