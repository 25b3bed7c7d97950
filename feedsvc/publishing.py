"""Publish an issue file: check it, put it in issues/, rebuild the site, record it and queue its mail.

One sequence for every shell (the `feedsvc publish` command and the admin page). The candidate is
checked together with every issue already in issues/ (broken files, a number used twice) before
anything is copied; the site is rebuilt before the mail is queued, so the "view in browser" link of the
first message already works; a build that still fails removes the copy it made, so issues/ is as it was.
Publishing again is harmless: nothing new is queued.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from feedsvc.config import Settings
from feedsvc.content.reader import Issue, ParseError, issue_files, load_issues, parse
from feedsvc.outbox import sends
from feedsvc.site.build import BuildResult, SiteError, build


class PublishError(Exception):
    """The issue cannot be published; nothing was queued. The message says what and where."""


@dataclass(frozen=True)
class Published:
    """What a publish did: the queueing outcome, the site it built, and where the file now is."""

    result: sends.PublishResult
    site: BuildResult
    placed: Path
    copied: bool


def check(path: Path, settings: Settings) -> Issue:
    """The parsed issue at `path`, or PublishError with the parser's message (file and line)."""
    try:
        return parse(path, settings.publication)
    except ParseError as exc:
        raise PublishError(str(exc)) from exc


def check_with_folder(path: Path, settings: Settings) -> None:
    """PublishError if `path` beside the files already in issues/ would not build (a broken file, a reused number)."""
    others = [p for p in issue_files(settings.issues_dir) if p.name != path.name]
    try:
        load_issues([*others, path], settings.publication)
    except ParseError as exc:
        raise PublishError(f"nothing was published: {exc}") from exc


def place(path: Path, settings: Settings) -> tuple[Path, bool]:
    """`path` inside issues/ (copied there if it is elsewhere) and whether it was copied now.

    Never overwrites another file's content.
    """
    target = settings.issues_dir / path.name
    if path.resolve() == target.resolve():
        return target, False
    if target.exists():
        if target.read_bytes() != path.read_bytes():
            raise PublishError(f"{target} exists with other content; not overwriting it")
        return target, False
    try:
        settings.issues_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    except OSError as exc:
        raise PublishError(f"cannot copy {path} into {settings.issues_dir}: {exc.strerror or exc}") from exc
    return target, True


def rebuild_site(settings: Settings) -> BuildResult:
    """Build feeds and archive pages from issues/ (atomic: a failure leaves the previous site)."""
    try:
        return build(settings.issues_dir, settings.site_dir, settings.publication, settings.templates_dir)
    except (ParseError, SiteError) as exc:
        raise PublishError(f"site build failed, nothing was published: {exc}") from exc


def publish_issue(session: Session, settings: Settings, path: Path) -> Published:
    """Check, place, rebuild and queue, in that order; the queueing is in the caller's transaction."""
    issue = check(path, settings)
    check_with_folder(path, settings)
    placed, copied = place(path, settings)
    try:
        site = rebuild_site(settings)
    except PublishError:
        if copied:
            placed.unlink(missing_ok=True)
        raise
    source = placed.read_text(encoding="utf-8-sig")
    result = sends.publish(session, issue, source, source_name=placed.name)
    return Published(result, site, placed, copied)
