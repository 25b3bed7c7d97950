"""The three staff roles, ordered: a viewer reads, an editor also sends and publishes, an owner does everything."""

from __future__ import annotations

VIEWER, EDITOR, OWNER = "viewer", "editor", "owner"
ROLES = (VIEWER, EDITOR, OWNER)  # weakest first: each role may do everything of those before it


class UnknownRole(ValueError):
    """A role name that is not one of ROLES."""


def check_role(role: str) -> str:
    """`role` if it is a known role; UnknownRole otherwise."""
    if role not in ROLES:
        raise UnknownRole(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def allows(role: str, needed: str) -> bool:
    """True when someone with `role` may do what needs `needed`."""
    return ROLES.index(check_role(role)) >= ROLES.index(check_role(needed))


# What each staff action needs: the one table the admin pages, the API and the CLI's checks all read.
ACTIONS: dict[str, str] = {
    "read": VIEWER,  # every admin page and API read: issues, sends, subscribers (counts and lists), stats
    "preview": EDITOR,
    "test_send": EDITOR,
    "publish": EDITOR,
    "schedule": EDITOR,
    "pause": EDITOR,
    "resume": EDITOR,
    "cancel": EDITOR,
    "subscribers_add": OWNER,
    "subscribers_change": OWNER,
    "subscribers_unsubscribe": OWNER,
    "subscribers_import": OWNER,
    "subscribers_export": OWNER,
    "subscribers_erase": OWNER,
    "staff_manage": OWNER,
    "audit_read": OWNER,
}


class UnknownAction(KeyError):
    """An action name missing from ACTIONS."""


def role_needed(action: str) -> str:
    """The weakest role that may do `action`."""
    try:
        return ACTIONS[action]
    except KeyError:
        raise UnknownAction(action) from None


def may(role: str, action: str) -> bool:
    """True when someone with `role` may do `action`."""
    return allows(role, role_needed(action))
