"""End to end: the real worker (`feedsvc worker --once`) sends issue mail and a notice over SMTP to an
aiosmtpd sink; every message as received verifies, both signatures, against the keys `feedsvc dns` printed
and a local DNS server published."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from dkim_support import ROOT, environment, verify_all
from dns_support import ZoneServer
from smtp_support import SmtpSink

from feedsvc.cli import main
from feedsvc.config import Settings, load_settings
from feedsvc.content.reader import parse
from feedsvc.db.engine import Database
from feedsvc.outbox import sends
from feedsvc.subscribers import importer, subscriptions


def _queue_mail(settings: Settings, seed_path: Path) -> None:
    """Two active readers of the seed issue (two section sets), and one sign-up waiting for its confirmation."""
    database = Database(settings.database_url)
    csv = b"email,sections\r\nreader0@example.org,industry\r\nreader1@example.org,research;technology\r\n"
    with database.session() as session:
        importer.import_rows(session, settings, importer.read(csv, settings), consented=True)
        issue = parse(seed_path, settings.publication)
        sends.publish(session, issue, seed_path.read_text(encoding="utf-8"), source_name=seed_path.name)
        subscriptions.subscribe(session, settings, "newcomer@example.org", ["industry"])
    database.dispose()


def test_what_the_worker_sent_verifies_as_received(
    dkim_config: Path, dkim_settings: Settings, dkim_env: dict[str, str], tmp_path: Path, seed_path: Path
) -> None:
    _queue_mail(dkim_settings, seed_path)
    env = environment(dkim_config, tmp_path, dkim_settings.database_url, **dkim_env)
    zone = CliRunner().invoke(main, ["dns"], env=env)
    assert zone.exit_code == 0, zone.output
    with ZoneServer(zone.stdout) as dns_server, SmtpSink() as sink:
        result = CliRunner().invoke(
            main, ["worker", "--once", "--no-progress"], env={**env, "FEEDSVC_SMTP_URL": sink.url}
        )
        assert result.exit_code == 0, result.output
        assert "DKIM: signing as d=feedsvc.example.org (rsa-sha256 s=s1, ed25519-sha256 s=s1-ed25519)" in result.stderr
        received = sink.wait_for(3)
        assert sorted(r.rcpt_tos[0] for r in received) == [
            "newcomer@example.org",
            "reader0@example.org",
            "reader1@example.org",
        ]
        for message in received:
            assert verify_all(message.data, dns_server.dkim_dnsfunc) == [
                ("rsa-sha256", True),
                ("ed25519-sha256", True),
            ], message.rcpt_tos
        issue_mail = [r for r in received if r.rcpt_tos[0].startswith("reader")]
        assert all(r.message["Feedback-ID"].startswith("398:") for r in issue_mail)


def test_without_dkim_the_worker_sends_unsigned(tmp_path: Path, sqlite_url: str, seed_path: Path) -> None:
    env = environment(ROOT / "feedsvc.toml", tmp_path, sqlite_url)
    _queue_mail(load_settings(ROOT / "feedsvc.toml", env), seed_path)
    result = CliRunner().invoke(main, ["worker", "--once", "--no-progress"], env=env)
    assert result.exit_code == 0, result.output
    assert "DKIM: not configured" in result.stderr
    files = list((tmp_path / "var" / "mail").glob("*.eml"))
    assert len(files) == 3 and not any(b"DKIM-Signature" in f.read_bytes() for f in files)
