"""Commands that need the database refuse clearly when it is not migrated, instead of a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "args",
    [
        ["publish", str(ROOT / "issues" / "2024-01-22-398.md")],
        ["status"],
        ["subscribers", "export"],
        ["worker", "--once"],
    ],
)
def test_an_unmigrated_database_is_named_with_the_fix(tmp_path: Path, args: list[str]) -> None:
    env = {"FEEDSVC_VAR_DIR": str(tmp_path / "var"), "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml")}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1
    assert "has no feedsvc tables: run `feedsvc db upgrade`" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "var" / "site").exists()  # publish stopped before building anything
    assert CliRunner().invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    assert "has no feedsvc tables" not in CliRunner().invoke(main, args, env=env).output
