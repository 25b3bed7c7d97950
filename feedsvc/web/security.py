"""The web app's one security policy: response headers, trusted hosts, absolute URLs, and CSRF tokens.

- Every response gets ``nosniff``, ``Referrer-Policy: no-referrer`` (token URLs must never leak), no
  framing (``frame-ancestors 'none'`` and ``X-Frame-Options``), and a CSP that fits what it is: an HTML
  page may show images and post forms to this site only, never run a script; a feed, JSON or CSV
  document gets ``default-src 'none'; sandbox``. A blueprint may set a stricter CSP of its own.
- No server software version is shown (Werkzeug's development server otherwise names itself and Python).
- Only requests for the host of FEEDSVC_BASE_URL (and loopback, for development, tests and health
  checks on the machine) are served (Flask's TRUSTED_HOSTS); any other Host header answers 400. A redirect
  that Flask makes absolute from the Host header (``/issues`` → ``/issues/``) is rebuilt on the base URL.
- Forms put `csrf_token()` in a hidden field named `csrf_token`; handlers call `csrf_ok()`. The RFC 8058
  one-click unsubscribe POST is the one state change that deliberately takes no token.
- Cookies that matter (Flask's signed session, the staff login) are HttpOnly, SameSite=Lax and Path=/; on an
  https site they are Secure and named ``__Host-…``, so no other host (a sibling subdomain) can set or shadow
  them. Flask's signed session is accepted for the staff session's absolute lifetime only (Flask checks the
  signature's age against PERMANENT_SESSION_LIFETIME, 31 days unless told).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, request, session
from werkzeug.serving import WSGIRequestHandler

from feedsvc.config import Settings

CSRF_FIELD = "csrf_token"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: HTML pages: inline styles (the templates use them), images from here or https, forms to here only.
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: pages that carry a subscriber's token: not even a remote image.
LINK_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: everything that is not HTML (feeds, JSON, CSV, text): nothing runs even if a browser renders it.
DOCUMENT_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
SERVER_NAME = "feedsvc"
SESSION_COOKIE = "session"  # Flask's signed session: the CSRF token and the state between two login steps


def init_app(app: Flask, settings: Settings) -> None:
    """Install the policy on every response of `app`, and serve only the base URL's host (and loopback)."""
    app.config["TRUSTED_HOSTS"] = trusted_hosts(settings.base_url)
    base = urlsplit(settings.base_url)

    @app.after_request
    def secure(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", policy_for(response.mimetype))
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        location = urlsplit(response.headers.get("Location", ""))
        if location.netloc and location.netloc == request.host:
            response.headers["Location"] = urlunsplit((base.scheme, base.netloc, *location[2:]))
        return response


def https_site(settings: Settings) -> bool:
    """True when the site is served over https (FEEDSVC_BASE_URL says so)."""
    return settings.base_url.startswith("https://")


def cookie_name(name: str, settings: Settings) -> str:
    """The name a cookie goes by: ``__Host-name`` on an https site (Secure, Path=/, no Domain), else `name`."""
    return f"__Host-{name}" if https_site(settings) else name


def session_config(settings: Settings) -> dict[str, Any]:
    """Flask's session-cookie configuration: the one place its flags and its lifetime are set."""
    return {
        "SESSION_COOKIE_NAME": cookie_name(SESSION_COOKIE, settings),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https_site(settings),
        "SESSION_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": None,
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=settings.staff_session_hours),
    }


def trusted_hosts(base_url: str) -> list[str]:
    """The Host names requests may carry: the base URL's, and loopback."""
    host = urlsplit(base_url).hostname or "localhost"
    return list(dict.fromkeys([host, *LOOPBACK_HOSTS]))


def csrf_token() -> str:
    """This session's CSRF token (created on first use, which sets the session cookie)."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def client_address(trusted_proxies: int) -> str:
    """The client's IP: the socket peer, or the address that `trusted_proxies` proxies in front vouch for."""
    peer = request.remote_addr or "unknown"
    if trusted_proxies <= 0:
        return peer
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    chain = [*forwarded, peer]
    return chain[-(trusted_proxies + 1)] if len(chain) > trusted_proxies else chain[0]


def csrf_ok() -> bool:
    """True when the submitted form carries this session's token."""
    expected = session.get("csrf")
    given = request.form.get(CSRF_FIELD, "")
    return isinstance(expected, str) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


class QuietRequestHandler(WSGIRequestHandler):
    """The development server's handler, naming no software version (Werkzeug says "Werkzeug/x Python/y")."""

    def version_string(self) -> str:
        return SERVER_NAME


def policy_for(content_type: str) -> str:
    """The Content-Security-Policy of a response of `content_type`: pages get the page policy, the rest none."""
    return PAGE_POLICY if content_type.split(";")[0].strip() == "text/html" else DOCUMENT_POLICY
