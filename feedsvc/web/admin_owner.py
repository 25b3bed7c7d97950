"""The owner's admin pages: the team (list, add with a mailed set-password link, change role, remove), the audit
log (who, what, when, from where; newest first, paged), and erasing one subscriber. Routes on the admin
blueprint, so its login, role (web/access.py) and CSRF rules apply unchanged."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from feedsvc.db.engine import utcnow
from feedsvc.db.models import Subscriber
from feedsvc.staff import accounts, audit, passwords
from feedsvc.staff.roles import ROLES
from feedsvc.subscribers import privacy
from feedsvc.subscribers.addresses import InvalidAddress, normalise_email
from feedsvc.web.access import acting_client, audit_action, role_label
from feedsvc.web.admin import _require_csrf, bp
from feedsvc.web.auth import current_staff, staff_error
from feedsvc.web.database import get_db, get_settings
from feedsvc.web.language import t
from feedsvc.web.security import csrf_token

AUDIT_PAGE_SIZE = 50


def _to_staff(message: str) -> Response:
    flash(message)
    return redirect(url_for("admin.staff_page"), code=303)


def _actor() -> str:
    member = current_staff()
    assert member is not None  # enforce_roles let only a logged-in owner through
    return member.email


@bp.get("/staff")
def staff_page() -> str:
    """Every staff member with their role; the forms to add one, change a role, remove one."""
    with get_db().session(readonly=True) as s:
        members = accounts.members(s)
    labels = {role: role_label(role) for role in ROLES}
    return render_template("web/admin/staff.html", members=members, roles=labels, me=_actor(), csrf_token=csrf_token())


@bp.post("/staff/add")
def staff_add() -> Response:
    """Add a member with a role, and mail them the link to set their password (through the outbox)."""
    _require_csrf()
    settings, role = get_settings(), request.form.get("role", "")
    try:
        with get_db().session() as s:
            added = accounts.add(s, request.form.get("email", ""), role, _actor(), client=acting_client())
            passwords.invite(s, settings, added.email, utcnow())
    except (accounts.StaffError, InvalidAddress, ValueError) as exc:
        return _to_staff("✗ " + t("无法添加：{reason}", reason=staff_error(exc)))
    return _to_staff("✓ " + t("已添加 {email}，设置密码的链接已发到该邮箱。", email=added.email))


def _other_member(email: str) -> str | None:
    """An error message if `email` is the acting owner's own (an owner cannot lock themselves out here)."""
    try:
        same = normalise_email(email) == _actor()
    except InvalidAddress:
        return None
    return t("不能修改自己的账户；请另一位所有者来做。") if same else None


@bp.post("/staff/role")
def staff_role() -> Response:
    """Give a member another role."""
    _require_csrf()
    email, role = request.form.get("email", ""), request.form.get("role", "")
    if refused := _other_member(email):
        return _to_staff("✗ " + refused)
    try:
        with get_db().session() as s:
            accounts.set_role(s, email, role, _actor(), client=acting_client())
    except (accounts.StaffError, ValueError) as exc:
        return _to_staff("✗ " + t("无法修改：{reason}", reason=staff_error(exc)))
    return _to_staff("✓ " + t("{email} 的角色已改为 {role}。", email=email, role=role_label(role)))


@bp.post("/staff/remove")
def staff_remove() -> Response:
    """Remove a member (their sessions end with them)."""
    _require_csrf()
    email = request.form.get("email", "")
    if refused := _other_member(email):
        return _to_staff("✗ " + refused)
    try:
        with get_db().session() as s:
            accounts.remove(s, email, _actor(), client=acting_client())
    except (accounts.StaffError, ValueError) as exc:
        return _to_staff("✗ " + t("无法移除：{reason}", reason=staff_error(exc)))
    return _to_staff("✓ " + t("已移除 {email}。", email=email))


@bp.get("/audit")
def audit_page() -> str:
    """The audit log, newest first, AUDIT_PAGE_SIZE entries a page (?page=2 …)."""
    page = request.args.get("page", "1")
    if not page.isdigit() or int(page) < 1:
        abort(400, description="page is a number from 1")
    number = int(page)
    with get_db().session(readonly=True) as s:
        found = audit.entries(s, AUDIT_PAGE_SIZE + 1, offset=(number - 1) * AUDIT_PAGE_SIZE)
    return render_template(
        "web/admin/audit.html",
        entries=found[:AUDIT_PAGE_SIZE],
        page=number,
        has_next=len(found) > AUDIT_PAGE_SIZE,
    )


@bp.post("/subscribers/erase")
def erase_subscriber() -> Response:
    """Erase one subscriber and everything about them (feedsvc.subscribers.privacy); the log keeps only a hash."""
    _require_csrf()
    back = redirect(url_for("admin.subscribers_page"), code=303)
    if request.form.get("confirm") != "yes":
        flash("✗ " + t("请先勾选确认框。"))
        return back
    try:
        address = normalise_email(request.form.get("email", ""))
    except InvalidAddress as exc:
        flash("✗ " + t("地址无效：{reason}", reason=exc))
        return back
    with get_db().session() as s:
        subscriber = s.scalar(select(Subscriber).where(Subscriber.email == address))
        if subscriber is None:
            flash("✗ " + t("没有订阅者 {email}。", email=address))
            return back
        privacy.erase(s, subscriber)
        audit_action(s, "subscribers_erase", "sha256:" + privacy.email_hash(address)[:16])
    flash("✓ " + t("已删除 {email} 的全部数据。", email=address))
    return back
