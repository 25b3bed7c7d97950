"""The OpenAPI 3.1 document of /api/v1, built from the route table alone. No Flask."""

from __future__ import annotations

from typing import Any

from feedsvc import __version__
from feedsvc.staff.roles import ACTIONS
from feedsvc.web.api import schemas as sc
from feedsvc.web.api.routes import JSON, ROUTES, Route

PREFIX = "/api/v1"
PROBLEM_MEDIA = "application/problem+json"
#: what every authenticated operation may answer, whatever it does.
COMMON_PROBLEMS = (400, 401, 403, 429, 500)
PROBLEM_TEXT = {
    400: "The request is malformed (not JSON, a bad query parameter).",
    401: "No valid bearer token (missing, unknown, revoked, or its member was removed).",
    403: "The token's member has a role that may not do this (`required_role` says which may).",
    404: "No such issue, send or subscriber.",
    405: "The path exists, the method does not.",
    409: "The current state does not allow it (a cancelled send paused, a publish the folder refuses).",
    413: "The request body is larger than the API accepts.",
    422: "The body is well-formed but cannot be used (it says what and where).",
    429: "Too many requests for this token, or too many failed logins from this client; see Retry-After.",
    500: "The server failed; the error was logged.",
}


def _problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": PROBLEM_TEXT[status],
        "content": {PROBLEM_MEDIA: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "required": True}}
    if status == 405:
        response["headers"] = {"Allow": {"schema": {"type": "string"}, "required": True}}
    return response


def _success(route: Route) -> dict[str, Any]:
    response: dict[str, Any] = {"description": route.summary}
    if route.response is not None:
        response["content"] = {route.media: {"schema": route.response}}
    return response


def operation(route: Route) -> dict[str, Any]:
    """The operation object of one route."""
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 0, "maximum": sc.MAX_INT},
        }
        for name in route.path_params
    ]
    params += [
        {"name": p.name, "in": "query", "required": False, "schema": p.schema, "description": p.description}
        for p in route.query
    ]
    responses: dict[str, Any] = {str(s): _success(route) for s in (route.status, *route.also)}
    for status in sorted({*COMMON_PROBLEMS, *route.problems}):
        responses[str(status)] = _problem_response(status)
    found: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "description": f"Needs the `{route.action}` action: role {ACTIONS[route.action]} or above.",
        "tags": [route.path.split("/")[1]],
        "x-feedsvc-action": route.action,
        "responses": responses,
    }
    if params:
        found["parameters"] = params
    if route.body is not None:
        found["requestBody"] = {"required": True, "content": {JSON: {"schema": route.body}}}
    return found


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = operation(route)
    paths[PREFIX + "/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "tags": ["meta"],
            "responses": {
                "200": {"description": "The OpenAPI document", "content": {JSON: {"schema": {"type": "object"}}}}
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "feedsvc API",
            "version": __version__,
            "description": "Automation for the publisher's team. Every request but this document needs "
            "`Authorization: Bearer <token>` (`feedsvc staff token create EMAIL`); the token acts with its "
            "member's current role. Cookies are ignored. Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": {"Problem": sc.PROBLEM},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A feedsvc API token (fsvc_…)."}
            },
        },
    }
