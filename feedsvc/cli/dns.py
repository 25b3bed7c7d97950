"""`feedsvc dns`: the DNS records the publication's mail needs, ready to paste; `--check` looks them up."""

from __future__ import annotations

import click

from feedsvc.cli.context import get_settings
from feedsvc.config import ConfigError
from feedsvc.mail import dkim
from feedsvc.mail.dns_records import check, records, resolver, zone_line


@click.command("dns")
@click.option("--check", "do_check", is_flag=True, help="Look the records up and say what is missing or wrong.")
@click.option("--nameserver", metavar="IP", help="Ask this DNS server (default: the system's resolver).")
@click.option("--port", default=53, show_default=True, type=click.IntRange(1, 65535), help="The nameserver's port.")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(min=0.1), help="Seconds per lookup.")
def dns_command(do_check: bool, nameserver: str | None, port: int, timeout: float) -> None:
    """Print SPF, DKIM (per selector) and DMARC records as zone-file lines; exit 1 if something is wrong.

    The DKIM records are made from the keys in FEEDSVC_DKIM_KEY_FILE / FEEDSVC_DKIM_KEY and
    FEEDSVC_DKIM_ED25519_KEY_FILE, so run it where the worker runs.
    """
    settings = get_settings()
    publication = settings.publication
    try:
        signer = dkim.Signer.from_settings(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    keys = signer.keys if signer else ()
    # The envelope (Return-Path) domain: the [bounces] return_path's when VERP is on, else the From address's.
    envelope = publication.return_path.rpartition("@")[2].lower() or publication.mail_domain
    problems = dkim.alignment_problems(publication, envelope)
    if not keys:
        problems.append("no DKIM key configured: feedsvc dkim keygen --selector NAME, then [mail] dkim_selector")
    wanted = records(publication, keys, envelope)
    for record in wanted:
        click.echo(f"; {record.purpose}")
        click.echo(zone_line(record))
    if do_check:
        lookup = resolver(nameserver, port, timeout)
        click.echo(f";; looked up at {nameserver or 'the system resolver'}{f':{port}' if nameserver else ''}")
        for finding in check(publication, keys, lookup, envelope):
            mark = "ok" if finding.ok else "PROBLEM"
            click.echo(f";; {mark:<7} {finding.record.type} {finding.record.name}: {finding.detail}")
            if not finding.ok:
                problems.append(f"{finding.record.name}: {finding.detail}")
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        raise SystemExit(1)
