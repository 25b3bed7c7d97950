"""CSRF protection for the app's forms: a random token per browser session, checked on every POST.

Forms put `csrf_token()` in a hidden field named `csrf_token`; handlers call `csrf_ok()`. The RFC 8058
one-click unsubscribe POST is the one state change that deliberately takes no token.
"""

from __future__ import annotations

import hmac
import secrets

from flask import request, session

CSRF_FIELD = "csrf_token"


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
