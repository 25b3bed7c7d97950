"""Publish an issue file: check it, put it in issues/, rebuild the site, record it and queue its mail.

One sequence for every shell (the `feedsvc publish` command and the admin page). The site is rebuilt
before the mail is queued, so the "view in browser" link of the first message already works; a failing
build stops before anything is queued, and publishing again is harmless (nothing new is queued).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy.orm import Session

from feedsvc import sending
from feedsvc.config import Settings
from feedsvc.issues import Issue, ParseError, parse
from feedsvc.site import BuildResult, SiteError, build


class PublishError(Exception):
    """The issue cannot be published; nothing was queued. The message says what and where."""


def check(path: Path, settings: Settings) -> Issue:
    """The parsed issue at `path`, or PublishError with the parser's message (file and line)."""
    try:
        return parse(path, settings.publication)
    except ParseError as exc:
        raise PublishError(str(exc)) from exc


def place(path: Path, settings: Settings) -> Path:
    """`path` inside issues/ (copied there if it is elsewhere); never overwrites another file's content."""
    target = settings.issues_dir / path.name
    if path.resolve() == target.resolve():
        return target
    if target.exists() and target.read_bytes() != path.read_bytes():
        raise PublishError(f"{target} exists with other content; not overwriting it")
    settings.issues_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return target


def rebuild_site(settings: Settings) -> BuildResult:
    """Build feeds and archive pages from issues/ (atomic: a failure leaves the previous site)."""
    try:
        return build(settings.issues_dir, settings.site_dir, settings.publication, settings.templates_dir)
    except (ParseError, SiteError) as exc:
        raise PublishError(f"site build failed, nothing was published: {exc}") from exc


def publish_issue(session: Session, settings: Settings, path: Path) -> sending.PublishResult:
    """Check, place, rebuild and queue, in that order; the queueing is in the caller's transaction."""
    issue = check(path, settings)
    placed = place(path, settings)
    rebuild_site(settings)
    source = placed.read_text(encoding="utf-8-sig")
    return sending.publish(session, issue, source, source_name=placed.name)
