"""The action table: what each role may do, as issue 14 lists it."""

from __future__ import annotations

import pytest

from feedsvc.staff.roles import ACTIONS, EDITOR, OWNER, ROLES, VIEWER, UnknownAction, may, role_needed


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        (VIEWER, "read", True),
        (VIEWER, "preview", False),
        (VIEWER, "publish", False),
        (EDITOR, "preview", True),
        (EDITOR, "publish", True),
        (EDITOR, "cancel", True),
        (EDITOR, "subscribers_import", False),
        (EDITOR, "subscribers_erase", False),
        (EDITOR, "staff_manage", False),
        (OWNER, "subscribers_export", True),
        (OWNER, "staff_manage", True),
        (OWNER, "audit_read", True),
    ],
)
def test_each_role_may_do_what_the_issue_says(role: str, action: str, allowed: bool) -> None:
    assert may(role, action) is allowed


def test_every_action_needs_a_known_role_and_an_owner_may_do_everything() -> None:
    assert set(ACTIONS.values()) <= set(ROLES)
    assert all(may(OWNER, action) for action in ACTIONS)


def test_an_unknown_action_is_refused_not_allowed() -> None:
    with pytest.raises(UnknownAction):
        role_needed("drop_tables")
