"""`feedsvc preview`: the files it writes and the test send."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from email_support import parts
from smtp_support import SmtpSink

from feedsvc.cli import main


@pytest.fixture
def run(root: Path, tmp_path: Path) -> Callable[..., Result]:
    """Run `feedsvc` with the project's feedsvc.toml and a private var/ folder."""

    def invoke(*args: str, **env: str) -> Result:
        environment = {"FEEDSVC_VAR_DIR": str(tmp_path / "var"), "FEEDSVC_SECRET_KEY": "test", **env}
        return CliRunner().invoke(main, ["--config", str(root / "feedsvc.toml"), *args], env=environment)

    return invoke


def test_preview_writes_eml_html_and_text(run, seed_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(
        "preview", str(seed_path), "--sections", "industry,technology", "--to", "me@example.com", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    eml, html, txt = (out / f"398-industry-technology.{ext}" for ext in ("eml", "html", "txt"))
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["To"] == "me@example.com"
    assert message["Subject"] == "行业动态周报 第398期（2024年1月22日）"
    text, body = parts(message)
    assert html.read_bytes().decode() == body.replace("\r\n", "\n")  # LF files; CRLF is MIME's canonical form
    assert txt.read_bytes().decode() == text.replace("\r\n", "\n")
    assert "http://127.0.0.1:8000/unsubscribe/preview" in body and "FEEDSVC-" not in body
    assert "第五批国家文化和科技融合示范基地名单公布" in text and "华为数字人表情调整专利公布" in text
    assert "央视频：文化节目《诗画中国·江河万古流》开播" not in text  # a 内容 item: not chosen
    assert "under Gmail's clipping size" in result.output


def test_preview_all_sections(run, seed_path: Path, tmp_path: Path) -> None:
    result = run("preview", str(seed_path), "--sections", "all", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    text = (tmp_path / "398-all.txt").read_text(encoding="utf-8")
    assert text.count("\n■ ") == 27
    message = message_from_bytes((tmp_path / "398-all.eml").read_bytes(), policy=policy.default)
    assert message["To"] == "newsletter@feedsvc.example.org"  # no --to: the sender's own address


def test_preview_refuses_unknown_sections(run, seed_path: Path, tmp_path: Path) -> None:
    result = run("preview", str(seed_path), "--sections", "industry,sport", "--out", str(tmp_path))
    assert result.exit_code != 0
    assert "unknown section sport" in result.output
    assert not list(tmp_path.glob("*.eml"))


def test_send_test_through_smtp(run, seed_path: Path, tmp_path: Path) -> None:
    with SmtpSink() as sink:
        result = run(
            "preview", str(seed_path), "--sections", "research", "--out", str(tmp_path),
            "--send-test", "editor@example.org", FEEDSVC_SMTP_URL=sink.url,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        [received] = sink.wait_for(1)
    assert received.rcpt_tos == ["editor@example.org"]
    assert received.message["Message-ID"] in result.output
    assert "2023 年度我国短剧拍摄备案通过 3574 部" in parts(received.message)[0]
    # The same test copy as the admin's: the subject marked, the sample links.
    assert received.message["Subject"].startswith("[测试 TEST] 行业动态周报 第398期")
    assert "<http://127.0.0.1:8000/unsubscribe/preview>" in received.message["List-Unsubscribe"]


def test_send_test_into_the_mail_folder(run, seed_path: Path, tmp_path: Path) -> None:
    result = run("preview", str(seed_path), "--out", str(tmp_path / "out"), "--send-test", "editor@example.org")
    assert result.exit_code == 0, result.output
    [written] = list((tmp_path / "var" / "mail").glob("*.eml"))
    assert message_from_bytes(written.read_bytes(), policy=policy.default)["To"] == "editor@example.org"


def test_send_test_failure_is_reported(run, seed_path: Path, tmp_path: Path) -> None:
    with SmtpSink() as sink:
        sink.replies["RCPT"] = "550 5.1.1 no such user"
        result = run(
            "preview", str(seed_path), "--out", str(tmp_path), "--send-test", "nobody@example.org",
            FEEDSVC_SMTP_URL=sink.url,
        )  # fmt: skip
    assert result.exit_code == 1
    assert "permanent" in result.output and "550" in result.output
