"""What each API operation does: parse nothing (the dispatcher validated the request against the route's
schemas), call the core, shape the answer. Every write is put in the audit log by the dispatcher's `audit`."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Response
from sqlalchemy import func, select

from feedsvc import publishing
from feedsvc.bounces.classify import BouncePolicy
from feedsvc.content.model import ParseError
from feedsvc.content.reader import parse_bytes
from feedsvc.db.models import PublishedIssue, Subscriber
from feedsvc.outbox import sends
from feedsvc.reports import figures
from feedsvc.reports.figures import subscriber_counts
from feedsvc.staff import audit
from feedsvc.staff.tokens import Caller
from feedsvc.subscribers import directory, importer, privacy, subscriptions
from feedsvc.subscribers.addresses import InvalidAddress, normalise_email
from feedsvc.subscribers.csvfile import ImportRow, ParsedCsv
from feedsvc.web.api.problems import ApiProblem
from feedsvc.web.database import get_db, get_settings
from feedsvc.web.security import client_address

SOURCE = "api"


@dataclass
class Call:
    """One API request, checked: who calls, the path values, the query and the JSON body."""

    caller: Caller
    path: dict[str, int] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)

    def audit(self, session: Any, action: str, detail: str) -> None:
        """Record a write in the audit log: the member, what, and through which token."""
        client = client_address(get_settings().trusted_proxies)
        audit.record(session, self.caller.email, action, f"{detail} via {self.caller.token.label}", client)


# ----------------------------------------------------------------------------------------------- issues


def check_issue(call: Call) -> dict[str, Any]:
    """Parse a Markdown body and answer what `feedsvc check --json` prints for it."""
    name = call.body.get("filename") or "issue.md"
    try:
        issue = parse_bytes(call.body["markdown"].encode("utf-8"), get_settings().publication, source=name)
    except ParseError as exc:
        raise ApiProblem(422, str(exc)) from exc
    return issue.to_dict()


def _send_json(found: sends.IssueCounts) -> dict[str, Any]:
    with get_db().session(readonly=True) as s:
        [status] = figures.send_status(s, [found.number])
    return {"status": status, "cancelled": found.cancelled, "state": found.progress}


def list_issues(call: Call) -> list[dict[str, Any]]:
    """Every issue file in issues/, parsed or with its error, and its send if it was published."""
    with get_db().session(readonly=True) as s:
        by_number = {c.number: c for c in sends.counts(s)}
    answer = []
    for entry in publishing.issue_folder(get_settings()):
        issue = entry.issue
        send = by_number.get(issue.number) if issue else None
        answer.append(
            {
                "file": entry.path.name,
                "number": issue.number if issue else None,
                "title": issue.title if issue else None,
                "date": issue.date.isoformat() if issue else None,
                "error": entry.error,
                "send": _send_json(send) if send else None,
            }
        )
    return answer


def publish_issue(call: Call) -> dict[str, Any]:
    """Publish the issue file in issues/ with this number (the admin page's publish)."""
    number = call.path["number"]
    entry = publishing.find_issue(get_settings(), number)
    if entry is None:
        raise ApiProblem(404, f"no issue {number} in the issues folder")
    try:
        with get_db().session() as s:
            published = publishing.publish_issue(s, get_settings(), Path(entry.path))
            call.audit(s, "publish", f"issue {number}")
    except publishing.PublishError as exc:
        raise ApiProblem(409, str(exc)) from exc
    result = published.result
    return {
        "number": number,
        "enqueued": result.enqueued,
        "skipped_no_sections": result.skipped_no_sections,
        "already_published": result.already_published,
        "warnings": [str(w) for w in published.issue.warnings],
    }


# ------------------------------------------------------------------------------------------------ sends


def list_sends(call: Call) -> list[dict[str, int]]:
    """Every published issue's mail by state: the `feedsvc status --json` list."""
    with get_db().session(readonly=True) as s:
        return figures.send_status(s)


def _counts(number: int) -> sends.IssueCounts:
    with get_db().session(readonly=True) as s:
        found = sends.counts(s, [number])
    if not found:
        raise ApiProblem(404, f"issue {number} has not been published")
    return found[0]


def get_send(call: Call) -> dict[str, Any]:
    """One issue's send: the `feedsvc status --json` object, its cancelled rows and its state."""
    return _send_json(_counts(call.path["number"]))


def control_send(action: str) -> Any:
    """The handler that pauses, resumes or cancels a send."""

    def handler(call: Call) -> dict[str, Any]:
        number = call.path["number"]
        _counts(number)  # 404 before anything changes
        try:
            with get_db().session() as s:
                messages = getattr(sends, action)(s, number) or 0
                call.audit(s, action, f"issue {number}")
        except sends.SendError as exc:
            raise ApiProblem(409, str(exc)) from exc
        state = {"pause": sends.PAUSED, "resume": sends.RUNNING, "cancel": sends.STOPPED}[action]
        return {"number": number, "state": state, "messages": messages}

    handler.__name__ = f"{action}_send"
    handler.__doc__ = f"{action.capitalize()} the send of an issue."
    return handler


# ------------------------------------------------------------------------------------------ subscribers


def list_subscribers(call: Call) -> dict[str, Any]:
    """A page of subscribers, filtered by status and section."""
    q = call.query
    with get_db().session(readonly=True) as s:
        found = directory.page(
            s, status=q.get("status"), section=q.get("section"), offset=q.get("offset", 0), limit=q.get("limit", 50)
        )
    return {
        "items": [r.as_json() for r in found.rows],
        "total": found.total,
        "offset": found.offset,
        "limit": found.limit,
    }


def _outcome(result: importer.ImportResult) -> str:
    if result.activated:
        return "activated"
    if result.confirmations:
        return "confirmation_queued"
    for name in ("suppressed", "left", "throttled"):
        if getattr(result, name):
            return name
    return "unchanged"


def add_subscriber(call: Call) -> tuple[dict[str, Any], int]:
    """Add a subscriber by the import's rules: active with consent, else pending with a confirmation mail."""
    settings = get_settings()
    try:
        email = normalise_email(call.body["email"])
        sections = subscriptions.choose_sections(
            settings.publication, call.body.get("sections") or settings.publication.slugs
        )
    except (InvalidAddress, subscriptions.NoSections) as exc:
        raise ApiProblem(422, str(exc)) from exc
    unknown = sorted(set(call.body.get("sections") or ()) - set(sections))
    if unknown:
        raise ApiProblem(422, f"unknown section(s): {', '.join(unknown)}")
    consent = bool(call.body.get("consent"))
    parsed = ParsedCsv(rows=(ImportRow(1, email, tuple(sections)),), errors=())
    with get_db().session() as s:
        result = importer.import_rows(s, settings, parsed, consented=consent, source=SOURCE)
        outcome = _outcome(result)
        call.audit(s, "subscribers_add", f"{email} {outcome}{' consented' if consent else ''}")
        row = s.scalar(select(Subscriber).where(Subscriber.email == email))
        listed = directory.listed(row).as_json() if row is not None else None
    return {"outcome": outcome, "subscriber": listed}, 201 if outcome in ("activated", "confirmation_queued") else 200


def _subscriber(s: Any, subscriber_id: int) -> Subscriber:
    found = s.get(Subscriber, subscriber_id, with_for_update=True)
    if found is None:
        raise ApiProblem(404, f"no subscriber {subscriber_id}")
    return found


def change_sections(call: Call) -> dict[str, Any]:
    """Give a subscriber other sections."""
    publication = get_settings().publication
    unknown = sorted(set(call.body["sections"]) - set(publication.slugs))
    if unknown:
        raise ApiProblem(422, f"unknown section(s): {', '.join(unknown)}")
    with get_db().session() as s:
        subscriber = _subscriber(s, call.path["id"])
        if subscriptions.change_sections(s, subscriber, call.body["sections"], publication):
            call.audit(s, "subscribers_change", f"{subscriber.email} {';'.join(subscriber.section_slugs)}")
        return directory.listed(subscriber).as_json()


def unsubscribe(call: Call) -> dict[str, Any]:
    """End a subscription (its queued mail is cancelled)."""
    with get_db().session() as s:
        subscriber = _subscriber(s, call.path["id"])
        if subscriptions.unsubscribe(s, subscriber, how=SOURCE):
            call.audit(s, "subscribers_unsubscribe", subscriber.email)
        return directory.listed(subscriber).as_json()


def erase(call: Call) -> Response:
    """Erase a subscriber and everything kept about them; the address stays suppressed (as a hash)."""
    with get_db().session() as s:
        subscriber = _subscriber(s, call.path["id"])
        call.audit(s, "subscribers_erase", f"subscriber {subscriber.id}")
        privacy.erase(s, subscriber)
    return Response(status=204)


def export_subscribers(call: Call) -> Response:
    """Every subscriber (or those with ?status=) as CSV, the columns of `feedsvc subscribers export`."""
    out = io.StringIO()
    with get_db().session() as s:
        privacy.write_export(s, out, call.query.get("status"), policy=BouncePolicy.from_env(get_settings().extra))
        call.audit(s, "subscribers_export", call.query.get("status") or "all")
    return Response(
        out.getvalue(), mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'}
    )


# ------------------------------------------------------------------------------------------------ stats


def stats(call: Call) -> dict[str, Any]:
    """Subscribers per status and section, issues published, and mail by state over every issue."""
    with get_db().session(readonly=True) as s:
        by_status, per_section = subscriber_counts(s)
        published = s.scalar(select(func.count()).select_from(PublishedIssue)) or 0
        found = sends.counts(s)
    names = ("queued", "sending", "sent", "failed", "skipped", "cancelled")
    return {
        "subscribers": {"by_status": by_status, "per_section": per_section},
        "issues": {"published": published},
        "mail": {name: sum(getattr(c, name) for c in found) for name in names},
    }
