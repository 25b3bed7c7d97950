"""What an operator does from the command line is in the audit log too, under the actor "cli" with the OS user,
named with the same actions as the admin pages and the API (staff.roles.ACTIONS). On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from builders import cli_env
from click.testing import CliRunner

from feedsvc.cli import main
from feedsvc.config import Settings
from feedsvc.staff.roles import ACTIONS


def _run(settings: Settings, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env=cli_env(settings), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_publishing_sends_and_subscribers_from_the_cli_are_audited(
    settings: Settings, seed_path: Path, tmp_path: Path
) -> None:
    readers = tmp_path / "readers.csv"
    readers.write_text("email,sections\nreader@example.org,\n", encoding="utf-8")
    _run(settings, "subscribers", "import", str(readers), "--consented")
    _run(settings, "publish", str(seed_path))
    for action in ("pause", "resume", "cancel"):
        _run(settings, "send", action, "398")
    _run(settings, "subscribers", "export")
    entries = json.loads(_run(settings, "audit", "--json"))
    assert [e["action"] for e in entries] == [
        "subscribers_export",
        "cancel",
        "resume",
        "pause",
        "publish",
        "subscribers_import",
    ]
    assert all(e["action"] in ACTIONS for e in entries)
    assert {e["actor"] for e in entries} == {"cli"} and all(e["client"].startswith("cli:") for e in entries)
    assert entries[4]["detail"] == f"issue 398 from {seed_path.name}"
    assert "1 row(s), 1 active" in entries[5]["detail"] and entries[5]["detail"].endswith("(consented)")
