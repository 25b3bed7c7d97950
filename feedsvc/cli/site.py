"""`feedsvc build` and `feedsvc serve`: write the static site, and serve it with the web app."""

from __future__ import annotations

from pathlib import Path

import click

from feedsvc.cli.context import get_settings, setup_logs
from feedsvc.content.model import ParseError
from feedsvc.db.engine import Database
from feedsvc.search.index import reindex_folder
from feedsvc.site.build import build as build_site
from feedsvc.site.writer import SiteError


@click.command()
@click.option(
    "--issues",
    "issues_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of issue files (default: issues/ beside feedsvc.toml).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Where the site goes (default: where `feedsvc serve` looks, var/site or FEEDSVC_SITE_DIR).",
)
def build(issues_dir: Path | None, out_dir: Path | None) -> None:
    """Write feeds and archive pages for every issue, atomically: a failed build changes nothing."""
    settings = get_settings()
    issues_dir = issues_dir or settings.issues_dir
    out_dir = out_dir or settings.site_dir
    try:
        result = build_site(issues_dir, out_dir, settings.publication, settings.templates_dir)
    except (ParseError, SiteError) as exc:
        raise click.ClickException(f"build failed, the previous site is unchanged: {exc}") from exc
    changed = f"{len(result.changed)} changed" if result.changed else "nothing changed"
    click.echo(f"built {result.issues} issue(s) into {result.out_dir}: {result.files} files, {changed}")
    _reindex(settings.database_url, issues_dir)


def _reindex(database_url: str, issues_dir: Path) -> None:
    """Fill the archive search index from the issues just built, when the database is set up."""
    database = Database(database_url)
    try:
        if database.schema_problem():
            click.echo("search index not updated: the database is not set up (`feedsvc db upgrade`)", err=True)
            return
        with database.session() as session:
            count = reindex_folder(session, issues_dir, get_settings().publication)
        click.echo(f"search index: {count} issue(s)")
    finally:
        database.dispose()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--debug", is_flag=True, help="Flask debug mode (reloader and debugger; never in production).")
def serve(host: str, port: int, debug: bool) -> None:
    """Serve the site, feeds and subscription pages (development server; deploy/ has gunicorn)."""
    from feedsvc.web import create_app
    from feedsvc.web.security import QuietRequestHandler

    setup_logs()
    settings = get_settings()
    if not (settings.site_dir / "site.json").exists():
        click.echo(f"note: no site built in {settings.site_dir} yet; run `feedsvc build`", err=True)
    create_app(settings).run(host=host, port=port, debug=debug, threaded=True, request_handler=QuietRequestHandler)
