"""The team in a real browser (Debian's chromium through Playwright, JavaScript off): an owner logs in and adds
an editor on the staff page; the editor sets a password from the mailed link (delivered by the real worker
into the mail folder), logs in, previews and publishes issue 398; a viewer sees no publish button and its
POST is refused (403); logout ends the session. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from auth_support import PASSWORD
from browser_support import running_browser
from flask import Flask
from team_support import TEAM, team_app, team_settings
from werkzeug.serving import make_server

from feedsvc.config import Settings
from feedsvc.outbox.worker import SendWorker
from feedsvc.staff.roles import OWNER, VIEWER

pytestmark = pytest.mark.browser

NEW_EDITOR = "new.editor@example.org"
NEW_PASSWORD = "a long new editor password"
LINK = re.compile(r"https?://[^/\s]+(/admin/password/[A-Za-z0-9_.\-]+)")


@pytest.fixture
def live(settings: Settings, tmp_path: Path, seed_path: Path) -> Iterator[tuple[str, Flask, Settings]]:
    """The admin on a free loopback port, with a viewer, an editor and an owner: (its URL, the app, settings)."""
    team = team_settings(settings, tmp_path, seed_path)
    with team_app(team) as app:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", app, team
        finally:
            server.shutdown()
            thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[object]:
    with running_browser() as browser:
        yield browser


def _log_in(page, base: str, email: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/admin/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form[action='/admin/login'] button[type=submit]")
    assert page.url.rstrip("/").endswith("/admin"), page.url


def _mailed_link(app: Flask, settings: Settings, to: str) -> str:
    """The set-password path in the mail to `to`, after the worker has delivered the outbox."""
    SendWorker(app.extensions["feedsvc.db"], settings, concurrency=1, poll_interval=0).run(until_idle=True)
    for path in settings.mail_dir.glob("*.eml"):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if message["To"] == to:
            found = LINK.search(message.get_body(("plain",)).get_content())
            assert found, "no set-password link in the mail"
            return found.group(1)
    raise AssertionError(f"no mail to {to}")


def test_owner_adds_an_editor_who_publishes_and_a_viewer_is_refused(browser, live) -> None:  # type: ignore[no-untyped-def]
    base, app, settings = live
    owner = browser.new_context(java_script_enabled=False)
    page = owner.new_page()
    _log_in(page, base, TEAM[OWNER])
    page.click("nav a[href='/admin/staff']")
    page.fill("form[action='/admin/staff/add'] input[name=email]", NEW_EDITOR)
    page.select_option("form[action='/admin/staff/add'] select[name=role]", "editor")
    page.click("form[action='/admin/staff/add'] button[type=submit]")
    assert NEW_EDITOR in page.locator("p.flash").inner_text()
    owner.close()

    editor = browser.new_context(java_script_enabled=False)
    page = editor.new_page()
    page.goto(base + _mailed_link(app, settings, NEW_EDITOR))
    page.fill("input[name=password]", NEW_PASSWORD)
    page.fill("input[name=password2]", NEW_PASSWORD)
    page.click("form button[type=submit]")
    assert NEW_EDITOR in page.locator("main").inner_text()
    _log_in(page, base, NEW_EDITOR, NEW_PASSWORD)
    page.goto(f"{base}/admin/issues/398")
    with page.expect_navigation():
        page.click("a[href='/admin/issues/398/email?sections=all']")
    assert "华为数字人表情调整专利公布" in page.content()  # the preview of the whole issue
    page.go_back()
    page.check("form[action='/admin/issues/398/publish'] input[name=confirm]")
    page.click("form[action='/admin/issues/398/publish'] button[type=submit]")
    assert "✓" in page.locator("p.flash").inner_text()
    editor.close()

    viewer = browser.new_context(java_script_enabled=False)
    page = viewer.new_page()
    _log_in(page, base, TEAM[VIEWER])
    page.goto(f"{base}/admin/issues/398")
    assert page.locator("form[action$='/publish'], form[action$='/pause']").count() == 0
    token = page.locator("form[action='/admin/logout'] input[name=csrf_token]").get_attribute("value")
    refused = viewer.request.post(f"{base}/admin/issues/398/pause", form={"csrf_token": token})
    assert refused.status == 403 and "编辑（editor）" in refused.text()
    refused = viewer.request.post(f"{base}/admin/issues/398/publish", form={"csrf_token": token, "confirm": "yes"})
    assert refused.status == 403
    page.click("form[action='/admin/logout'] button[type=submit]")
    assert "/admin/login" in page.url
    page.goto(f"{base}/admin/issues/398")
    assert "/admin/login" in page.url  # the session is gone
    viewer.close()
