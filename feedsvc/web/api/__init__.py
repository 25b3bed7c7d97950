"""/api/v1: JSON for automation, one bearer token per staff member, RFC 9457 errors, rate limits.

Only `Authorization: Bearer <token>` authenticates; cookies are never read, so a browser session (and a
forged cross-site form riding on it) cannot call the API, and CSRF tokens do not apply. Every route comes
from `routes.ROUTES`: the blueprint registers those and `openapi.document()` describes those. Failed
authentication is limited per client (checked before the token, so the limit is no oracle), use per token.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import MethodNotAllowed, NotFound

from feedsvc import ratelimit
from feedsvc.config import Settings
from feedsvc.staff import tokens
from feedsvc.staff.roles import may, role_needed
from feedsvc.web.api import openapi, problems
from feedsvc.web.api import schemas as sc
from feedsvc.web.api.handlers import Call
from feedsvc.web.api.problems import ApiProblem, problem
from feedsvc.web.api.routes import JSON, PATH_PARAM, ROUTES, Route
from feedsvc.web.database import get_db, get_settings
from feedsvc.web.security import client_address

bp = Blueprint("api", __name__, url_prefix=openapi.PREFIX)
problems.install(bp)

LIMITS = "feedsvc.api_limits"
DEFAULT_RATE_LIMIT = "600/60"  # requests per token per minute
DEFAULT_AUTH_LIMIT = "20/600"  # failed authentications per client per 10 minutes
MAX_BODY = 2 * 1_048_576  # bytes: the longest body any schema allows fits, even with every character escaped
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]
REALM = 'Bearer realm="feedsvc api"'


@dataclass(frozen=True)
class Limits:
    """The API's rate limits: per token, and failed authentications per client."""

    token: ratelimit.Limit
    auth: ratelimit.Limit


def init_app(app: Flask, settings: Settings) -> None:
    """Read the API's limits (FEEDSVC_API_RATE_LIMIT, FEEDSVC_API_AUTH_LIMIT: "count/seconds")."""
    extra = settings.extra
    app.extensions[LIMITS] = Limits(
        ratelimit.Limit.parse(extra.get("FEEDSVC_API_RATE_LIMIT", DEFAULT_RATE_LIMIT)),
        ratelimit.Limit.parse(extra.get("FEEDSVC_API_AUTH_LIMIT", DEFAULT_AUTH_LIMIT)),
    )


def _retry_after(limit: ratelimit.Limit, now: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(limit.window - now % limit.window)))}


def _bearer() -> str:
    """The bearer token of the request, or "" (another scheme, or none)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


@bp.before_request
def _authenticate() -> Response | None:
    """Find the caller from the bearer token, counting failures per client and use per token."""
    if request.endpoint == "api.openapi_document":
        return None
    settings, limits, now = get_settings(), current_app.extensions[LIMITS], time.time()
    client_key = ratelimit.client_key("api-auth", client_address(settings.trusted_proxies), settings.secret_key)
    secret = _bearer()
    with get_db().session() as s:
        if ratelimit.exceeded(s, client_key, limits.auth, now):
            return problem(429, "too many failed authentications from this client", _retry_after(limits.auth, now))
        caller = tokens.resolve(s, secret) if secret else None
        if caller is None:
            if secret:
                ratelimit.hit(s, client_key, limits.auth, now)
            detail = "this token is not valid (unknown or revoked)" if secret else "send Authorization: Bearer <token>"
            return problem(401, detail, {"WWW-Authenticate": REALM})
        if not ratelimit.hit(s, f"api-token:{caller.token.id}", limits.token, now):
            return problem(429, "too many requests for this token", _retry_after(limits.token, now))
    g.api_caller = caller
    return None


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def flask_path(path: str) -> str:
    """An OpenAPI path (`/sends/{number}`) as a Flask rule (`/sends/<int:number>`)."""
    return PATH_PARAM.sub(r"<int:\1>", path)


def _query(route: Route) -> dict[str, Any]:
    unknown = sorted(set(request.args) - {p.name for p in route.query})
    if unknown:
        raise ApiProblem(400, f"unknown query parameter(s): {', '.join(unknown)}")
    found: dict[str, Any] = {}
    for param in route.query:
        raw = request.args.get(param.name)
        if raw is None:
            continue
        value: Any = raw
        if param.schema.get("type") == "integer":
            if not raw.isdigit():
                raise ApiProblem(400, f"query {param.name}: must be an integer")
            value = int(raw)
        wrong = sc.problems(param.schema, value, f"query {param.name}")
        if wrong:
            raise ApiProblem(400, "; ".join(wrong))
        found[param.name] = value
    return found


def _body(route: Route) -> dict[str, Any]:
    if route.body is None:
        return {}
    if (request.content_length or 0) > MAX_BODY or len(request.get_data(cache=True)) > MAX_BODY:
        raise ApiProblem(413, f"the body may have at most {MAX_BODY} bytes")
    if request.mimetype != JSON:
        raise ApiProblem(400, "send the body as application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiProblem(400, "the body is not valid JSON")
    wrong = sc.problems(route.body, body)
    if wrong:
        raise ApiProblem(422, "; ".join(wrong[:10]))
    return body


def _dispatch(by_method: dict[str, Route], **path: int) -> Any:
    route = by_method.get("GET" if request.method == "HEAD" else request.method)
    if route is None:
        raise MethodNotAllowed(valid_methods=sorted(by_method))
    if any(value > sc.MAX_INT for value in path.values()):
        raise NotFound(f"no such {', '.join(path)}")
    caller: tokens.Caller = g.api_caller
    if not may(caller.role, route.action):
        needed = role_needed(route.action)
        raise ApiProblem(403, f"this needs the {needed} role; {caller.email} is {caller.role}", required_role=needed)
    call = Call(caller, dict(path), _query(route), _body(route))
    answer = route.handler(call)
    if isinstance(answer, Response):
        return answer
    payload, status = answer if isinstance(answer, tuple) else (answer, route.status)
    return jsonify(payload), status


def _register() -> None:
    """One Flask rule per path of the table, taking every method (a wrong one is a problem+json 405)."""
    by_path: dict[str, dict[str, Route]] = defaultdict(dict)
    for route in ROUTES:
        by_path[route.path][route.method] = route
    for path, by_method in by_path.items():
        endpoint = "op" + path.replace("/", "_").replace("{", "").replace("}", "")

        def view(by_method: dict[str, Route] = by_method, **values: int) -> Any:
            return _dispatch(by_method, **values)

        bp.add_url_rule(
            flask_path(path), endpoint, view, methods=METHODS, provide_automatic_options=False, strict_slashes=False
        )


_register()


@bp.route("/openapi.json", methods=METHODS, provide_automatic_options=False)
def openapi_document() -> Response:
    """The OpenAPI 3.1 document (needs no token)."""
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed(valid_methods=["GET"])
    return jsonify(openapi.document())


@bp.route("/", defaults={"rest": ""}, methods=METHODS, provide_automatic_options=False, strict_slashes=False)
@bp.route("/<path:rest>", methods=METHODS, provide_automatic_options=False)
def not_found(rest: str) -> Any:
    """Anything else under /api/v1 is a problem+json 404."""
    raise NotFound(f"no API operation at {request.path}")
