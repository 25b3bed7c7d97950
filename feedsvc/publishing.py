"""Publish an issue file: check it, put it in issues/, rebuild the site, record it and queue its mail.

One sequence for every shell (the `feedsvc publish` command and the admin page). The candidate is read
once, and checked together with every issue already in issues/ (broken files, a number used twice) before
anything is copied; those same parsed issues are what the site is built from, under the build lock, so
nothing is parsed twice and no other build can slip in between. The site is rebuilt before the mail is
queued, so the "view in browser" link of the first message already works. A step that fails undoes the
steps before it: the copy goes, the previous site generation comes back, and the caller's transaction rolls
back, so issues/, the site and the database are as they were. Publishing again is harmless: nothing new is
queued.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from feedsvc.config import Settings
from feedsvc.content.model import Issue, ParseError
from feedsvc.content.reader import issue_files, load_issues, parse, parse_bytes
from feedsvc.outbox import sends
from feedsvc.search import index as search_index
from feedsvc.site import websub
from feedsvc.site.build import build_issues
from feedsvc.site.writer import BuildResult, SiteError, SiteWriter, open_site


class PublishError(Exception):
    """The issue cannot be published; nothing was queued. The message says what and where."""


@dataclass(frozen=True)
class Published:
    """What a publish did: the issue as parsed, the queueing outcome, the site it built, where the file now is."""

    issue: Issue
    result: sends.PublishResult
    site: BuildResult
    placed: Path
    copied: bool


@dataclass(frozen=True)
class IssueFile:
    """An issue file in issues/ as the publisher sees it: parsed, or the error that stops it."""

    path: Path
    issue: Issue | None
    error: str | None


def issue_folder(settings: Settings) -> list[IssueFile]:
    """Every issue file in issues/, newest name first, parsed (or with the error that stops it)."""
    found = []
    for path in reversed(issue_files(settings.issues_dir)):
        try:
            found.append(IssueFile(path, parse(path, settings.publication), None))
        except ParseError as exc:
            found.append(IssueFile(path, None, str(exc)))
    return found


def find_issue(settings: Settings, number: int) -> IssueFile | None:
    """The parsed issue file in issues/ with `number`, or None."""
    return next((f for f in issue_folder(settings) if f.issue is not None and f.issue.number == number), None)


def check(path: Path, settings: Settings) -> Issue:
    """The parsed issue at `path`, or PublishError with the parser's message (file and line)."""
    try:
        return parse(path, settings.publication)
    except ParseError as exc:
        raise PublishError(str(exc)) from exc


def check_with_folder(path: Path, data: bytes, settings: Settings) -> tuple[Issue, list[Issue]]:
    """The candidate (`data`, read from `path`) and every issue a build would then hold, each parsed once.

    PublishError if the candidate is refused, or beside the files already in issues/ would not build
    (a broken file, a reused number).
    """
    try:
        issue = parse_bytes(data, settings.publication, source=str(path))
    except ParseError as exc:
        raise PublishError(str(exc)) from exc
    others = (
        [p for p in issue_files(settings.issues_dir) if p.name != path.name] if settings.issues_dir.is_dir() else []
    )
    try:
        return issue, load_issues([*others, issue], settings.publication)
    except ParseError as exc:
        raise PublishError(f"nothing was published: {exc}") from exc


def place(path: Path, data: bytes, settings: Settings) -> tuple[Path, bool]:
    """`path` inside issues/ (its checked bytes `data` written there if it is elsewhere) and whether it was
    copied now. Never overwrites another file's content."""
    target = settings.issues_dir / path.name
    if path.resolve() == target.resolve():
        return target, False
    if target.exists():
        if target.read_bytes() != data:
            raise PublishError(f"{target} exists with other content; not overwriting it")
        return target, False
    temporary = None
    try:
        settings.issues_dir.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".publish-", dir=settings.issues_dir)  # hidden: no issue file
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except OSError as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise PublishError(f"cannot copy {path} into {settings.issues_dir}: {exc.strerror or exc}") from exc
    return target, True


def rebuild_site(site: SiteWriter, issues: Sequence[Issue], settings: Settings) -> BuildResult:
    """Render `issues` (already parsed) into feeds and archive pages and swap them in through `site`."""
    try:
        return build_issues(site, issues, settings.publication, settings.templates_dir)
    except (ParseError, SiteError, OSError) as exc:
        raise PublishError(f"site build failed, nothing was published: {exc}") from exc


def record(session: Session, issue: Issue, data: bytes, placed: Path) -> sends.PublishResult:
    """Record the issue and queue its mail in the caller's transaction; a database failure is a PublishError."""
    try:
        return sends.publish(session, issue, data.decode("utf-8-sig"), source_name=placed.name)
    except SQLAlchemyError as exc:
        raise PublishError(f"recording the issue failed, nothing was published: {exc.__class__.__name__}") from exc


def publish_issue(session: Session, settings: Settings, path: Path) -> Published:
    """Check, place, rebuild and queue, in that order; a failing step undoes the ones before it.

    The queueing is in the caller's transaction, which rolls back when this raises.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PublishError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with open_site(settings.site_dir) as site, contextlib.ExitStack() as undo:
        issue, issues = check_with_folder(path, data, settings)
        placed, copied = place(path, data, settings)
        if copied:
            undo.callback(placed.unlink, missing_ok=True)
        built = rebuild_site(site, issues, settings)
        undo.callback(site.restore)
        result = record(session, issue, data, placed)
        search_index.sync(session, issues, refresh=[issue.number])
        undo.pop_all()
    websub.announce(built.out_dir, built.changed, settings.publication)
    return Published(issue, result, built, placed, copied)
