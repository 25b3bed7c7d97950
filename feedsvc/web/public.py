"""Public side of the web app: the landing page, the archive and feeds of the built site, /healthz, the 404 page.

Archive pages and feeds are files that `feedsvc build` wrote (see feedsvc.site); this module serves them
with HTTP caching done right: a strong ETag (a content hash), Last-Modified (when the bytes last changed),
Cache-Control, 304 on If-None-Match or If-Modified-Since, HEAD, and gzip when the client asks for it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, render_template, request

from feedsvc.config import Settings
from feedsvc.content.model import MAX_ISSUE_NUMBER
from feedsvc.site import websub
from feedsvc.site.archives import PAGE_NAME
from feedsvc.site.pages import install_template_helpers, page_name
from feedsvc.site.reader import SiteFile, SiteReader
from feedsvc.site.writer import SITE_META
from feedsvc.web.language import page_language
from feedsvc.web.security import policy_for

bp = Blueprint("public", __name__)

CACHE_CONTROL = "public, max-age=300"
ARCHIVE_CACHE_CONTROL = "public, max-age=2592000"  # 30 days: an archive URL always holds the same entries
_FEED_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_ISSUE_PATH = re.compile(r"/issues/(\d+)(?:\.html)?/?")


def init_app(app: Flask, settings: Settings) -> None:
    """Attach the reader of the built site and the template filters the pages use."""
    app.extensions["feedsvc.site"] = SiteReader(settings.site_dir)
    install_template_helpers(app.jinja_env)
    websub.resume(settings.site_dir)  # pings a restart interrupted


def _site() -> SiteReader:
    return current_app.extensions["feedsvc.site"]


# ------------------------------------------------------------------------------------------------ pages


@bp.get("/")
def landing() -> str:
    """The publication, its latest issue and every feed (with autodiscovery links)."""
    meta = _site().metadata()
    return render_template(
        "web/index.html",
        latest=_latest(meta),
        feeds=meta["feeds"],
        section_label=_section_label,
    )


@bp.get("/issues/")
def archive() -> Response:
    """Every issue, newest first (a built page)."""
    return _serve(page_name("issues/index", page_language()))


@bp.get("/issues/<int:number>")
def issue(number: int) -> Response:
    """The web version of one issue (a built page), with anchors per section and item."""
    return _serve(page_name(f"issues/{number}", page_language()))


@bp.get("/feeds/<name>.atom")
def feed_atom(name: str) -> Response:
    """An Atom feed: a section slug, `all` or `issues`."""
    return _serve_feed(name, "atom")


@bp.get("/feeds/<name>.json")
def feed_json(name: str) -> Response:
    """The JSON Feed beside each Atom feed."""
    return _serve_feed(name, "json")


@bp.get("/feeds/<name>/archive/<page>.<extension>")
def feed_archive(name: str, page: str, extension: str) -> Response:
    """An RFC 5005 archive document of a feed (Atom or JSON Feed), cached for long."""
    if extension not in ("atom", "json") or not PAGE_NAME.fullmatch(page):
        abort(404)
    return _serve_feed(f"{name}/archive/{page}", extension, ARCHIVE_CACHE_CONTROL)


@bp.get("/feeds.opml")
def feeds_opml() -> Response:
    """Every feed in one OPML file, for a reader to import."""
    return _serve("feeds.opml")


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness for load balancers and monitors; says whether a built site is in place."""
    built = os.path.exists(os.path.join(_site().site_dir, SITE_META))
    body = '{"status": "ok", "site": "%s"}\n' % ("built" if built else "missing")
    return Response(body, mimetype="application/json", headers={"Cache-Control": "no-store"})


@bp.app_errorhandler(404)
def not_found(_error: Exception) -> tuple[str, int]:
    """A 404 page that says what is there instead."""
    meta = _site().metadata()
    issue_match = _ISSUE_PATH.fullmatch(request.path)
    page = render_template(
        "web/404.html",
        path=request.path,
        latest=_latest(meta),
        missing_issue=_issue_number(issue_match.group(1)) if issue_match else None,
        feed_asked=request.path.startswith("/feeds/"),
        feeds=meta["feeds"],
    )
    return page, 404


# -------------------------------------------------------------------------------------------- serving


def _serve_feed(name: str, extension: str, cache_control: str = CACHE_CONTROL) -> Response:
    if not _FEED_NAME.fullmatch(name.partition("/")[0]):
        abort(404)
    return _serve(f"feeds/{name}.{extension}", cache_control)


def _serve(path: str, cache_control: str = CACHE_CONTROL) -> Response:
    """A built file with validators; 304 when the client's copy is current; gzip when asked."""
    found = _site().get(path)
    if found is None:
        abort(404)
    compressed = _wants_gzip(found)
    body, etag = (found.gzipped, found.gzip_etag) if compressed else (found.data, found.etag)
    headers = [
        ("ETag", etag),
        ("Last-Modified", found.last_modified_http),
        ("Cache-Control", cache_control),
        ("Vary", "Accept-Encoding"),
    ]
    if _not_modified(etag, found.last_modified):  # the policy of what it revalidates, not of an empty page
        return Response(status=304, headers=[*headers, ("Content-Security-Policy", policy_for(found.content_type))])
    headers.append(("Content-Type", found.content_type))
    if compressed:
        headers.append(("Content-Encoding", "gzip"))
    return Response(body, headers=headers)


def _wants_gzip(found: SiteFile) -> bool:
    """Gzip if the client accepts it (a plain "gzip, deflate, br" needs no full parse) and it is smaller."""
    accept = request.headers.get("Accept-Encoding", "")
    if "gzip" not in accept or len(found.gzipped) >= len(found.data):
        return False
    return "q=" not in accept or request.accept_encodings["gzip"] > 0


def _not_modified(etag: str, last_modified: dt.datetime) -> bool:
    """RFC 9110 §13.2.2: If-None-Match (weak comparison) decides when present, else If-Modified-Since."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match:
        return if_none_match.strip() == etag or request.if_none_match.contains_weak(etag.strip('"'))
    since = request.if_modified_since
    return since is not None and last_modified <= since


# ------------------------------------------------------------------------------------------- helpers


def _latest(meta: dict[str, Any]) -> dict[str, Any] | None:
    if not meta["issues"]:
        return None
    latest = dict(meta["issues"][0])
    latest["date"] = dt.date.fromisoformat(latest["date"])
    return latest


def _issue_number(digits: str) -> int | None:
    """The issue number a path asks for, if it could be one (int() of 5,000 digits raises)."""
    number = int(digits) if len(digits) <= 10 else None
    return number if number is not None and number <= MAX_ISSUE_NUMBER else None


def _section_label(slug: str) -> str:
    return current_app.extensions["feedsvc.settings"].publication.section_label(slug, page_language())
