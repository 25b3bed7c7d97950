"""Test sends to several addresses, each with its own section choice, every copy marked (`preview --send-test`)."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

from click.testing import CliRunner

from feedsvc.cli import main
from feedsvc.mail.samples import TEST_MARK, SampleRecipient, parse_test_recipients


def test_parse_test_recipients() -> None:
    assert parse_test_recipients(" a@x.org=industry+research, b@y.org ,,", "technology") == [
        SampleRecipient("a@x.org", "industry,research"),
        SampleRecipient("b@y.org", "technology"),
    ]


def test_each_address_gets_its_own_marked_copy(root: Path, seed_path: Path, tmp_path: Path) -> None:
    env = {"FEEDSVC_VAR_DIR": str(tmp_path / "var"), "FEEDSVC_SECRET_KEY": "test"}
    args = ["--config", str(root / "feedsvc.toml"), "preview", str(seed_path), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--send-test", "a@example.org=research,b@example.org"], env=env)
    assert result.exit_code == 0, result.output
    sent = {}
    for file in (tmp_path / "var" / "mail").glob("*.eml"):
        message = message_from_bytes(file.read_bytes(), policy=policy.default)
        html = message.get_body(("html",))
        assert html is not None
        sent[message["To"]] = (message["Subject"], html.get_content())
    assert sorted(sent) == ["a@example.org", "b@example.org"]
    assert all(subject.startswith(TEST_MARK) for subject, _ in sent.values())
    assert "2023 年度我国短剧拍摄备案通过 3574 部" in sent["a@example.org"][1]  # a research item
    assert "抖音" not in sent["a@example.org"][1] and "抖音" in sent["b@example.org"][1]  # industry: b only


def test_one_bad_address_does_not_stop_the_others(root: Path, seed_path: Path, tmp_path: Path) -> None:
    env = {"FEEDSVC_VAR_DIR": str(tmp_path / "var"), "FEEDSVC_SECRET_KEY": "test"}
    args = ["--config", str(root / "feedsvc.toml"), "preview", str(seed_path), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--send-test", "not-an-address,b@example.org=sport"], env=env)
    assert result.exit_code == 1
    assert "not-an-address" in result.output and "2 of 2 test send(s) failed" in result.output
    result = CliRunner().invoke(main, [*args, "--send-test", "not-an-address,b@example.org"], env=env)
    assert result.exit_code == 1 and "1 of 2" in result.output
    assert len(list((tmp_path / "var" / "mail").glob("*.eml"))) == 1
