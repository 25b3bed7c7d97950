"""Building the static site: issues -> rendered files (feeds and their archives, pages, OPML, manifest) -> written.

No Flask and no database here. A build renders everything in memory first (a parse or template error stops
it before the disk is touched), then hands the files to feedsvc.site.writer. Same input, same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from feedsvc.config import Publication
from feedsvc.content.model import Issue
from feedsvc.content.reader import issue_files, load_issues, newest_first
from feedsvc.site import feeds, manifest, opml, websub
from feedsvc.site.pages import feed_listing, render_pages
from feedsvc.site.writer import SITE_META, BuildResult, SiteError, SiteWriter, open_site

__all__ = ["build", "build_issues", "render_site", "site_metadata"]


def build(
    issues_dir: Path, out_dir: Path, publication: Publication, templates_dir: Path, now: dt.datetime | None = None
) -> BuildResult:
    """Parse every issue in `issues_dir`, render the site and swap it in at `out_dir`; then queue WebSub pings
    for the feeds that changed (in the background: feedsvc.site.websub).

    A `ParseError` (or a template error) is raised before the site changes. The build lock is held from
    reading issues/ to the swap, so two builds at once cannot put an older reading of issues/ back.
    """
    if not Path(issues_dir).is_dir():
        raise SiteError(f"{issues_dir}: no such folder of issues")
    with open_site(out_dir) as site:
        issues = load_issues(issue_files(issues_dir), publication)
        result = build_issues(site, issues, publication, templates_dir, now)
    websub.announce(result.out_dir, result.changed, publication)
    return result


def build_issues(
    site: SiteWriter,
    issues: Sequence[Issue],
    publication: Publication,
    templates_dir: Path,
    now: dt.datetime | None = None,
) -> BuildResult:
    """Render issues already read and write them through `site` (whose lock the caller holds).

    The previous generation's manifest tells which entries were corrected since (feedsvc.site.manifest).
    """
    history = manifest.load(_read_current(site.out_dir, manifest.MANIFEST))
    result = site.write(render_site(issues, publication, templates_dir, history, now))
    return replace(result, issues=len(issues))


def _read_current(out_dir: Path, path: str) -> bytes | None:
    """A file of the current generation, or None."""
    try:
        return (out_dir / path).read_bytes()
    except OSError:
        return None


def render_site(
    issues: Sequence[Issue],
    publication: Publication,
    templates_dir: Path,
    history: manifest.History | None = None,
    now: dt.datetime | None = None,
) -> dict[str, bytes]:
    """Every file of the site, path → bytes. Deterministic: same issues, templates and history, same bytes
    (`now` only dates corrections: see feedsvc.site.manifest)."""
    built = feeds.build_feeds(issues, publication, history, now)
    files = feeds.feed_files(built, publication)
    files[manifest.MANIFEST] = feeds.manifest_file(built)
    files[opml.OPML_PATH.lstrip("/")] = opml.render(publication)
    listing = feed_listing(publication, built)
    files.update(render_pages(issues, publication, templates_dir, listing))
    meta = json.dumps(site_metadata(issues, listing), ensure_ascii=False, indent=1, sort_keys=True)
    files[SITE_META] = (meta + "\n").encode("utf-8")
    return files


def site_metadata(issues: Sequence[Issue], listing: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """site.json: the issues (newest first) and feeds, for pages the web app renders itself."""
    return {
        "issues": [
            {
                "number": issue.number,
                "date": issue.date.isoformat(),
                "title": issue.title,
                "heading": feeds.issue_heading(issue),
                "summary": list(issue.summary),
                "sections": [{"slug": s.slug, "name": s.name, "items": len(s.items)} for s in issue.sections],
                "path": feeds.issue_path(issue.number),
            }
            for issue in newest_first(issues)
        ],
        "feeds": list(listing),
    }
