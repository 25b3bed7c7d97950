"""End to end: gunicorn and `feedsvc worker` as processes, Debian's chromium driven by Playwright, mail over SMTP.

A reader subscribes on the landing page, the confirmation mail arrives at an aiosmtpd sink, they confirm,
change their sections on the manage page, and the first issue mail's RFC 8058 List-Unsubscribe one-click
POST (made the way a mailbox provider makes it: no cookie, no CSRF token) unsubscribes them. Runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from browser_support import CHROMIUM, launch
from smtp_support import SmtpSink
from subscribe_support import BIN, Live

from feedsvc.content.reader import parse
from feedsvc.mail import message as mail_message
from feedsvc.mail import newsletter
from feedsvc.mail.transport import SmtpTransport, prepare
from feedsvc.subscribers import tokens

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LINK = re.compile(r"https?://\S+/(confirm|manage|unsubscribe)/[A-Za-z0-9._-]+")


def _mail_link(sink: SmtpSink, index: int, purpose: str) -> str:
    received = sink.wait_for(index + 1, timeout=30)[index]
    text = received.message.get_body(("plain",)).get_content()
    for match in LINK.finditer(text):
        if match.group(1) == purpose:
            return match.group(0)
    raise AssertionError(f"no {purpose} link in:\n{text}")


def test_subscribe_confirm_manage_and_one_click_unsubscribe(
    live: Live, seed_path: Path, require: Callable[[bool, str], None]
) -> None:
    require(Path(CHROMIUM).exists(), "Debian's chromium at /usr/bin/chromium")
    try:
        import playwright.sync_api as playwright_api
    except ImportError:
        require(False, "the playwright package")
    with playwright_api.sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(java_script_enabled=False, locale="zh-CN")  # no JavaScript needed
        page = context.new_page()

        # Subscribe on the landing page: two sections of six.
        page.goto(live.url + "/")
        page.fill("#subscribe-email", "Reader@Example.org")
        for slug in ("content", "technology", "capital", "people"):
            page.uncheck(f"input[name=sections][value={slug}]")
        page.click("form.subscribe-form button[type=submit]")
        assert "请查收邮件" in page.content()

        # The confirmation mail arrives; its link shows a button, and the button confirms.
        confirm = _mail_link(live.sink, 0, "confirm")
        assert confirm.startswith(live.url + "/confirm/")
        page.goto(confirm)
        assert page.locator("h1").inner_text() == "确认订阅"
        page.click("button[type=submit]")
        assert page.locator("h1").inner_text() == "订阅成功"
        # Then the welcome mail (on by default), with the manage and unsubscribe links.
        welcome = live.sink.wait_for(2, timeout=30)[1].message
        assert "欢迎订阅" in welcome["Subject"] and welcome["To"] == "reader@example.org"
        assert _mail_link(live.sink, 1, "manage").startswith(live.url + "/manage/")
        assert _mail_link(live.sink, 1, "unsubscribe").startswith(live.url + "/unsubscribe/")

        # Manage: switch to English, change the sections.
        page.click("a[href^='/manage/']")
        page.click("text=English")
        assert page.locator("h1").inner_text() == "Manage subscription"
        assert page.locator("#status").get_attribute("data-status") == "active"
        page.uncheck("input[name=sections][value=industry]")
        page.check("input[name=sections][value=people]")
        page.click("text=Save sections")
        assert "Your sections are saved." in page.content()
        checked = [box.get_attribute("value") for box in page.locator("input[name=sections]:checked").all()]
        assert checked == ["people", "research"]
        manage_url = page.url.split("?")[0]

        # The first issue goes out (as issue 6's sender will build it) with List-Unsubscribe headers.
        issue = parse(seed_path, live.settings.publication)
        sub_id, version = _subscriber(live)
        links = mail_message.Links(
            manage=tokens.link(live.settings, "manage", sub_id, version),
            unsubscribe=tokens.link(live.settings, "unsubscribe", sub_id, version),
        )
        rendered = newsletter.render(issue, ["people", "research"], live.settings.publication)
        with SmtpTransport(live.sink.url) as transport:
            built = mail_message.build_message(rendered, "reader@example.org", links, live.settings.publication)
            transport.send(*prepare(built))
        received = live.sink.wait_for(3, timeout=30)[2].message
        assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        target = re.search(r"<(https?://[^>]+)>", received["List-Unsubscribe"])
        assert target
        assert target.group(1).startswith(live.url + "/unsubscribe/")

        # The mailbox provider's one-click POST: no cookie, no CSRF token; 200, no redirect.
        anon = playwright.request.new_context()
        response = anon.post(
            target.group(1),
            form={"List-Unsubscribe": "One-Click"},
            max_redirects=0,
        )
        assert response.status == 200
        anon.dispose()

        page.goto(manage_url)
        assert page.locator("#status").get_attribute("data-status") == "unsubscribed"
        browser.close()

    exported = subprocess.run(
        [BIN / "feedsvc", "subscribers", "export"], env=live.env, capture_output=True, text=True, check=True
    ).stdout
    assert exported.splitlines() == [
        "email,status,sections,bounce_score",
        "reader@example.org,unsubscribed,people;research,0",
    ]


def _subscriber(live: Live) -> tuple[int, int]:
    from sqlalchemy import select

    from feedsvc.db.engine import Database
    from feedsvc.db.models import Subscriber

    database = Database(live.env["DATABASE_URL"])
    try:
        with database.session(readonly=True) as s:
            sub = s.scalars(select(Subscriber).where(Subscriber.email == "reader@example.org")).one()
            return sub.id, sub.token_version
    finally:
        database.dispose()
