"""``/metrics`` for Prometheus, and the count of every request by endpoint and status.

The page is behind a password: HTTP Basic (any user name) or ``Authorization: Bearer``, compared in constant
time with FEEDSVC_METRICS_PASSWORD, else FEEDSVC_ADMIN_PASSWORD. With neither set there is no such page
(404). Requests are labelled by Flask endpoint name, never by path, so a crawler inventing URLs adds no series.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time

from flask import Blueprint, Flask, Response, abort, g, request

from feedsvc.config import Settings
from feedsvc.ops import metrics
from feedsvc.web.database import get_db, get_settings

bp = Blueprint("metrics", __name__)
REALM = 'Basic realm="feedsvc metrics", charset="UTF-8"'


def init_app(app: Flask, settings: Settings) -> None:
    """Count and time every request the app answers."""

    @app.before_request
    def start_clock() -> None:
        g.feedsvc_started = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        endpoint = request.endpoint or "none"
        metrics.HTTP_REQUESTS.labels(endpoint, str(response.status_code)).inc()
        started = g.get("feedsvc_started")
        if started is not None:
            metrics.HTTP_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
        return response


def metrics_password(settings: Settings) -> str:
    """The password /metrics asks for: FEEDSVC_METRICS_PASSWORD, else the admin password; '' when neither."""
    return settings.extra.get("FEEDSVC_METRICS_PASSWORD", "") or settings.admin_password


def _offered_password() -> str | None:
    """The password of a Basic or Bearer Authorization header, or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


@bp.get("/metrics")
def scrape() -> Response:
    """The metrics of every process of this app (multiprocess mode) and the outbox's depth."""
    password = metrics_password(get_settings())
    if not password:
        abort(404)
    offered = _offered_password()
    if offered is None or not hmac.compare_digest(offered.encode(), password.encode()):
        return Response("authentication required\n", 401, {"WWW-Authenticate": REALM}, mimetype="text/plain")
    answer = Response(metrics.exposition(get_db()), content_type=metrics.CONTENT_TYPE)
    answer.headers["Cache-Control"] = "no-store"
    return answer
