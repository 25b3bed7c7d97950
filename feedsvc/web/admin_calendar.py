"""Admin issue page additions: schedule a publish (a date-time field), move or cancel it, and test sends
to several addresses. Routes on the admin blueprint, so its sign-in and CSRF rules apply unchanged."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from feedsvc import publishing, schedule
from feedsvc.mail import newsletter, samples
from feedsvc.mail.message import RenderedEmail
from feedsvc.web.access import audit_action
from feedsvc.web.admin import _back, _find_issue, _require_csrf, bp
from feedsvc.web.database import get_db, get_settings
from feedsvc.web.language import t


@bp.app_context_processor
def _schedule_helpers() -> dict[str, Any]:
    """`pending_schedule(number)` for the issue page: the issue's schedule waiting to fire, or None."""

    def pending_schedule(number: int) -> schedule.Scheduled | None:
        with get_db().session(readonly=True) as s:
            return next((p for p in schedule.pending(s) if p.issue_number == number), None)

    def schedule_local(found: schedule.Scheduled) -> str:
        return found.local(get_settings().publication)

    return {"pending_schedule": pending_schedule, "schedule_local": schedule_local}


@bp.post("/issues/<int:number>/schedule")
def schedule_issue(number: int) -> Response:
    """Publish the issue at the time in the form (read in the publication's time zone), or move its schedule."""
    _require_csrf()
    settings = get_settings()
    entry = _find_issue(number)
    try:
        due_at = schedule.parse_time(request.form.get("at", ""), settings.publication)
        with get_db().session() as s:
            waiting = any(p.issue_number == number for p in schedule.pending(s))
            if waiting:
                made = schedule.move(s, settings, number, due_at)
            else:
                made = schedule.schedule(s, settings, entry.path, due_at)
            audit_action(s, "schedule", f"issue {number} at {made.local(settings.publication)}")
    except (schedule.ScheduleError, publishing.PublishError) as exc:
        return _back(number, f"✗ {exc}")
    return _back(number, "✓ " + t("定时发布：{when}", when=made.local(settings.publication)))


@bp.post("/issues/<int:number>/schedule/cancel")
def cancel_schedule(number: int) -> Response:
    """Cancel the issue's schedule before it fires."""
    _require_csrf()
    try:
        with get_db().session() as s:
            schedule.cancel(s, number)
            audit_action(s, "schedule", f"issue {number}: schedule cancelled")
    except schedule.ScheduleError as exc:
        return _back(number, f"✗ {exc}")
    return _back(number, "✓ " + t("已取消定时发布。"))


@bp.post("/issues/<int:number>/tests")
def send_tests(number: int) -> Response:
    """Marked test copies to several addresses (one a line or comma-separated, `addr=slug+slug` for sections)."""
    _require_csrf()
    settings = get_settings()
    issue = _find_issue(number).issue
    assert issue is not None
    recipients = samples.parse_test_recipients(request.form.get("addresses", "").replace("\n", ","))
    if not recipients:
        return _back(number, "✗ " + t("请至少填写一个地址。"))

    def render_for(choice: str) -> RenderedEmail:
        return newsletter.render(issue, choice, settings.publication, templates=settings.templates_dir)

    outcomes = samples.send_test_messages(render_for, recipients, settings)
    with get_db().session() as s:
        for o in outcomes:
            if not o.error:
                audit_action(s, "test_send", f"issue {number} to {o.recipient.address} ({o.recipient.sections})")
    lines = [
        f"✗ {o.recipient.address}: {o.error}" if o.error else f"✓ {o.recipient.address} ({o.recipient.sections})"
        for o in outcomes
    ]
    return _back(number, " · ".join(lines))
