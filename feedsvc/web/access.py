"""Who may use which admin page: ENDPOINTS names the staff action (feedsvc.staff.roles.ACTIONS) of every admin
endpoint, and `enforce_roles`, run before each admin request, lets through only a member whose role may do it.

An endpoint missing from ENDPOINTS is refused to everyone (fail closed), so a new page cannot open by being
forgotten; tests/admin/test_roles_every_endpoint.py fails until it has its entry. A refusal is a 403 page
naming the role the action needs. Templates ask `can(action)` to leave out the buttons a role cannot use, and
`audit_action` writes what the logged-in member did to the audit log, in the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request
from sqlalchemy.orm import Session

from feedsvc.staff import audit
from feedsvc.staff.roles import ACTIONS, may, role_needed
from feedsvc.web.auth import current_staff
from feedsvc.web.database import get_settings
from feedsvc.web.language import t
from feedsvc.web.security import client_address

# Admin endpoint -> its action; "{name}" is filled from the URL (`control` serves pause, resume and cancel).
ENDPOINTS: dict[str, str] = {
    "admin.dashboard": "read",
    "admin.issue_page": "read",
    "admin.subscribers_page": "read",
    "admin.email_preview": "preview",
    "admin.send_test": "test_send",
    "admin.send_tests": "test_send",
    "admin.publish": "publish",
    "admin.schedule_issue": "schedule",
    "admin.cancel_schedule": "schedule",
    "admin.control": "{action}",
    "admin.export_csv": "subscribers_export",
    "admin.import_csv": "subscribers_import",
    "admin.erase_subscriber": "subscribers_erase",
    "admin.staff_page": "staff_manage",
    "admin.staff_add": "staff_manage",
    "admin.staff_role": "staff_manage",
    "admin.staff_remove": "staff_manage",
    "admin.audit_page": "audit_read",
    "admin.bounces_page": "read",
}

# The roles as the refusal page names them (English through the catalog).
ROLE_LABELS = {"viewer": "查看者（viewer）", "editor": "编辑（editor）", "owner": "所有者（owner）"}


def action_for(endpoint: str, view_args: dict[str, Any]) -> str | None:
    """The staff action of a request to `endpoint` with `view_args`; None when ENDPOINTS does not know it."""
    pattern = ENDPOINTS.get(endpoint)
    if pattern is None:
        return None
    try:
        action = pattern.format(**view_args)
    except (KeyError, IndexError):
        return None
    return action if action in ACTIONS else None


def enforce_roles() -> Response | None:
    """Before every admin request: through if the logged-in member's role may do the endpoint's action, else 403."""
    member = current_staff()
    action = action_for(request.endpoint or "", request.view_args or {})
    if member is not None and action is not None and may(member.role, action):
        return None
    needed = role_needed(action) if action is not None else None
    page = render_template(
        "web/admin/forbidden.html",
        needed=role_label(needed) if needed else "",
        role=role_label(member.role) if member is not None else "",
    )
    return Response(page, 403)


def role_label(role: str) -> str:
    """A role as the page's reader names it: 编辑（editor） or Editor."""
    return t(ROLE_LABELS.get(role, role))


def can(action: str) -> bool:
    """True when the logged-in member's role may do `action` (for templates: which buttons to show)."""
    member = current_staff()
    return member is not None and may(member.role, action)


def template_helpers() -> dict[str, Any]:
    """`can(action)` for the admin templates."""
    return {"can": can}


def acting_client() -> str:
    """The address this request comes from (behind the trusted proxies), as the audit log keeps it."""
    return client_address(get_settings().trusted_proxies)


def audit_action(session: Session, action: str, detail: str = "") -> None:
    """Record in the audit log that the logged-in member did `action` (an ACTIONS key) from this request's client."""
    member = current_staff()
    audit.record(session, member.email if member is not None else "", action, detail, acting_client())
