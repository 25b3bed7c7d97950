"""`feedsvc bounces fetch` against Debian's Dovecot: reports are recorded and moved, foreign mail stays untouched."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mta_support import (
    BOUNCE_ADDRESS,
    Dovecot,
    arf,
    auto_reply,
    bounce_config,
    dsn,
    feedsvc_command,
    letter,
    process_env,
    sent_rows,
    subscriber_state,
    verp_address,
    with_return_path,
)
from sqlalchemy import select
from support import require

from feedsvc.bounces import imap
from feedsvc.bounces.models import Bounce
from feedsvc.config import Settings
from feedsvc.db.engine import Database

pytestmark = pytest.mark.slow
PASSWORD = "s3cret-p@ss/word"  # percent-encoded in the URL


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    require(Path("/usr/sbin/dovecot").exists() and Path("/usr/lib/dovecot/imap").exists(), "Debian's dovecot-imapd")
    with Dovecot({"bounce": PASSWORD}) as server:
        yield server


def _url(dovecot: Dovecot, **kwargs: bool) -> str:
    return dovecot.url("bounce", PASSWORD.replace("@", "%40").replace("/", "%2F"), **kwargs)


def test_fetch_records_reports_moves_them_and_leaves_the_letter_unseen(
    db: Database, settings: Settings, dovecot: Dovecot, tmp_path: Path
) -> None:
    verp_settings = with_return_path(settings)
    rows = sent_rows(db, ["hard@example.com", "soft@example.com", "policy@example.com", "angry@example.com"])
    hard, soft, policy, angry = (rows[f"{n}@example.com"] for n in ("hard", "soft", "policy", "angry"))
    reports = [
        dsn(verp_address(verp_settings, hard), hard.recipient, "5.1.1", "550 5.1.1 user unknown"),
        # matched by the Message-ID in the attached text/rfc822-headers, the return path having been rewritten
        dsn(BOUNCE_ADDRESS, soft.recipient, "4.2.2", "452 4.2.2 mailbox full", message_id=soft.message_id),
        dsn(verp_address(verp_settings, policy), policy.recipient, "5.7.1", "554 5.7.1 rejected as spam"),
        arf(BOUNCE_ADDRESS, angry.recipient, angry.message_id),
        auto_reply(BOUNCE_ADDRESS, "away@example.com"),
    ]
    for raw in [*reports[:2], letter(BOUNCE_ADDRESS), *reports[2:]]:
        dovecot.append("bounce", raw)
    env = process_env(
        settings,
        bounce_config(tmp_path),
        FEEDSVC_BOUNCE_IMAP_URL=_url(dovecot),
        FEEDSVC_BOUNCE_IMAP_CA=str(dovecot.ca_file),
    )

    done = subprocess.run(feedsvc_command("bounces", "fetch", "--once"), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "5 handled (moved to feedsvc-processed), 1 left, 0 failed" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr

    [(kept, flags)] = dovecot.messages("bounce")
    assert kept == letter(BOUNCE_ADDRESS) and "\\Seen" not in flags and "\\Deleted" not in flags
    moved = dovecot.messages("bounce", imap.DEFAULT_FOLDER)
    assert sorted(raw for raw, _ in moved) == sorted(reports)
    assert subscriber_state(db, hard.subscriber_id) == {"status": "active", "score": 1.0}
    assert subscriber_state(db, soft.subscriber_id) == {"status": "active", "score": 0.5}
    assert subscriber_state(db, policy.subscriber_id) == {"status": "active", "score": 0.0}
    assert subscriber_state(db, angry.subscriber_id)["status"] == "unsubscribed"
    with db.session(readonly=True) as session:
        kinds = {(b.outbox_id, b.kind, b.source) for b in session.scalars(select(Bounce))}
    assert kinds == {
        (hard.outbox_id, "hard", "imap"),
        (soft.outbox_id, "soft", "imap"),
        (policy.outbox_id, "policy", "imap"),
        (angry.outbox_id, "complaint", "imap"),
    }

    again = subprocess.run(feedsvc_command("bounces", "fetch", "--once"), env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "0 handled (moved to feedsvc-processed), 0 left, 0 failed, 1 skipped" in again.stdout
    [(kept, flags)] = dovecot.messages("bounce")
    assert "\\Seen" not in flags


def test_starttls_and_a_server_without_move_copy_then_expunge_only_that_uid(tmp_path: Path) -> None:
    require(Path("/usr/sbin/dovecot").exists(), "Debian's dovecot-imapd")
    # A server that announces neither MOVE nor (so we learn the fallback is exact) anything beyond UIDPLUS.
    with Dovecot({"bounce": PASSWORD}, capabilities="IMAP4rev1 LITERAL+ UIDPLUS") as dovecot:
        deleted_by_owner = letter("someone@example.org").replace(b"letter-1", b"letter-2")
        for raw in (b"Subject: report one\r\n\r\nx\r\n", deleted_by_owner, b"Subject: other\r\n\r\ny\r\n"):
            dovecot.append("bounce", raw)
        owner = dovecot.client("bounce")
        owner.select("INBOX")
        owner.uid("STORE", "2", "+FLAGS", r"(\Deleted)")  # the owner deleted it and has not expunged yet
        owner.logout()
        mailbox = imap.Mailbox.from_url(_url(dovecot, starttls=True), ca_file=str(dovecot.ca_file))
        offered: list[bytes] = []

        def handle(raw: bytes) -> bool:
            offered.append(raw)
            return b"report" in raw

        result = imap.fetch_once(mailbox, handle, max_bytes=1 << 20, state_file=tmp_path / "state.json")
        assert (result.handled, result.left, result.failed) == (1, 1, 0)
        assert len(offered) == 2  # the deleted message was not offered
        inbox = dovecot.messages("bounce")
        assert [raw for raw, _ in inbox] == [deleted_by_owner, b"Subject: other\r\n\r\ny\r\n"]
        assert "\\Deleted" in inbox[0][1]  # still there: only the moved UID was expunged
        assert [raw for raw, _ in dovecot.messages("bounce", imap.DEFAULT_FOLDER)] == [
            b"Subject: report one\r\n\r\nx\r\n"
        ]


def test_a_handler_that_fails_leaves_the_message_for_the_next_round(dovecot: Dovecot, tmp_path: Path) -> None:
    dovecot.append("bounce", b"Subject: report\r\n\r\nx\r\n")
    mailbox = imap.Mailbox.from_url(_url(dovecot), ca_file=str(dovecot.ca_file))

    def broken(raw: bytes) -> bool:
        raise RuntimeError("the database is away")

    result = imap.fetch_once(mailbox, broken, max_bytes=1 << 20, state_file=tmp_path / "state.json")
    assert (result.handled, result.failed) == (0, 1)
    result = imap.fetch_once(mailbox, lambda raw: True, max_bytes=1 << 20, state_file=tmp_path / "state.json")
    assert result.handled == 1
    assert dovecot.messages("bounce") == []


def test_a_bad_login_is_logged_without_the_password_and_retried(
    dovecot: Dovecot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-p4ssword-xyz"
    mailbox = imap.Mailbox.from_url(dovecot.url("bounce", wrong), ca_file=str(dovecot.ca_file))
    stop = threading.Event()
    with caplog.at_level(logging.ERROR, logger="feedsvc.bounces.imap"):
        fetcher = threading.Thread(
            target=imap.run_fetcher,
            args=(mailbox, lambda raw: True),
            kwargs={"max_bytes": 1 << 20, "state_file": None, "interval": 0.05, "stop": stop},
        )
        fetcher.start()
        try:
            for _ in range(200):
                if len([r for r in caplog.records if "trying again" in r.getMessage()]) >= 2:
                    break
                stop.wait(0.05)
            assert fetcher.is_alive()
        finally:
            stop.set()
            fetcher.join(10)
    failures = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert len(failures) >= 2
    assert all(wrong not in line and "imaps://bounce@127.0.0.1" in line for line in failures)


def test_fetch_once_against_no_server_fails_cleanly(settings: Settings, tmp_path: Path) -> None:
    from smtp_support import free_port

    password = PASSWORD.replace("@", "%40").replace("/", "%2F")
    url = f"imaps://bounce:{password}@127.0.0.1:{free_port()}/INBOX"
    env = process_env(settings, bounce_config(tmp_path), FEEDSVC_BOUNCE_IMAP_URL=url)
    done = subprocess.run(feedsvc_command("bounces", "fetch", "--once"), env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "Error: imaps://bounce@127.0.0.1" in done.stderr and "Traceback" not in done.stderr
    assert "s3cret" not in done.stderr


def test_the_url_is_read_strictly() -> None:
    mailbox = imap.Mailbox.from_url("imap://u%40x:p%3Aq@mail.example.org/Bounces")
    assert (mailbox.user, mailbox.password, mailbox.port, mailbox.folder, mailbox.implicit_tls) == (
        "u@x",
        "p:q",
        143,
        "Bounces",
        False,
    )
    assert "p:q" not in repr(mailbox) and mailbox.shown == "imap://u@x@mail.example.org:143/Bounces"
    for bad in ("pop3://u:p@h/", "imaps://h/INBOX", "imaps://u@h/INBOX"):
        with pytest.raises(ValueError, match="FEEDSVC_BOUNCE_IMAP_URL"):
            imap.Mailbox.from_url(bad)
