"""API tokens: `feedsvc staff token create|list|revoke`, stored hashed, the member's current role, revocation,
removal, and last use. On SQLite and PostgreSQL."""

from __future__ import annotations

import json

from api_support import bearer, member
from builders import cli_env
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from feedsvc.cli import main
from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.staff import accounts, audit, tokens
from feedsvc.staff.models import ApiToken
from feedsvc.staff.roles import EDITOR, OWNER, VIEWER


def run(args: list[str], settings: Settings) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, env=cli_env(settings))
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_creates_lists_and_revokes_tokens(
    api_settings: Settings, client: FlaskClient, database: Database
) -> None:
    with database.session() as s:
        accounts.add(s, "ed@example.org", EDITOR, "test")
    code, out, err = run(["staff", "token", "create", "Ed@Example.org", "--name", "deploy"], api_settings)
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith(tokens.PREFIX) and len(secret) >= 45 and "not shown again" in err
    with database.session(readonly=True) as s:
        stored = s.scalar(select(ApiToken))
    assert stored is not None and stored.token_hash == tokens.digest(secret) and secret not in stored.token_hash
    assert client.get("/api/v1/stats", headers=bearer(secret)).status_code == 200

    code, out, _ = run(["staff", "token", "list", "--json"], api_settings)
    [listed] = json.loads(out)
    assert listed["email"] == "ed@example.org" and listed["name"] == "deploy" and listed["revoked_at"] is None
    assert listed["last_used_at"] is not None  # the request above was recorded
    assert secret not in out

    assert run(["staff", "token", "revoke", str(listed["id"])], api_settings)[0] == 0
    refused = client.get("/api/v1/stats", headers=bearer(secret))
    assert refused.status_code == 401 and refused.mimetype == "application/problem+json"
    assert json.loads(run(["staff", "token", "list", "ed@example.org", "--json"], api_settings)[1])[0]["revoked_at"]
    with database.session(readonly=True) as s:
        actions = [e.action for e in audit.entries(s)]
    assert actions[:2] == ["token.revoke", "token.create"]

    code, _, err = run(["staff", "token", "revoke", "999"], api_settings)
    assert code == 1 and "no API token 999" in err
    code, _, err = run(["staff", "token", "create", "nobody@example.org"], api_settings)
    assert code == 1 and "no staff member" in err


def test_a_token_acts_with_the_members_current_role(
    client: FlaskClient, database: Database, secrets: dict[str, str]
) -> None:
    pause = "/api/v1/sends/398/pause"
    assert client.post(pause, headers=bearer(secrets[VIEWER])).status_code == 403
    with database.session() as s:
        accounts.set_role(s, member(VIEWER), EDITOR, "test")
    assert client.post(pause, headers=bearer(secrets[VIEWER])).status_code == 404  # allowed now: no such send
    with database.session() as s:
        accounts.set_role(s, member(OWNER), VIEWER, "test")
    assert client.post(pause, headers=bearer(secrets[OWNER])).status_code == 403


def test_a_removed_members_tokens_stop_working(
    client: FlaskClient, database: Database, secrets: dict[str, str]
) -> None:
    assert client.get("/api/v1/stats", headers=bearer(secrets[EDITOR])).status_code == 200
    with database.session() as s:
        accounts.remove(s, member(EDITOR), "test")
    assert client.get("/api/v1/stats", headers=bearer(secrets[EDITOR])).status_code == 401
    with database.session(readonly=True) as s:
        assert [t.email for t in tokens.tokens(s)] == [member(OWNER), member(VIEWER)]  # its tokens went with it
    # Someone added again under the same address does not get the old tokens back.
    with database.session() as s:
        accounts.add(s, member(EDITOR), EDITOR, "test")
    assert client.get("/api/v1/stats", headers=bearer(secrets[EDITOR])).status_code == 401


def test_only_bearer_tokens_of_the_right_shape_count(client: FlaskClient, secrets: dict[str, str]) -> None:
    owner = secrets[OWNER]
    for headers in (
        {},
        {"Authorization": f"Basic {owner}"},
        {"Authorization": owner},
        {"Authorization": f"Bearer {owner[:-1]}"},
        {"Authorization": f"Bearer {owner}x"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer fsvc_" + "A" * 43},
    ):
        response = client.get("/api/v1/stats", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/stats", headers={"Authorization": f"bearer {owner}"}).status_code == 200
