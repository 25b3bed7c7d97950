"""The admin dashboard's charts in a real browser (Debian's chromium through Playwright), JavaScript off:
logged in through the login form, some subscribers and a sent issue in the database, screenshots at 1280 px and
375 px in light and dark mode (into test-artifacts/), every chart visible and no sideways scroll on a phone."""

from __future__ import annotations

import io
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from auth_support import OWNER, PASSWORD, add_staff, log_in
from browser_support import running_browser
from builders import make_app
from flask import Flask
from werkzeug.serving import make_server

from feedsvc.config import Settings
from feedsvc.outbox.worker import SendWorker

pytestmark = pytest.mark.browser

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# What sticks out past the window's right edge (for the failure message): innermost such elements.
WIDER_THAN_THE_WINDOW = """() => [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
    .filter(e => ![...e.children].some(c => c.getBoundingClientRect().right > window.innerWidth + 1))
    .slice(0, 8)
    .map(e => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`)"""
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 812}}


@pytest.fixture
def dashboard(settings: Settings, tmp_path: Path, seed_path: Path) -> Iterator[str]:
    """A live admin on a free port, with three subscribers and issue 398 published and sent; its URL."""
    issues = tmp_path / "issues"
    issues.mkdir()
    shutil.copyfile(seed_path, issues / seed_path.name)
    admin_settings = settings.with_overrides(issues_dir=issues)
    add_staff(admin_settings.database_url, OWNER, "owner")
    with make_app(admin_settings) as app:
        _populate(app, admin_settings)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(timeout=10)


def _populate(app: Flask, settings: Settings) -> None:
    client = app.test_client()
    log_in(client, OWNER)
    rows = "email,sections\nx@example.org,technology;capital\ny@example.org,\nw@example.org,industry\n"
    page = client.get("/admin/subscribers").get_data(as_text=True)
    match = CSRF.search(page)
    assert match, "no import form"
    data = {
        "csrf_token": match.group(1),
        "consented": "yes",
        "file": (io.BytesIO(rows.encode()), "subscribers.csv"),
    }
    imported = client.post("/admin/subscribers/import", data=data, content_type="multipart/form-data")
    assert imported.status_code in (200, 302, 303), imported.status_code
    match = CSRF.search(client.get("/admin/issues/398").get_data(as_text=True))
    assert match, "no publish form"
    client.post("/admin/issues/398/publish", data={"csrf_token": match.group(1), "confirm": "yes"})
    SendWorker(app.extensions["feedsvc.db"], settings, concurrency=1, poll_interval=0).run(until_idle=True)
    assert len(list(settings.mail_dir.glob("*.eml"))) == 3  # the issue went to all three


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with running_browser() as browser:
        yield browser


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_dashboard_charts_are_visible_at_desktop_and_phone_widths(browser, dashboard: str, scheme: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    for name, viewport in WIDTHS.items():
        context = browser.new_context(
            viewport=viewport,
            color_scheme=scheme,
            java_script_enabled=False,
        )
        try:
            page = context.new_page()
            page.goto(dashboard + "/admin/login")
            page.fill("#login-email", OWNER)
            page.fill("#login-password", PASSWORD)
            page.click("form button[type=submit]")
            response = page.goto(dashboard + "/admin/")
            assert response is not None and response.status == 200
            page.screenshot(path=str(ARTIFACTS / f"admin-dashboard-{name}-{scheme}.png"), full_page=True)
            charts = page.locator("svg[role=img]")
            assert charts.count() >= 3, f"{charts.count()} charts at {name}"
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box is not None and box["width"] > 0 and box["height"] > 0, (name, scheme, i, box)
                assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 0.5, (name, i, box)
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            if name == "phone":
                wide = page.evaluate(WIDER_THAN_THE_WINDOW)
                assert overflow <= 0, f"the dashboard scrolls sideways at 375 px by {overflow} px ({scheme}): {wide}"
        finally:
            context.close()
