"""The publisher's admin pages: access control, issue check and previews, test send, publish and control,
subscribers per section, import and export. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from auth_support import OWNER, add_staff, log_in
from builders import make_app
from flask import Flask
from flask.testing import FlaskClient

from feedsvc.config import Settings
from feedsvc.outbox import sends
from feedsvc.outbox.worker import SendWorker

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def admin_settings(settings: Settings, tmp_path: Path, seed_path: Path) -> Settings:
    issues = tmp_path / "issues"
    issues.mkdir()
    shutil.copyfile(seed_path, issues / seed_path.name)
    (issues / "2024-01-29-399.md").write_text("# 行业动态周报\n\n第 399 期\n\n2024 年 2 月 30 日\n", encoding="utf-8")
    return settings.with_overrides(issues_dir=issues)


@pytest.fixture
def app(admin_settings: Settings) -> Iterator[Flask]:
    with make_app(admin_settings) as app:
        yield app


@pytest.fixture
def client(app: Flask, admin_settings: Settings) -> FlaskClient:
    add_staff(admin_settings.database_url, OWNER, "owner")
    client = app.test_client()
    log_in(client, OWNER)
    return client


def token(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    match = CSRF.search(page.get_data(as_text=True))
    assert match, f"no form on {path}"
    return match.group(1)


def import_csv(client: FlaskClient, rows: str, consented: bool = True):
    data = {"csrf_token": token(client, "/admin/subscribers"), "file": (io.BytesIO(rows.encode()), "list.csv")}
    if consented:
        data["consented"] = "yes"
    return client.post("/admin/subscribers/import", data=data, content_type="multipart/form-data")


def test_admin_needs_a_staff_login(app: Flask, client: FlaskClient) -> None:
    anonymous = app.test_client()
    page = anonymous.get("/admin/subscribers")
    assert page.status_code == 302 and page.headers["Location"].endswith("/admin/login?next=/admin/subscribers")
    assert anonymous.post("/admin/issues/398/publish", data={"confirm": "yes"}).status_code == 403
    ok = client.get("/admin/")
    assert ok.status_code == 200
    assert ok.headers["Cache-Control"] == "no-store"


def test_dashboard_lists_issues_and_refusals(client: FlaskClient) -> None:
    page = client.get("/admin/").get_data(as_text=True)
    assert "2024-01-22-398.md" in page
    assert ">27<" in page  # items of the seed
    assert "2024-01-29-399.md:7:" not in page  # the refusal names the line where the date is
    assert "2024-01-29-399.md:5: 2024 年 2 月 30 日 is not a real date" in page
    english = client.get("/admin/?lang=en").get_data(as_text=True)
    assert "Issues and sends" in english and "not published" in english


def test_previews_hold_just_the_chosen_sections(client: FlaskClient) -> None:
    html = client.get("/admin/issues/398/email?sections=technology")
    assert html.status_code == 200
    assert "Content-Security-Policy" in html.headers
    body = html.get_data(as_text=True)
    assert "华为数字人表情调整专利公布" in body and "快手和携程宣布达成战略合作" not in body
    text = client.get("/admin/issues/398/email?sections=people;research&format=text")
    assert text.mimetype == "text/plain"
    assert "YouTube 据悉将裁员 100 人" in text.get_data(as_text=True)
    eml = client.get("/admin/issues/398/email?format=eml")
    message = BytesParser(policy=policy.default).parsebytes(eml.data)
    assert message["Subject"] == "行业动态周报 第398期（2024年1月22日）"
    assert client.get("/admin/issues/398/email?sections=nonsense").status_code == 400
    assert client.get("/admin/issues/123/email").status_code == 404


def test_send_test_delivers_a_marked_copy(client: FlaskClient, admin_settings: Settings) -> None:
    form = {"csrf_token": token(client, "/admin/issues/398"), "address": "Editor@Example.ORG", "sections": "capital"}
    response = client.post("/admin/issues/398/test", data=form, follow_redirects=True)
    assert "✓ editor@example.org" in response.get_data(as_text=True)
    (path,) = admin_settings.mail_dir.glob("*.eml")
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert message["Subject"].startswith("[测试 TEST] 行业动态周报 第398期")
    assert message["To"] == "editor@example.org"
    html = message.get_body(("html",)).get_content()
    assert "中银证券" in html and "华为数字人" not in html
    bad = client.post("/admin/issues/398/test", data={**form, "address": "not an address"})
    assert bad.status_code == 303
    assert "✗ 地址无效" in client.get(bad.headers["Location"]).get_data(as_text=True)


def test_page_messages_cannot_be_planted_through_the_url(client: FlaskClient) -> None:
    page = client.get("/admin/issues/398?message=Send+your+password+to+evil.example")
    assert "evil.example" not in page.get_data(as_text=True)


def test_forms_need_the_csrf_token(client: FlaskClient) -> None:
    for path in ("/admin/issues/398/publish", "/admin/issues/398/test", "/admin/issues/398/pause"):
        assert client.post(path, data={"confirm": "yes", "address": "a@example.org"}).status_code == 400


def test_import_publish_watch_and_control_a_send(client: FlaskClient, app: Flask, admin_settings: Settings) -> None:
    rows = (
        "email,sections\nA@example.org,technology\nb@example.org,\nc@example.org,people;research\nbroken,technology\n"
    )
    result = import_csv(client, rows).get_data(as_text=True)
    assert "list.csv:5:" in result  # the bad row, by line; the others are in
    plan = client.get("/admin/issues/398").get_data(as_text=True)
    assert "人事 + 研究" in plan and "技术" in plan
    assert "发送给 3 位订阅者" in plan

    publish = {"csrf_token": token(client, "/admin/issues/398")}
    unconfirmed = client.post("/admin/issues/398/publish", data=publish, follow_redirects=True)
    assert "请先勾选确认框" in unconfirmed.get_data(as_text=True)
    done = client.post("/admin/issues/398/publish", data={**publish, "confirm": "yes"}, follow_redirects=True)
    refused = done.get_data(as_text=True)  # the broken 399 beside it stops the site build: nothing is queued
    assert "nothing was published" in refused and "2024-01-29-399.md:5:" in refused
    with app.extensions["feedsvc.db"].session(readonly=True) as s:
        assert sends.counts(s, [398]) == []
    (admin_settings.issues_dir / "2024-01-29-399.md").unlink()
    done = client.post("/admin/issues/398/publish", data={**publish, "confirm": "yes"}, follow_redirects=True)
    page = done.get_data(as_text=True)
    assert "✓ 3 封邮件已排队，0 位订阅者跳过" in page
    assert '<meta http-equiv="refresh"' in page  # watching the send needs no JavaScript
    again = client.post("/admin/issues/398/publish", data={**publish, "confirm": "yes"}, follow_redirects=True)
    assert "本期已发布过" in again.get_data(as_text=True)

    database = app.extensions["feedsvc.db"]
    client.post("/admin/issues/398/pause", data=publish)
    with database.session(readonly=True) as s:
        assert sends.counts(s, [398])[0].state == sends.PAUSED
    client.post("/admin/issues/398/resume", data=publish)
    client.post("/admin/issues/398/cancel", data=publish)
    with database.session(readonly=True) as s:
        (counts,) = sends.counts(s, [398])
    assert counts.state == sends.STOPPED and counts.cancelled == 3 and counts.queued == 0


def test_subscribers_per_section_and_export(client: FlaskClient) -> None:
    import_csv(client, "email,sections\nx@example.org,technology;capital\ny@example.org,technology\n")
    import_csv(client, "email,sections\nz@example.org,\n", consented=False)
    page = client.get("/admin/subscribers").get_data(as_text=True)
    technology = re.search(r"技术 <span class=\"muted\">technology</span></td><td class=\"n\">(\d+)<", page)
    assert technology and technology.group(1) == "2"
    exported = client.get("/admin/subscribers.csv")
    assert exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    by_email = {r["email"]: r for r in rows}
    assert by_email["x@example.org"]["status"] == "active"
    assert set(by_email["x@example.org"]["sections"].split(";")) == {"technology", "capital"}
    assert by_email["z@example.org"]["status"] == "pending"
    active_only = client.get("/admin/subscribers.csv?status=active").get_data(as_text=True)
    assert "z@example.org" not in active_only


def test_a_finished_send_reads_as_finished(client: FlaskClient, app: Flask, admin_settings: Settings) -> None:
    (admin_settings.issues_dir / "2024-01-29-399.md").unlink()
    import_csv(client, "email,sections\nx@example.org,technology\ny@example.org,\n")
    form = {"csrf_token": token(client, "/admin/issues/398"), "confirm": "yes"}
    client.post("/admin/issues/398/publish", data=form)
    SendWorker(app.extensions["feedsvc.db"], admin_settings, concurrency=1, poll_interval=0).run(until_idle=True)
    page = client.get("/admin/issues/398").get_data(as_text=True)
    assert "<strong>已完成</strong>" in page
    assert '<meta http-equiv="refresh"' not in page and "暂停" not in page
    assert len(list(admin_settings.mail_dir.glob("*.eml"))) == 2
