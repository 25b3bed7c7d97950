"""`feedsvc check`: read issue files and say what a publish would make of them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from feedsvc.cli.context import get_settings
from feedsvc.content.model import Issue
from feedsvc.content.reader import issue_files, read_issues


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the parsed issue as JSON (a list for several files).")
def check(paths: tuple[Path, ...], as_json: bool) -> None:
    """Check issue FILEs (or folders of them): number, date, items per section, warnings.

    Every file is checked, and every refusal printed with its file and line; the exit status is 1 if
    any file cannot be published (two files with one issue number included).
    """
    publication = get_settings().publication
    files = [f for p in paths for f in (issue_files(p) if p.is_dir() else [p])]
    issues, errors = read_issues(files, publication)
    if as_json:
        if issues:
            payload = issues[0].to_dict() if len(files) == 1 else [i.to_dict() for i in issues]
            click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        for issue in issues:
            click.echo(summary(issue))
    for error in errors:
        click.echo(f"Error: {error}", err=True)
    if errors:
        raise SystemExit(1)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def summary(issue: Issue) -> str:
    """A short human summary of a parsed issue."""
    lines = [
        f"{issue.source}: {issue.title} 第 {issue.number} 期, {issue.date.isoformat()} ({issue.publisher})",
        f"  summary: {_count(len(issue.summary), 'highlight', 'highlights')}",
    ]
    lines += [f"  {s.name} ({s.slug}): {_count(len(s.items), 'item', 'items')}" for s in issue.sections]
    total = sum(len(s.items) for s in issue.sections)
    lines.append(f"  colophon: {_count(len(issue.colophon), 'line', 'lines')}")
    lines.append(
        f"  {_count(total, 'item', 'items')} in {_count(len(issue.sections), 'section', 'sections')}, "
        f"{_count(len(issue.warnings), 'warning', 'warnings')}"
    )
    lines += [
        f"  warning: {issue.source}:{w.line}: {w.message}" if w.line else f"  warning: {w.message}"
        for w in issue.warnings
    ]
    return "\n".join(lines)
