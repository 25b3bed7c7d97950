"""The publisher's pages under /admin/: issues and their sends, and subscribers.

Check an issue dropped into issues/, preview its email per section choice, send a test, publish, watch the
send (the page refreshes itself while mail is going out; no JavaScript), pause, resume or cancel it; see
subscribers per status and section, export and import them.

Staff only (web/auth.py: a login session; a GET without one goes to the login page). Every POST carries
the session's CSRF token, since a browser sends the session cookie along with a forged cross-site form too.
"""

from __future__ import annotations

import io
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.orm import Session

from feedsvc.bounces.classify import BouncePolicy
from feedsvc.config import ConfigError
from feedsvc.content.model import Issue
from feedsvc.db.models import SUBSCRIBER_STATUSES
from feedsvc.i18n import translate
from feedsvc.mail import message as mail_message
from feedsvc.mail import newsletter, samples
from feedsvc.mail.transport import TransportFailure
from feedsvc.outbox import sends
from feedsvc.publishing import IssueFile, PublishError, find_issue, issue_folder, publish_issue
from feedsvc.reports.figures import subscriber_counts
from feedsvc.subscribers import importer, privacy
from feedsvc.subscribers.addresses import InvalidAddress, normalise_email
from feedsvc.web import access
from feedsvc.web.auth import current_staff
from feedsvc.web.database import get_db, get_settings
from feedsvc.web.language import page_language, t
from feedsvc.web.security import csrf_ok, csrf_token

bp = Blueprint("admin", __name__, url_prefix="/admin")

REFRESH_SECONDS = 5


@bp.before_request
def _require_admin() -> Response | None:
    """Staff only: a GET without a login goes to the login page, anything else is refused (403)."""
    if current_staff() is not None:
        return None
    if request.method in ("GET", "HEAD"):
        return redirect(url_for("auth.login_form", next=request.full_path.rstrip("?")))
    abort(403)


bp.before_request(access.enforce_roles)  # after the login check: each endpoint's role (web/access.py)
bp.app_context_processor(access.template_helpers)


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def _require_csrf() -> None:
    if not csrf_ok():
        abort(400, description="The form expired or came from another site; reload the page and try again.")


# ---------------------------------------------------------------------------------------------- issues


def _find_issue(number: int) -> IssueFile:
    found = find_issue(get_settings(), number)
    if found is None:
        abort(404)
    return found


def _send_counts(s: Session, numbers: list[int] | None = None) -> dict[int, sends.IssueCounts]:
    return {c.number: c for c in sends.counts(s, numbers)}


@bp.get("/")
def dashboard() -> str:
    """Issues with their send state, and subscribers at a glance."""
    settings = get_settings()
    with get_db().session(readonly=True) as s:
        sends = _send_counts(s)
        statuses, per_section = subscriber_counts(s)
    return render_template(
        "web/admin/dashboard.html",
        files=issue_folder(settings),
        sends=sends,
        statuses=statuses,
        per_section=per_section,
        sections=settings.publication.sections,
        csrf_token=csrf_token(),
    )


@bp.get("/issues/<int:number>")
def issue_page(number: int) -> Response:
    """One issue: its check, recipients per section set, previews, test send, publish and progress."""
    entry = _find_issue(number)
    assert entry.issue is not None
    with get_db().session(readonly=True) as s:
        per_variant, skipped = sends.plan(s, entry.issue.slugs)
        counts = _send_counts(s, [number]).get(number)
    html = render_template(
        "web/admin/issue.html",
        entry=entry,
        issue=entry.issue,
        plan=per_variant,
        skipped=skipped,
        counts=counts,
        sending_now=counts is not None and counts.progress == sends.RUNNING,
        refresh=REFRESH_SECONDS,
        csrf_token=csrf_token(),
        messages=get_flashed_messages(),
    )
    return Response(html)


def _chosen() -> str:
    return request.values.get("sections") or "all"  # parsed by newsletter.render, like every section choice


def _render(issue: Issue) -> mail_message.RenderedEmail:
    """The issue's email for the section choice in the request, with the project's email templates."""
    settings = get_settings()
    return newsletter.render(issue, _chosen(), settings.publication, templates=settings.templates_dir)


@bp.get("/issues/<int:number>/email")
def email_preview(number: int) -> Response:
    """The email for one section choice (?sections=a;b), as HTML (default), text (?format=text) or .eml."""
    settings = get_settings()
    issue = _find_issue(number).issue
    assert issue is not None
    try:
        rendered = _render(issue)
    except mail_message.EmailError as exc:
        abort(400, description=str(exc))
    sample = newsletter.personalise(rendered, "reader@example.org", samples.sample_links(settings.publication))
    kind = request.args.get("format", "html")
    if kind == "text":
        return Response(sample.text, mimetype="text/plain")
    if kind == "eml":
        message = mail_message.build_message(
            rendered, "reader@example.org", samples.sample_links(settings.publication), settings.publication
        )
        name = f"issue-{number}-{'-'.join(rendered.sections)}.eml"
        return Response(
            mail_message.serialise(message),
            mimetype="message/rfc822",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    response = Response(sample.html, mimetype="text/html")
    # The preview is the publisher's own rendering of trusted templates, but it is still an email:
    # no scripts, nothing loaded from elsewhere.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:"
    return response


@bp.post("/issues/<int:number>/test")
def send_test(number: int) -> Response:
    """Send the email for one section choice to one address now, marked as a test."""
    _require_csrf()
    settings = get_settings()
    issue = _find_issue(number).issue
    assert issue is not None
    try:
        address = normalise_email(request.form.get("address", ""))
        rendered = _render(issue)
    except InvalidAddress as exc:
        return _back(number, "✗ " + t("地址无效：{reason}", reason=exc))
    except mail_message.EmailError as exc:
        return _back(number, f"✗ {exc}")
    try:
        message_id = samples.send_test_message(rendered, address, settings)
    except (TransportFailure, ConfigError) as exc:
        return _back(number, f"✗ {address}: {exc}")
    with get_db().session() as s:
        access.audit_action(s, "test_send", f"issue {number} to {address} ({_chosen()})")
    return _back(number, f"✓ {address} {message_id}")


@bp.post("/issues/<int:number>/publish")
def publish(number: int) -> Response:
    """Build the site and queue the issue's mail for every active subscriber (once)."""
    _require_csrf()
    entry = _find_issue(number)
    if request.form.get("confirm") != "yes":
        return _back(number, "✗ " + t("请先勾选确认框。"))
    try:
        with get_db().session() as s:
            result = publish_issue(s, get_settings(), entry.path).result
            if not result.already_published:
                access.audit_action(s, "publish", f"issue {number}: {result.enqueued} queued")
    except PublishError as exc:
        return _back(number, f"✗ {exc}")
    if result.already_published:
        return _back(number, t("本期已发布过，没有新的邮件排队。"))
    return _back(
        number,
        "✓ " + t("{n} 封邮件已排队，{skipped} 位订阅者跳过。", n=result.enqueued, skipped=result.skipped_no_sections),
    )


@bp.post("/issues/<int:number>/<any(pause, resume, cancel):action>")
def control(number: int, action: str) -> Response:
    """Pause, resume or cancel the send of an issue."""
    _require_csrf()
    with get_db().session() as s:
        try:
            getattr(sends, action)(s, number)
        except sends.SendError as exc:
            return _back(number, f"✗ {exc}")
        access.audit_action(s, action, f"issue {number}")
    return _back(number, f"✓ {action}")


def _back(number: int, message: str) -> Response:
    """Back to the issue page, with `message` shown there once (kept in the session, not the URL)."""
    flash(message)
    return redirect(url_for("admin.issue_page", number=number), code=303)


# ----------------------------------------------------------------------------------------- subscribers


@bp.get("/subscribers")
def subscribers_page() -> str:
    """Counts per status and section, the export link and the import form."""
    with get_db().session(readonly=True) as s:
        statuses, per_section = subscriber_counts(s)
    return render_template(
        "web/admin/subscribers.html",
        statuses=statuses,
        per_section=per_section,
        sections=get_settings().publication.sections,
        csrf_token=csrf_token(),
    )


@bp.get("/subscribers.csv")
def export_csv() -> Response:
    """Every subscriber as CSV (the same columns as `feedsvc subscribers export`)."""
    status = request.args.get("status") or None
    if status is not None and status not in SUBSCRIBER_STATUSES:
        abort(400, description=f"unknown status {status!r}")
    out = io.StringIO()
    with get_db().session() as s:
        privacy.write_export(s, out, status, policy=BouncePolicy.from_env(get_settings().extra))
        access.audit_action(s, "subscribers_export", f"status {status or 'all'}")
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )


@bp.post("/subscribers/import")
def import_csv() -> str:
    """Import an uploaded CSV (email, sections); a confirmation mail unless consent is ticked."""
    _require_csrf()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        abort(400, description="choose a CSV file to import")
    settings = get_settings()
    parsed = importer.read(upload.read(), settings)
    consented = request.form.get("consented") == "yes"
    with get_db().session() as s:
        result = importer.import_rows(s, settings, parsed, consented=consented)
        detail = f"{upload.filename}: {result.activated} activated, {result.confirmations} confirmations"
        access.audit_action(s, "subscribers_import", detail + (" (consented)" if consented else ""))
    return render_template(
        "web/admin/import_result.html", name=upload.filename, parsed=parsed, result=result, consented=consented
    )


# Subscriber statuses and send states, as the publisher reads them (English through the catalog).
STATE_LABELS = {
    "pending": "待确认",
    "active": "有效",
    "unsubscribed": "已退订",
    "bounced": "退信",
    sends.RUNNING: "发送中",
    sends.PAUSED: "已暂停",
    sends.STOPPED: "已取消",
    sends.FINISHED: "已完成",
}


def variant_label(key: str, lang: str) -> str:
    """A section set as the publisher reads it: 行业 + 技术 (or Industry + Technology)."""
    return get_settings().publication.variant_label(key, lang)


@bp.app_context_processor
def template_globals() -> dict[str, Any]:
    """Helpers the admin templates use."""
    lang = page_language()
    return {
        "variant_label": lambda key: variant_label(key, lang),
        "state_label": lambda state: translate(STATE_LABELS.get(state, state), lang),
    }
