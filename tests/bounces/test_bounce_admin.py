"""The admin pages show what came back: per issue against the 0.3% line, and a reader's history in the server's
words (escaped). On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import shutil
from datetime import timedelta
from pathlib import Path

from auth_support import add_staff, log_in
from bounce_rows import sample, sent_row, with_return_path
from builders import make_app

from feedsvc.bounces.intake import take_in
from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database
from feedsvc.outbox import sends


def test_admin_shows_bounces_per_issue_and_a_reader_s_history(
    db: Database, settings: Settings, seed_issue: Issue, seed_path: Path, tmp_path: Path
) -> None:
    issues = tmp_path / "admin-issues"
    issues.mkdir()
    shutil.copyfile(seed_path, issues / seed_path.name)
    admin = with_return_path(settings.with_overrides(issues_dir=issues))
    add_staff(db, "viewer@example.org", "viewer")
    with db.session() as session:
        sends.publish(session, seed_issue, seed_path.read_text(encoding="utf-8"))
    gone = sent_row(db, "reader.gone@example.com")
    take_in(db, admin, sample("postfix_user_unknown.eml", admin, gone), source="lmtp")
    take_in(db, admin, sample("outlook_blocklist.eml", admin, sent_row(db, "hotmail.reader@hotmail.com")), source="t")
    take_in(db, admin, sample("arf_yahoo_abuse.eml", admin, sent_row(db, "yahoo.reader@yahoo.com")), source="t")
    for index in range(7):  # ten sent in all: one complaint is 10%, over the line
        sent_row(db, f"quiet{index}@example.org")
    take_in(db, admin, sample("relay_rewrote_headers_only.eml", admin, None), source="t")  # unmatched

    with make_app(admin) as app:
        assert app.test_client().get("/admin/bounces").status_code == 302  # to the login page
        client = app.test_client()
        log_in(client, "viewer@example.org")  # a viewer reads the bounces
        page = client.get("/admin/bounces")
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        row = text[text.index('data-issue="398"') :].split("</tr>")[0]
        cells = [c.split("</td>")[0].split(">")[-1] for c in row.split('<td class="n')[1:]]
        assert cells[:5] == ["10", "1", "0", "1", "1"]
        assert "10.000%" in row and "over-line" in row
        assert "报告：1" in text  # one unmatched report

        history = client.get("/admin/bounces?email=Reader.Gone@example.com").get_data(as_text=True)
        assert "退信分 1 / 3" in history
        assert html.escape("<reader.gone@example.com>: Recipient address rejected", quote=False) in history
        assert "<reader.gone@example.com>" not in history  # the server's words, escaped
        assert "计入退信分" in history and "硬退信" in history
        assert "没有这个订阅者" in client.get("/admin/bounces?email=nobody@example.org").get_data(as_text=True)
        english = client.get("/admin/bounces?lang=en&email=hotmail.reader@hotmail.com")
        assert "Policy blocks" in english.get_data(as_text=True)
        assert "not counted (the sender&#39;s problem)" in english.get_data(as_text=True)
        assert "Bounce score 0 / 3" in english.get_data(as_text=True)

        issue_page = client.get("/admin/issues/398?lang=zh-CN").get_data(as_text=True)
        assert "退信与投诉" in issue_page and "10.000%" in issue_page and "0.3%" in issue_page


def test_the_admin_csv_counts_staleness_with_the_configured_days(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    """A score last raised ten days ago is stale under FEEDSVC_BOUNCE_STALE_DAYS=5 in the download too, as the
    CLI's export counts it (the default 30 days would still show it)."""
    from builders import LOCAL_BASE_URL, make_settings
    from sqlalchemy import update

    from feedsvc.db.engine import utcnow
    from feedsvc.db.models import Subscriber

    settings = with_return_path(
        make_settings(tmp_path, database_url, base_url=LOCAL_BASE_URL, env={"FEEDSVC_BOUNCE_STALE_DAYS": "5"})
    )
    gone = sent_row(db, "reader.gone@example.com")
    take_in(db, settings, sample("postfix_user_unknown.eml", settings, gone), source="test")
    with db.session() as session:
        ten_days_ago = utcnow() - timedelta(days=10)
        session.execute(
            update(Subscriber).where(Subscriber.id == gone.subscriber_id).values(bounce_scored_at=ten_days_ago)
        )
    add_staff(db, "owner@example.org", "owner")
    with make_app(settings) as app:
        client = app.test_client()
        log_in(client, "owner@example.org")
        rows = client.get("/admin/subscribers.csv").get_data(as_text=True).splitlines()
    assert "reader.gone@example.com,active,,0" in rows
