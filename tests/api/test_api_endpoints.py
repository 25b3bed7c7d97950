"""What each /api/v1 endpoint does, through the real app and database: issues (check, list, publish), sends
(status, pause, resume, cancel), subscribers (paging and filters, add with and without consent, sections,
unsubscribe, erase, CSV export) and stats. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from api_support import bearer, member
from builders import cli_env
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from feedsvc.cli import main
from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import KIND_CONFIRM, OutboxMessage, Subscriber, SubscriberEvent
from feedsvc.staff import audit
from feedsvc.staff.roles import EDITOR, OWNER, VIEWER
from feedsvc.subscribers import privacy

SEED = "2024-01-22-398.md"


def _audit(database: Database) -> list[audit.Entry]:
    with database.session(readonly=True) as s:
        return audit.entries(s)


def test_check_answers_exactly_what_feedsvc_check_json_prints(
    client: FlaskClient, secrets: dict[str, str], api_settings: Settings, seed_path: Path
) -> None:
    body = {"markdown": seed_path.read_text(encoding="utf-8"), "filename": seed_path.name}
    response = client.post("/api/v1/issues/check", json=body, headers=bearer(secrets[VIEWER]))
    assert response.status_code == 200
    result = CliRunner().invoke(main, ["check", "--json", str(seed_path)], env=cli_env(api_settings))
    assert result.exit_code == 0
    assert response.get_json() == json.loads(result.stdout)

    broken = {"markdown": "# 行业动态周报\n\n第 399 期\n\n2024 年 2 月 30 日\n", "filename": "2024-01-29-399.md"}
    refused = client.post("/api/v1/issues/check", json=broken, headers=bearer(secrets[VIEWER]))
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    assert "2024-01-29-399.md" in refused.get_json()["detail"]


def test_issues_are_listed_with_their_errors_and_sends(
    client: FlaskClient, secrets: dict[str, str], api_settings: Settings, database: Database
) -> None:
    (api_settings.issues_dir / "2024-01-29-399.md").write_text("# 行业动态周报\n\n第 399 期\n", encoding="utf-8")
    listed = client.get("/api/v1/issues", headers=bearer(secrets[VIEWER])).get_json()
    assert [i["file"] for i in listed] == ["2024-01-29-399.md", SEED]
    assert listed[0]["number"] is None and listed[0]["error"]
    assert listed[1]["number"] == 398 and listed[1]["send"] is None and listed[1]["error"] is None

    (api_settings.issues_dir / "2024-01-29-399.md").unlink()
    published = client.post("/api/v1/issues/398/publish", headers=bearer(secrets[EDITOR]))
    assert published.status_code == 200
    assert published.get_json()["already_published"] is False
    again = client.post("/api/v1/issues/398/publish", headers=bearer(secrets[EDITOR])).get_json()
    assert again["already_published"] is True and again["enqueued"] == 0
    [entry] = client.get("/api/v1/issues", headers=bearer(secrets[VIEWER])).get_json()
    assert entry["send"]["state"] == "finished" and entry["send"]["status"]["number"] == 398
    assert client.post("/api/v1/issues/399/publish", headers=bearer(secrets[EDITOR])).status_code == 404
    publishes = [e for e in _audit(database) if e.action == "publish"]
    assert len(publishes) == 2 and publishes[0].actor == member(EDITOR) and "editor script" in publishes[0].detail


def test_publish_refused_by_the_folder_is_a_conflict(
    client: FlaskClient, secrets: dict[str, str], api_settings: Settings, database: Database
) -> None:
    (api_settings.issues_dir / "2024-01-29-399.md").write_text("# 行业动态周报\n\n第 399 期\n", encoding="utf-8")
    refused = client.post("/api/v1/issues/398/publish", headers=bearer(secrets[EDITOR]))
    assert refused.status_code == 409 and "nothing was published" in refused.get_json()["detail"]
    assert not [e for e in _audit(database) if e.action == "publish"]  # rolled back with the publish


def test_send_status_and_control(
    client: FlaskClient, secrets: dict[str, str], api_settings: Settings, database: Database
) -> None:
    editor = bearer(secrets[EDITOR])
    add = {"email": "reader@example.org", "consent": True, "sections": ["industry"]}
    assert client.post("/api/v1/subscribers", json=add, headers=bearer(secrets[OWNER])).status_code == 201
    assert client.get("/api/v1/sends/398", headers=editor).status_code == 404
    assert client.post("/api/v1/issues/398/publish", headers=editor).get_json()["enqueued"] == 1

    statuses = client.get("/api/v1/sends", headers=editor).get_json()
    result = CliRunner().invoke(main, ["status", "--json"], env=cli_env(api_settings))
    assert statuses == json.loads(result.stdout)  # the `feedsvc status --json` list, key for key
    assert client.get("/api/v1/sends/398", headers=editor).get_json() == {
        "status": statuses[0],
        "cancelled": 0,
        "state": "running",
    }
    assert client.post("/api/v1/sends/398/pause", headers=editor).get_json() == {
        "number": 398,
        "state": "paused",
        "messages": 0,
    }
    assert client.post("/api/v1/sends/398/cancel", headers=editor).get_json()["messages"] == 1
    conflict = client.post("/api/v1/sends/398/pause", headers=editor)
    assert conflict.status_code == 409 and "cancelled" in conflict.get_json()["detail"]
    assert client.post("/api/v1/sends/398/resume", headers=editor).get_json()["messages"] == 1
    assert client.get("/api/v1/sends/398", headers=editor).get_json()["status"]["queued"] == 1
    actions = [e.action for e in _audit(database) if e.actor == member(EDITOR)]
    assert actions[:3] == ["resume", "cancel", "pause"]


def test_subscribers_are_paged_and_filtered(client: FlaskClient, secrets: dict[str, str]) -> None:
    owner = bearer(secrets[OWNER])
    for n in range(7):
        sections = ["industry"] if n % 2 else ["technology", "people"]
        body = {"email": f"r{n}@example.org", "consent": n < 5, "sections": sections}
        assert client.post("/api/v1/subscribers", json=body, headers=owner).status_code == 201
    viewer = bearer(secrets[VIEWER])
    first = client.get("/api/v1/subscribers?limit=3", headers=viewer).get_json()
    assert (
        first["total"] == 7
        and first["limit"] == 3
        and [s["email"] for s in first["items"]]
        == [
            "r0@example.org",
            "r1@example.org",
            "r2@example.org",
        ]
    )
    rest = client.get("/api/v1/subscribers?limit=3&offset=6", headers=viewer).get_json()
    assert [s["email"] for s in rest["items"]] == ["r6@example.org"] and rest["offset"] == 6
    pending = client.get("/api/v1/subscribers?status=pending", headers=viewer).get_json()
    assert {s["email"] for s in pending["items"]} == {"r5@example.org", "r6@example.org"}
    tech_active = client.get("/api/v1/subscribers?status=active&section=technology", headers=viewer).get_json()
    assert [s["email"] for s in tech_active["items"]] == ["r0@example.org", "r2@example.org", "r4@example.org"]
    assert tech_active["items"][0]["sections"] == ["people", "technology"]
    for bad in ("status=gone", "limit=0", "limit=501", "offset=-1", "limit=x", "section=", "page=2"):
        response = client.get(f"/api/v1/subscribers?{bad}", headers=viewer)
        assert response.status_code == 400 and response.mimetype == "application/problem+json", bad


def test_adding_with_consent_is_active_and_without_is_pending_with_a_confirmation(
    client: FlaskClient, secrets: dict[str, str], database: Database
) -> None:
    owner = bearer(secrets[OWNER])
    added = client.post("/api/v1/subscribers", json={"email": "Yes@Example.org", "consent": True}, headers=owner)
    assert added.status_code == 201 and added.get_json()["outcome"] == "activated"
    subscriber = added.get_json()["subscriber"]
    assert subscriber["email"] == "yes@example.org" and subscriber["status"] == "active"
    assert subscriber["source"] == "api" and subscriber["confirmed_at"]
    asked = client.post(
        "/api/v1/subscribers", json={"email": "maybe@example.org", "sections": ["people"]}, headers=owner
    )
    assert (
        asked.get_json()["outcome"] == "confirmation_queued" and asked.get_json()["subscriber"]["status"] == "pending"
    )
    with database.session(readonly=True) as s:
        kinds = {(m.recipient, m.kind) for m in s.scalars(select(OutboxMessage))}
        consent = s.scalar(select(SubscriberEvent.detail).join(Subscriber).where(Subscriber.email == "yes@example.org"))
    assert kinds == {("maybe@example.org", KIND_CONFIRM)}  # the one without consent gets the confirmation mail
    assert consent == "consented"
    same = client.post("/api/v1/subscribers", json={"email": "yes@example.org", "consent": True}, headers=owner)
    assert same.status_code == 200 and same.get_json()["outcome"] == "unchanged"
    for body in ({"email": "not an address"}, {"email": "x@example.org", "sections": ["nope"]}, {"mail": "x"}):
        refused = client.post("/api/v1/subscribers", json=body, headers=owner)
        assert refused.status_code == 422 and refused.mimetype == "application/problem+json", body
    adds = [e for e in _audit(database) if e.action == "subscribers_add"]
    assert len(adds) == 3 and adds[-1].detail.startswith("yes@example.org activated consented via token")


def test_sections_unsubscribe_and_erase(client: FlaskClient, secrets: dict[str, str], database: Database) -> None:
    owner = bearer(secrets[OWNER])
    sid = client.post(
        "/api/v1/subscribers", json={"email": "a@example.org", "consent": True}, headers=owner
    ).get_json()["subscriber"]["id"]
    changed = client.patch(f"/api/v1/subscribers/{sid}", json={"sections": ["people", "industry"]}, headers=owner)
    assert changed.status_code == 200 and changed.get_json()["sections"] == ["industry", "people"]
    assert client.patch(f"/api/v1/subscribers/{sid}", json={"sections": []}, headers=owner).status_code == 422
    assert client.patch("/api/v1/subscribers/9999", json={"sections": ["people"]}, headers=owner).status_code == 404
    gone = client.post(f"/api/v1/subscribers/{sid}/unsubscribe", headers=owner)
    assert gone.status_code == 200 and gone.get_json()["status"] == "unsubscribed"
    assert client.delete(f"/api/v1/subscribers/{sid}", headers=owner).status_code == 204
    assert client.delete(f"/api/v1/subscribers/{sid}", headers=owner).status_code == 404
    with database.session(readonly=True) as s:
        assert s.get(Subscriber, sid) is None and privacy.is_suppressed(s, "a@example.org")
    actions = [(e.action, e.detail.split(" via ")[0]) for e in _audit(database)][:3]
    assert actions == [
        ("subscribers_erase", f"subscriber {sid}"),  # the erased address is not kept in the log either
        ("subscribers_unsubscribe", "a@example.org"),
        ("subscribers_change", "a@example.org industry;people"),
    ]


def test_export_is_the_cli_csv(
    client: FlaskClient, secrets: dict[str, str], api_settings: Settings, database: Database
) -> None:
    owner = bearer(secrets[OWNER])
    for email, consent in (("b@example.org", True), ("a@example.org", False)):
        client.post("/api/v1/subscribers", json={"email": email, "consent": consent}, headers=owner)
    response = client.get("/api/v1/subscribers/export", headers=owner)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["email", "status", "sections", "bounce_score"] and [r[:2] for r in rows[1:]] == [
        ["a@example.org", "pending"],
        ["b@example.org", "active"],
    ]
    cli = CliRunner().invoke(main, ["subscribers", "export"], env=cli_env(api_settings))
    assert response.get_data(as_text=True) == cli.stdout
    active = client.get("/api/v1/subscribers/export?status=active", headers=owner).get_data(as_text=True)
    assert "b@example.org" in active and "a@example.org" not in active
    assert _audit(database)[0].action == "subscribers_export"


def test_stats(client: FlaskClient, secrets: dict[str, str]) -> None:
    owner = bearer(secrets[OWNER])
    client.post(
        "/api/v1/subscribers", json={"email": "a@example.org", "consent": True, "sections": ["people"]}, headers=owner
    )
    client.post("/api/v1/subscribers", json={"email": "b@example.org"}, headers=owner)
    client.post("/api/v1/issues/398/publish", headers=owner)
    stats = client.get("/api/v1/stats", headers=bearer(secrets[VIEWER])).get_json()
    assert stats["subscribers"]["by_status"] == {"pending": 1, "active": 1, "unsubscribed": 0, "bounced": 0}
    assert stats["subscribers"]["per_section"] == {"people": 1}
    assert stats["issues"] == {"published": 1}
    assert stats["mail"]["queued"] == 1 and stats["mail"]["sent"] == 0
