"""`feedsvc staff add|list|remove|role|password`, `feedsvc staff token create|list|revoke` and
`feedsvc audit [--json]`: the team, their API tokens, and what they did."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click
from sqlalchemy.orm import Session

from feedsvc.cli.context import CLI_ACTOR, get_settings, open_database
from feedsvc.db.engine import utcnow
from feedsvc.staff import accounts, audit, passwords, tokens
from feedsvc.staff.roles import ROLES
from feedsvc.subscribers.addresses import InvalidAddress


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


@staff_group.group("token")
def token_group() -> None:
    """API tokens: each acts for its staff member, with the member's current role."""


@token_group.command("create")
@click.argument("email")
@click.option("--name", default="", help="What the token is for (shown in lists and the audit log).")
def token_create(email: str, name: str) -> None:
    """Make an API token for EMAIL and print it, once: only its hash is kept."""
    made: list[tuple[str, tokens.Token]] = []
    _change(lambda s: made.append(tokens.create(s, email, CLI_ACTOR, name)))
    secret, token = made[0]
    click.echo(secret)
    click.echo(f"{token.label} for {token.email}: keep it now, it is not shown again", err=True)


@token_group.command("list")
@click.argument("email", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of tokens.")
def token_list(email: str | None, as_json: bool) -> None:
    """Print every API token (or EMAIL's): id, member, name, created, last used, revoked."""
    with open_database(get_settings()) as database, database.session(readonly=True) as session:
        found = tokens.tokens(session, email)
    if as_json:
        click.echo(json.dumps([t.as_json() for t in found], ensure_ascii=False, indent=2))
        return
    for t in found:
        row = t.as_json()
        times = [str(row[k] or "-") for k in ("created_at", "last_used_at", "revoked_at")]
        click.echo("\t".join([str(t.id), t.email, t.name or "-", *times]))


@token_group.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke API token ID: it is refused from now on."""
    _change(tokens.revoke, token_id, CLI_ACTOR)
    click.echo(f"revoked token {token_id}")


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
