"""Staff accounts, roles and the audit log: the core and `feedsvc staff` / `feedsvc audit`. On SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from support import ROOT

from feedsvc.cli import main
from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.staff import accounts, audit, roles

PASSWORD = "correct horse battery staple"


def run(args: list[str], settings: Settings, stdin: str | None = None) -> tuple[int, str]:
    env = {
        "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml"),
        "FEEDSVC_VAR_DIR": str(settings.var_dir),
        "FEEDSVC_SECRET_KEY": settings.secret_key,
        "DATABASE_URL": settings.database_url,
    }
    result = CliRunner().invoke(main, args, env=env, input=stdin)
    return result.exit_code, result.output


def test_roles_are_ordered() -> None:
    assert roles.allows(roles.OWNER, roles.EDITOR) and roles.allows(roles.EDITOR, roles.EDITOR)
    assert not roles.allows(roles.VIEWER, roles.EDITOR) and not roles.allows(roles.EDITOR, roles.OWNER)
    with pytest.raises(roles.UnknownRole):
        roles.allows("admin", roles.VIEWER)


def test_passwords_are_hashed_and_checked(db: Database) -> None:
    with db.session() as s:
        accounts.add(s, "Ed@Example.ORG", roles.EDITOR, "cli", PASSWORD)
        accounts.add(s, "new@example.org", roles.VIEWER, "cli")
    with db.session() as s:
        assert accounts.authenticate(s, "ed@example.org", PASSWORD) == accounts.Member(
            "ed@example.org", roles.EDITOR, True
        )
        assert accounts.authenticate(s, "ed@example.org", "wrong password!") is None
        assert accounts.authenticate(s, "nobody@example.org", PASSWORD) is None
        assert accounts.authenticate(s, "new@example.org", "") is None  # no password set: no way in
        assert accounts.authenticate(s, "not an address", PASSWORD) is None
        stored = s.scalar(
            accounts.select(accounts.StaffMember.password_hash).where(accounts.StaffMember.email == "ed@example.org")
        )
    assert stored and stored.startswith("$argon2id$") and PASSWORD not in stored
    with db.session() as s, pytest.raises(accounts.StaffError):
        accounts.set_password(s, "ed@example.org", "short", "cli")


def test_changes_are_refused_cleanly_and_audited(db: Database) -> None:
    with db.session() as s:
        accounts.add(s, "o@example.org", roles.OWNER, "cli", PASSWORD)
    with db.session() as s, pytest.raises(accounts.StaffError):
        accounts.add(s, "O@example.org", roles.VIEWER, "cli")
    with db.session() as s:
        accounts.set_role(s, "o@example.org", roles.EDITOR, "boss@example.org")
        accounts.remove(s, "o@example.org", "boss@example.org")
    with db.session() as s, pytest.raises(accounts.StaffError):
        accounts.remove(s, "o@example.org", "cli")
    with db.session(readonly=True) as s:
        log = audit.entries(s)
    assert [(e.actor, e.action, e.detail) for e in log] == [
        ("boss@example.org", "staff.remove", "o@example.org"),
        ("boss@example.org", "staff.role", "o@example.org owner -> editor"),
        ("cli", "staff.add", "o@example.org owner"),
    ]


def test_staff_and_audit_commands(settings: Settings) -> None:
    assert (
        run(["staff", "add", "o@example.org", "--role", "owner", "--password-stdin"], settings, PASSWORD + "\n")[0] == 0
    )
    assert run(["staff", "add", "v@example.org", "--role", "viewer"], settings)[0] == 0
    code, out = run(["staff", "add", "v@example.org", "--role", "viewer"], settings)
    assert code == 1 and "staff already" in out
    assert run(["staff", "role", "v@example.org", "editor"], settings)[0] == 0
    code, out = run(["staff", "list"], settings)
    assert out.splitlines() == ["o@example.org\towner\tpassword", "v@example.org\teditor\tno password"]
    code, out = run(["staff", "password", "v@example.org"], settings, "short\n")
    assert code == 1 and "at least 12" in out
    assert run(["staff", "remove", "v@example.org"], settings)[0] == 0
    assert run(["staff", "remove", "v@example.org"], settings)[0] == 1
    code, out = run(["audit", "--json"], settings)
    actions = [e["action"] for e in json.loads(out)]
    assert code == 0 and actions == ["staff.remove", "staff.role", "staff.add", "staff.add"]
    code, out = run(["audit"], settings)
    assert code == 0 and "\tcli\tstaff.remove\tv@example.org\t-" in out
