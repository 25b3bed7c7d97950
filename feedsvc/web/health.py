"""Readiness for load balancers (/readyz), and the friendly 503 page when the database is out of reach.

`/healthz` (feedsvc.web.public) is liveness: the process answers, nothing else is checked, so a supervisor
never restarts a healthy process because PostgreSQL is restarting. `/readyz` is readiness: the database
answers a ``SELECT 1`` (PostgreSQL connections time out after a few seconds, feedsvc.db.engine) and a built
site is in place; otherwise 503 with a small JSON body naming what failed. Pages that need the database
answer 503 with ``Retry-After`` while it is away (the built feeds and archive pages keep coming from disk),
and the next request after it returns simply works: the pool checks each connection at checkout
(feedsvc.db.engine) and replaces one the restart cut.
"""

from __future__ import annotations

import json
import logging
import os

from flask import Blueprint, Flask, Response, current_app, render_template
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from feedsvc.site.writer import SITE_META
from feedsvc.web.database import get_db, get_settings

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)  # the database is away, not a bug in a query


def init_app(app: Flask) -> None:
    """Answer a lost database with the 503 page (never a traceback)."""
    for error in UNAVAILABLE:
        app.register_error_handler(error, database_unavailable)


def database_unavailable(error: Exception) -> Response:
    """503, ``Retry-After``, in the page language; one log line, not a traceback."""
    log.warning("database unavailable, answered 503: %s", str(error).strip().splitlines()[0] if str(error) else error)
    page = render_template("web/unavailable.html", seconds=RETRY_AFTER_SECONDS)
    response = current_app.make_response((page, 503))
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/readyz")
def readyz() -> Response:
    """Ready to serve: 200 when the database answers and the site is built; else 503 naming what failed."""
    checks = {"database": _database(), "site": _site()}
    ready = checks == {"database": "ok", "site": "built"}
    body = json.dumps({"status": "ready" if ready else "unready", **checks}) + "\n"
    return Response(
        body, status=200 if ready else 503, mimetype="application/json", headers={"Cache-Control": "no-store"}
    )


def _database() -> str:
    try:
        with get_db().engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as exc:
        return f"unreachable: {type(exc.orig if getattr(exc, 'orig', None) else exc).__name__}"
    return "ok"


def _site() -> str:
    return "built" if os.path.exists(os.path.join(get_settings().site_dir, SITE_META)) else "missing"
