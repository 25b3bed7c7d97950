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
