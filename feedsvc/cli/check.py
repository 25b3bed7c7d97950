"""`feedsvc check`: read issue files and say what a publish would make of them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from feedsvc.cli import get_settings, main
from feedsvc.issues import Issue, ParseError, issue_files, load_issues


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the parsed issue as JSON (a list for several files).")
def check(paths: tuple[Path, ...], as_json: bool) -> None:
    """Check issue FILEs (or folders of them): number, date, items per section, warnings."""
    publication = get_settings().publication
    files = [f for p in paths for f in (issue_files(p) if p.is_dir() else [p])]
    try:
        issues = load_issues(files, publication)
    except ParseError as exc:
        raise click.ClickException(str(exc)) from exc
    by_source = {i.source: i for i in issues}
    ordered = [by_source[str(f)] for f in files]
    if as_json:
        payload = ordered[0].to_dict() if len(ordered) == 1 else [i.to_dict() for i in ordered]
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    for issue in ordered:
        click.echo(summary(issue))


def summary(issue: Issue) -> str:
    """A short human summary of a parsed issue."""
    lines = [
        f"{issue.source}: {issue.title} 第 {issue.number} 期, {issue.date.isoformat()} ({issue.publisher})",
        f"  summary: {len(issue.summary)} highlights",
    ]
    lines += [f"  {s.name} ({s.slug}): {len(s.items)} items" for s in issue.sections]
    total = sum(len(s.items) for s in issue.sections)
    lines.append(f"  colophon: {len(issue.colophon)} lines")
    lines.append(f"  {total} items in {len(issue.sections)} sections, {len(issue.warnings)} warnings")
    lines += [
        f"  warning: {issue.source}:{w.line}: {w.message}" if w.line else f"  warning: {w.message}"
        for w in issue.warnings
    ]
    return "\n".join(lines)
