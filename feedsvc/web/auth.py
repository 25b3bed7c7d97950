"""Staff login under /admin/: log in and out, the first owner (bootstrap), and `current_staff()`.

A logged-in browser carries a random session id in the `feedsvc_staff` cookie (HttpOnly, SameSite=Lax, Path=/;
on https Secure and named `__Host-feedsvc_staff`, security.cookie_name); the database keeps only its hash
(staff/sessions.py). Every login makes a new id and drops the one the browser had, and clears the Flask session
(so its CSRF token too): an id planted before login is worth nothing after it. `current_staff()` reads the
member from the database once per request, so a role change or a removal applies at once. Every form carries
the CSRF token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, session, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from feedsvc import ratelimit
from feedsvc.config import Settings
from feedsvc.db.engine import utcnow
from feedsvc.staff import accounts, audit, login, passwords, sessions, totp
from feedsvc.staff.accounts import Member, StaffError
from feedsvc.staff.models import StaffMember
from feedsvc.staff.roles import OWNER
from feedsvc.subscribers.addresses import InvalidAddress
from feedsvc.web.database import get_db, get_settings
from feedsvc.web.language import page_language, t
from feedsvc.web.security import LINK_PAGE_POLICY, client_address, cookie_name, csrf_ok, csrf_token, https_site

bp = Blueprint("auth", __name__, url_prefix="/admin")


# A refused staff change as the pages say it (StaffError.kind, or a bad address): never the exception's English.
STAFF_ERRORS = {
    "unknown": "没有这位员工。",
    "exists": "这个地址已经是员工了。",
    "short_password": "密码太短：至少需要 {n} 个字符。",
    "address": "邮箱地址无效。",
    "other": "这项更改无法完成。",
}


def staff_error(exc: Exception) -> str:
    """What a refused staff change says on the page, in the page's language."""
    if isinstance(exc, StaffError):
        kind = exc.kind if exc.kind in STAFF_ERRORS else "other"
    else:
        kind = "address" if isinstance(exc, InvalidAddress) else "other"
    return t(STAFF_ERRORS[kind], n=accounts.MIN_PASSWORD_LENGTH)


COOKIE = "feedsvc_staff"  # the staff cookie's name on an http site; staff_cookie() is the name this site uses
CLOCK = "FEEDSVC_CLOCK"  # app.config key: a callable giving the current UTC datetime (tests inject one)
TOTP_PENDING = timedelta(minutes=5)  # between the right password and the code
RESET_LIMIT = ratelimit.Limit(count=10, window=3600)  # reset requests per client per hour
BOOTSTRAP_LIMIT = ratelimit.Limit(count=20, window=600)  # wrong admin passwords per client per 10 minutes


def now() -> datetime:
    """The current time, from the app's injected clock if it has one."""
    clock: Callable[[], datetime] = current_app.config.get(CLOCK) or utcnow
    return clock()


def lifetime(settings: Settings) -> sessions.Lifetime:
    """The staff session lifetime the settings give."""
    return sessions.Lifetime(
        idle=timedelta(minutes=settings.staff_idle_minutes), absolute=timedelta(hours=settings.staff_session_hours)
    )


def current_staff() -> Member | None:
    """The logged-in staff member of this request (its role as the database has it now), or None."""
    if "staff_member" not in g:
        g.staff_member = _load_member()
    return g.staff_member


def _load_member() -> Member | None:
    session_id = request.cookies.get(staff_cookie(), "")
    if not session_id:
        return None
    with get_db().session() as s:
        row = sessions.resume(s, session_id, now(), lifetime(get_settings()))
        return Member(row.email, row.role, row.password_hash is not None) if row is not None else None


def client() -> str:
    """The client address of this request (behind the trusted proxies)."""
    return client_address(get_settings().trusted_proxies)


@bp.app_context_processor
def _staff_helpers() -> dict[str, Any]:
    return {"current_staff": current_staff, "staff_csrf_token": csrf_token}


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _safe_next(target: str | None) -> str:
    """Where to go after login: a path under /admin of this site, else the dashboard."""
    target = target or ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/admin") or "\\" in target:
        return url_for("admin.dashboard")
    return target


def staff_cookie() -> str:
    """The name of the staff login cookie on this site (``__Host-feedsvc_staff`` on https)."""
    return cookie_name(COOKIE, get_settings())


def _secure_cookie() -> bool:
    return request.is_secure or https_site(get_settings())


def start_session(s: Session, member: StaffMember, target: str | None = None) -> Response:
    """Log `member` in: a new session id (the browser's old one ended), audited, and a redirect to `target`."""
    sessions.end(s, request.cookies.get(staff_cookie(), ""))
    sessions.prune(s, now(), lifetime(get_settings()))  # abandoned sessions go here; a login is rare enough
    session_id = sessions.start(s, member.id, now())
    audit.record(s, member.email, "login", "", client())
    session.clear()  # a fresh CSRF token, nothing carried over from before login
    response = redirect(_safe_next(target))
    response.set_cookie(staff_cookie(), session_id, httponly=True, samesite="Lax", secure=_secure_cookie(), path="/")
    return response


def _form_page(template: str, status: int = 200, **context: object) -> Response:
    return Response(render_template(template, **context), status)


def _login_page(status: int = 200, error: str = "", email: str = "") -> Response:
    settings = get_settings()
    with get_db().session(readonly=True) as s:
        has_staff = login.any_staff(s)
    return _form_page(
        "web/admin/login.html",
        status,
        has_staff=has_staff,
        bootstrap=bool(settings.admin_password),
        error=error,
        email=email,
        next=request.values.get("next", ""),
    )


@bp.get("/login")
def login_form() -> Response:
    """The login form; with no staff yet, the page to create the first owner (or how to, from the shell)."""
    return _login_page()


@bp.post("/login")
def login_submit() -> Response:
    """Check the address and password (limited, no oracle); log in, or ask for the TOTP code first."""
    if not csrf_ok():
        return _csrf_refused()
    email = request.form.get("email", "").strip()[:320]
    password = request.form.get("password", "")
    settings = get_settings()
    with get_db().session() as s:
        member = login.check_password(s, settings.secret_key, email, password, client(), now())
        if member is not None and member.totp_secret:
            session["totp_pending"] = [member.id, now().timestamp(), request.form.get("next", "")]
            return redirect(url_for("auth.totp_form"))
        if member is not None:
            return start_session(s, member, request.form.get("next"))
    return _login_page(error=t("邮箱或密码不正确，或尝试次数过多。请稍后再试。"), email=email)


def _pending_member(s: Session) -> StaffMember | None:
    """The member who gave the right password and owes the TOTP code (for at most TOTP_PENDING), or None."""
    pending = session.get("totp_pending")
    if not (isinstance(pending, list) and len(pending) == 3 and type(pending[0]) is int):
        return None
    if now().timestamp() - float(pending[1]) > TOTP_PENDING.total_seconds():
        return None
    return s.get(StaffMember, pending[0])


@bp.get("/login/totp")
def totp_form() -> Response:
    """The second step for a member with TOTP: the six-digit code."""
    with get_db().session(readonly=True) as s:
        if _pending_member(s) is None:
            return redirect(url_for("auth.login_form"))
    return _form_page("web/admin/totp_step.html", error="")


@bp.post("/login/totp")
def totp_submit() -> Response:
    """Check the TOTP code (limited like passwords, never the same code twice); log in."""
    if not csrf_ok():
        return _csrf_refused()
    secret = get_settings().secret_key
    with get_db().session() as s:
        member = _pending_member(s)
        if member is None:
            return redirect(url_for("auth.login_form"))
        is_locked = login.locked(s, secret, member.email, client(), now())
        if not is_locked and totp.use_code(member, request.form.get("code", ""), now()):
            target = session["totp_pending"][2]
            return start_session(s, member, target)
        login.fail(s, secret, member.email, client(), now(), "totp locked" if is_locked else "totp")
    return _form_page("web/admin/totp_step.html", error=t("验证码不正确，或尝试次数过多。请稍后再试。"))


@bp.post("/logout")
def logout() -> Response:
    """End this browser's session (the row is deleted) and forget the cookie."""
    if not csrf_ok():
        return _csrf_refused()
    member = current_staff()
    with get_db().session() as s:
        sessions.end(s, request.cookies.get(staff_cookie(), ""))
        if member is not None:
            audit.record(s, member.email, "logout", "", client())
    session.clear()
    response = redirect(url_for("auth.login_form"))
    response.delete_cookie(staff_cookie(), path="/", httponly=True, samesite="Lax", secure=_secure_cookie())
    return response


def _owner_row(s: Session) -> StaffMember:
    """The logged-in owner's row; a redirect to login (GET) or 403 otherwise."""
    member = current_staff()
    if member is None and request.method == "GET":
        abort(redirect(url_for("auth.login_form", next=request.path)))
    row = s.scalar(select(StaffMember).where(StaffMember.email == member.email)) if member else None
    if row is None or row.role != OWNER:
        abort(403)
    return row


def _totp_page(row: StaffMember, status: int = 200, error: str = "") -> Response:
    """The TOTP page of `row`: removal once enrolled, else the secret being enrolled (kept on the row, or new)."""
    enrolled = bool(row.totp_secret)
    secret = "" if enrolled else totp.pending_secret(row, now())
    uri = totp.provisioning_uri(secret, row.email, get_settings().publication.name) if secret else ""
    return _link_page("web/admin/totp.html", status, enrolled=enrolled, secret=secret, uri=uri, error=error)


@bp.get("/totp")
def totp_setup() -> Response:
    """An owner's second factor: the secret to enrol (kept on the member's row until confirmed), or removal."""
    with get_db().session() as s:
        return _totp_page(_owner_row(s))


@bp.post("/totp")
def totp_enrol() -> Response:
    """Turn TOTP on once the owner shows a code of the secret being enrolled (an expired one: a new secret)."""
    if not csrf_ok():
        return _csrf_refused()
    with get_db().session() as s:
        row = _owner_row(s)
        if not totp.enrol(row, request.form.get("code", ""), now()):
            return _totp_page(row, 400, t("验证码不正确。"))
        audit.record(s, row.email, "totp.enrol", "", client())
    return redirect(url_for("auth.totp_setup"))


@bp.post("/totp/remove")
def totp_remove() -> Response:
    """Turn TOTP off, with a current code."""
    if not csrf_ok():
        return _csrf_refused()
    with get_db().session() as s:
        row = _owner_row(s)
        if not totp.use_code(row, request.form.get("code", ""), now()):
            return _totp_page(row, 400, t("验证码不正确。"))
        row.totp_secret = None
        audit.record(s, row.email, "totp.remove", "", client())
    return redirect(url_for("auth.totp_setup"))


@bp.get("/password/reset")
def reset_form() -> Response:
    """Ask for a password link by address."""
    return _form_page("web/admin/password_reset.html", sent=False)


@bp.post("/password/reset")
def reset_submit() -> Response:
    """Mail a set-password link if the address is staff; the same answer whether it is or not."""
    if not csrf_ok():
        return _csrf_refused()
    settings = get_settings()
    key = ratelimit.client_key("staff-reset", client(), settings.secret_key)
    with get_db().session() as s:
        if ratelimit.hit(s, key, RESET_LIMIT, now().timestamp()):
            passwords.request_reset(s, settings, request.form.get("email", "")[:320], page_language(), now(), client())
    return _form_page("web/admin/password_reset.html", sent=True)


@bp.get("/password/<token>")
def password_form(token: str) -> Response:
    """The form to choose a password, from a mailed link (a GET changes nothing: link scanners fetch it)."""
    with get_db().session(readonly=True) as s:
        try:
            member = passwords.resolve(s, get_settings(), token, now())
        except passwords.LinkError:
            return _link_page("web/admin/password_set.html", 404, usable=False, error="")
        return _link_page("web/admin/password_set.html", usable=True, email=member.email, error="")


@bp.post("/password/<token>")
def password_submit(token: str) -> Response:
    """Set the password a mailed link is for; its other sessions end and the link is used up."""
    if not csrf_ok():
        return _csrf_refused()
    password = request.form.get("password", "")
    error = ""
    with get_db().session() as s:
        try:
            email = passwords.resolve(s, get_settings(), token, now()).email
            if password != request.form.get("password2", ""):
                error = t("两次输入的密码不一致。")
            else:
                passwords.set_by_link(s, get_settings(), token, password, now(), client())
                return _link_page("web/admin/password_done.html", email=email)
        except passwords.LinkError:
            return _link_page("web/admin/password_set.html", 404, usable=False, error="")
        except StaffError as exc:
            error = staff_error(exc)
    return _link_page("web/admin/password_set.html", 400, usable=True, email=email, error=error)


def _link_page(template: str, status: int = 200, **context: object) -> Response:
    response = _form_page(template, status, **context)
    response.headers["Content-Security-Policy"] = LINK_PAGE_POLICY
    return response


@bp.post("/setup")
def bootstrap() -> Response:
    """Create the first owner with FEEDSVC_ADMIN_PASSWORD; refused (404) once any staff exists (atomic: one owner)."""
    if not csrf_ok():
        return _csrf_refused()
    settings = get_settings()
    if not settings.admin_password:
        abort(404)
    key = ratelimit.client_key("staff-bootstrap", client(), settings.secret_key)
    stamp = now().timestamp()
    email = request.form.get("email", "").strip()[:320]
    with get_db().session() as s:
        if login.any_staff(s):
            abort(404)
        given = request.form.get("admin_password", "")
        if ratelimit.exceeded(s, key, BOOTSTRAP_LIMIT, stamp) or not hmac.compare_digest(
            given.encode(), settings.admin_password.encode()
        ):
            ratelimit.hit(s, key, BOOTSTRAP_LIMIT, stamp)
            audit.record(s, email, "login.failed", "bootstrap", client())
            error = t("管理员密码不正确，或尝试次数过多。")
        elif request.form.get("password", "") != request.form.get("password2", ""):
            error = t("两次输入的密码不一致。")
        else:
            try:
                member = login.add_first_owner(s, email, request.form.get("password", ""))
            except (StaffError, ValueError) as exc:
                error = t("无法创建：{reason}", reason=staff_error(exc))
            else:
                if member is None:  # another request made the first owner meanwhile
                    abort(404)
                return start_session(s, member)
    return _login_page(400, error=error, email=email)


def _csrf_refused() -> Response:
    return _form_page("web/csrf_error.html", 400, back=request.path)
