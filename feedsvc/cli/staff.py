"""`feedsvc staff add|list|remove|role|password` and `feedsvc audit [--json]`: the team and what it did."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click
from sqlalchemy.orm import Session

from feedsvc.cli.context import get_settings, open_database
from feedsvc.db.engine import utcnow
from feedsvc.staff import accounts, audit, passwords
from feedsvc.staff.roles import ROLES
from feedsvc.subscribers.addresses import InvalidAddress

CLI_ACTOR = "cli"


def _change(apply: Callable[..., object], *args: object) -> None:
    """Run one staff change in a transaction; a refused change is a clean CLI error."""
    with open_database(get_settings()) as database, database.session() as session:
        try:
            apply(session, *args)
        except (accounts.StaffError, InvalidAddress, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc


def _read_password() -> str:
    return sys.stdin.readline().rstrip("\r\n")


@click.group("staff")
def staff_group() -> None:
    """The publisher's team: accounts with a role (viewer, editor, owner)."""


@staff_group.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the member may do.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def add_command(email: str, role: str, password_stdin: bool) -> None:
    """Add a staff member; without --password-stdin, mail them a link to set their password (through the outbox)."""
    password = _read_password() if password_stdin else None
    settings = get_settings()

    def add(session: Session) -> None:
        member = accounts.add(session, email, role, CLI_ACTOR, password)
        if password is None:
            passwords.invite(session, settings, member.email, utcnow())

    _change(add)
    click.echo(f"added {email} as {role}" + ("" if password_stdin else "; a link to set the password is queued"))


@staff_group.command("list")
def list_command() -> None:
    """Print every staff member: address, role, whether a password is set."""
    with open_database(get_settings()) as database, database.session(readonly=True) as session:
        for member in accounts.members(session):
            click.echo(f"{member.email}\t{member.role}\t{'password' if member.has_password else 'no password'}")


@staff_group.command("remove")
@click.argument("email")
def remove_command(email: str) -> None:
    """Remove a staff member."""
    _change(accounts.remove, email, CLI_ACTOR)
    click.echo(f"removed {email}")


@staff_group.command("role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def role_command(email: str, role: str) -> None:
    """Give a staff member another role."""
    _change(accounts.set_role, email, role, CLI_ACTOR)
    click.echo(f"{email} is now {role}")


@staff_group.command("password")
@click.argument("email")
def password_command(email: str) -> None:
    """Set a staff member's password from the first line of standard input."""
    _change(accounts.set_password, email, _read_password(), CLI_ACTOR)
    click.echo(f"password set for {email}")


@click.command("audit")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of entries.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
def audit_command(as_json: bool, limit: int) -> None:
    """Print the audit log, newest first: when, who, what, from where."""
    with open_database(get_settings()) as database, database.session(readonly=True) as session:
        found = audit.entries(session, limit)
    if as_json:
        click.echo(json.dumps([e.as_json() for e in found], ensure_ascii=False, indent=2))
        return
    for e in found:
        click.echo(f"{e.at.isoformat()}\t{e.actor}\t{e.action}\t{e.detail}\t{e.client or '-'}")
