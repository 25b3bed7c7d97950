"""`feedsvc preview`: the newsletter email of an issue for one section choice, as files and as a test send."""

from __future__ import annotations

from pathlib import Path

import click

from feedsvc.cli.context import get_settings
from feedsvc.config import ConfigError
from feedsvc.content.model import Issue, ParseError
from feedsvc.content.reader import parse
from feedsvc.i18n import LANGUAGES
from feedsvc.mail.message import EmailError, RenderedEmail, build_message, serialise
from feedsvc.mail.newsletter import GMAIL_CLIP_BYTES, render
from feedsvc.mail.samples import parse_test_recipients, sample_links, send_test_messages


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--sections",
    default="all",
    show_default=True,
    help="Section slugs, comma-separated (industry,technology), or all.",
)
@click.option("--to", "to", default="", help="The recipient shown in the preview (default: the sender address).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the .eml, .html and .txt files (default: var/preview).",
)
@click.option(
    "--lang", type=click.Choice(LANGUAGES), default="zh-CN", show_default=True, help="Language of the mail's own text."
)
@click.option(
    "--send-test",
    "send_test",
    default="",
    metavar="ADDRS",
    help="Also send test copies (subject marked [测试 TEST]) through the configured transport: addresses split by "
    "commas, each optionally with its own sections (a@x=industry+research,b@y; default --sections).",
)
def preview(path: Path, sections: str, to: str, out: Path | None, lang: str, send_test: str) -> None:
    """Write the email of issue PATH for a section choice: DIR/<name>.eml, .html (the HTML part), .txt."""
    settings = get_settings()
    publication = settings.publication
    try:
        issue = parse(path, publication)
        rendered = render(issue, sections, publication, lang=lang, templates=settings.templates_dir)
        message = build_message(rendered, to or publication.from_address, sample_links(publication), publication)
    except (ParseError, EmailError) as exc:
        raise click.ClickException(str(exc)) from exc
    folder = out or settings.var_dir / "preview"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{issue.number}-{'-'.join(rendered.sections) if sections != 'all' else 'all'}"
    html_part, text_part = message.get_body(("html",)), message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    files = {
        folder / f"{stem}.eml": serialise(message),
        folder / f"{stem}.html": _lf(html_part.get_content()).encode("utf-8"),
        folder / f"{stem}.txt": _lf(text_part.get_content()).encode("utf-8"),
    }
    for file, data in files.items():
        file.write_bytes(data)
        click.echo(f"wrote {file} ({len(data):,} bytes)")
    size = len(files[folder / f"{stem}.html"])
    encoded = len(html_part.as_bytes())
    verdict = "under" if max(size, encoded) < GMAIL_CLIP_BYTES else "OVER"
    click.echo(
        f"HTML part: {size:,} bytes ({encoded:,} as sent, base64), {verdict} Gmail's clipping size "
        f"({GMAIL_CLIP_BYTES:,} bytes)"
    )
    if send_test:
        try:
            _send_tests(send_test, sections, issue, lang)
        except ConfigError as exc:
            raise click.ClickException(f"test sends not possible: {exc}") from exc


def _send_tests(addresses: str, sections: str, issue: Issue, lang: str) -> None:
    """Send the marked test copies and report each; exit status 1 if any failed."""
    settings = get_settings()
    recipients = parse_test_recipients(addresses, sections)

    def render_for(choice: str) -> RenderedEmail:
        return render(issue, choice, settings.publication, lang=lang, templates=settings.templates_dir)

    where = "by SMTP" if settings.smtp_url else f"into {settings.mail_dir}"
    failed = 0
    for sent in send_test_messages(render_for, recipients, settings):
        if sent.error:
            failed += 1
            click.echo(f"test send to {sent.recipient.address} failed ({sent.error})", err=True)
        else:
            click.echo(f"sent {sent.message_id} to {sent.recipient.address} ({sent.recipient.sections}) {where}")
    if failed:
        raise click.ClickException(f"{failed} of {len(recipients)} test send(s) failed")


def _lf(text: str) -> str:
    """A MIME text part's canonical CRLF line ends as a Unix file's LF."""
    return text.replace("\r\n", "\n")
