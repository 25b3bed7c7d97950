"""`feedsvc dkim keygen`: a new DKIM key pair, private to its owner, and the DNS record to publish for it.

Also `check_at_start`, which the worker runs before sending anything: a broken key or a DKIM domain that
does not align with From is said then, never halfway through a send.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from feedsvc.cli.context import get_settings
from feedsvc.config import ConfigError, Settings
from feedsvc.mail import signing
from feedsvc.mail.alignment import alignment_problems

if TYPE_CHECKING:
    from feedsvc.mail.dkim import Signer

log = logging.getLogger("feedsvc.worker")


@click.group("dkim")
def dkim_group() -> None:
    """DKIM signing keys (the private key reaches the worker only through the environment)."""


@dkim_group.command("keygen")
@click.option("--selector", required=True, help="The selector of the new key (a DNS label, e.g. 2026a).")
@click.option("--ed25519", "use_ed25519", is_flag=True, help="An Ed25519 key (RFC 8463) instead of RSA 2048.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (default: var/dkim/<selector>.pem). Never overwritten.",
)
def keygen(selector: str, use_ed25519: bool, output: Path | None) -> None:
    """Write a new key pair (mode 0600) and print the TXT record to publish.

    Rotation: make a key with a new selector, publish its record, wait for DNS, then switch dkim_selector
    and the key variable and restart the workers; keep the old record a week for mail still in transit.
    """
    from feedsvc.mail import dkim  # dkimpy, cryptography, dnspython: for this command, not in the worker
    from feedsvc.mail.dns_records import Record, zone_line

    settings = get_settings()
    selector = selector.strip().lower()
    algorithm = dkim.ED25519 if use_ed25519 else dkim.RSA
    path = output or settings.var_dir / "dkim" / f"{selector}.pem"
    pem, key = dkim.generate_key(algorithm, selector)
    _write_private(path, pem)
    publication = settings.publication
    domain = publication.dkim_domain or publication.mail_domain
    variable = dkim.ED25519_KEY_FILE if use_ed25519 else dkim.KEY_FILE
    setting = "dkim_ed25519_selector" if use_ed25519 else "dkim_selector"
    click.echo(f"wrote {path} (mode 0600, {algorithm})", err=True)
    click.echo(f'; publish this record, then set [mail] {setting} = "{selector}" and {variable}={path.resolve()}')
    click.echo(zone_line(Record(key.record_name(domain), "TXT", key.txt, "DKIM", "dkim")))
    if not publication.dkim_domain:
        click.echo(f"; [mail] dkim_domain is not set: the record above assumes {domain}", err=True)


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner only from the first byte; an existing file is never replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{path} exists; choose another selector or --output") from None
    except OSError as exc:
        raise click.ClickException(f"cannot create {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def check_at_start(settings: Settings) -> Signer | None:
    """The signer the worker will use, loaded and proven now; a broken key stops the worker with the reason,
    a DKIM domain that does not align with From is said on stderr. dkimpy is loaded only when DKIM is asked for."""
    signer = None
    if signing.configured(settings):
        from feedsvc.mail.dkim import Signer

        try:
            signer = Signer.from_settings(settings)
        except ConfigError as exc:
            raise click.ClickException(f"{exc} (nothing was sent)") from exc
    for problem in alignment_problems(settings.publication, settings.publication.mail_domain):
        log.warning("%s", problem)
    if signer is None:
        log.info("DKIM: not configured, mail goes out unsigned ([mail] dkim_selector, dkim_domain)")
    else:
        keys = ", ".join(f"{k.algorithm} s={k.selector}" for k in signer.keys)
        log.info("DKIM: signing as d=%s (%s)", signer.domain, keys)
    return signer
