"""A real worker send to an aiosmtpd sink: the VERP envelope sender on the wire (MAIL FROM), and refusals at SMTP
time judged by the same rule as reports (a policy refusal never counts against the reader)."""

from __future__ import annotations

from pathlib import Path

from bounce_rows import SentRow, bounces, readers, sample, subscriber, with_return_path
from smtp_support import SmtpSink
from sqlalchemy import select

from feedsvc.bounces import verp
from feedsvc.bounces.intake import take_in
from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database
from feedsvc.db.models import ACTIVE, OutboxMessage
from feedsvc.mail.transport import SmtpTransport
from feedsvc.outbox import sends
from feedsvc.outbox.retry import RetryPolicy
from feedsvc.outbox.worker import SendWorker
from feedsvc.subscribers import subscriptions


def _send(db: Database, settings: Settings, sink: SmtpSink) -> None:
    policy = RetryPolicy(base_seconds=0, jitter=0, deadline_seconds=3600)
    worker = SendWorker(db, settings, transport_factory=lambda: SmtpTransport(sink.url), policy=policy, concurrency=2)
    worker.run(until_idle=True)


def _publish(db: Database, issue: Issue) -> None:
    with db.session() as session:
        sends.publish(session, issue, Path(issue.source).read_text(encoding="utf-8"))


def test_every_message_goes_out_with_its_row_s_verp_sender_and_a_bounce_to_it_is_matched(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    verp_settings = with_return_path(settings)
    ids = readers(db, 3)
    with db.session() as session:  # a transactional mail too: a confirmation
        subscriptions.subscribe(session, verp_settings, "new.reader@example.org", ["industry"])
    _publish(db, seed_issue)
    with SmtpSink() as sink:
        _send(db, verp_settings, sink)
        received = sink.wait_for(4)
    with db.session(readonly=True) as session:
        rows = {r.recipient: r for r in session.scalars(select(OutboxMessage))}
    assert len(received) == 4
    for message in received:
        [rcpt] = message.rcpt_tos
        row = rows[rcpt]
        assert message.mail_from == verp.envelope_sender(verp_settings, row.id)
        assert message.mail_from.startswith("bounces+") and message.mail_from.endswith("@news.example.org")
        assert message.message["Message-ID"] == row.message_id  # stored per row, for relays that rewrite
        assert message.message["From"].addresses[0].addr_spec == verp_settings.publication.from_address
    # The MTA's DSN comes back to that very envelope sender and is matched to the row.
    reader = rows["reader1@example.org"]
    dsn = sample(
        "postfix_user_unknown.eml", verp_settings, SentRow(ids["reader1@example.org"], reader.id, reader.message_id, "")
    )
    dsn = dsn.replace(b"reader.gone@example.com", b"reader1@example.org")
    intake = take_in(db, verp_settings, dsn, source="lmtp")
    assert [(r.outbox_id, r.effect) for r in intake.results] == [(reader.id, "scored")]


def test_without_a_return_path_the_envelope_sender_is_the_from_address(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    readers(db, 1)
    _publish(db, seed_issue)
    with SmtpSink() as sink:
        _send(db, settings, sink)
        [message] = sink.wait_for(1)
    assert message.mail_from == settings.publication.from_address


def test_smtp_time_refusals_use_the_same_rule(db: Database, settings: Settings, seed_issue: Issue) -> None:
    ids = readers(db, 3)
    _publish(db, seed_issue)
    with SmtpSink() as sink:
        sink.refuse["reader0@example.org"] = "550 5.1.1 <reader0@example.org>: no such user"
        sink.refuse["reader1@example.org"] = "554 5.7.1 Service unavailable; client host blocked using Spamhaus"
        _send(db, settings, sink)
        sink.wait_for(1)
    hard, blocked = subscriber(db, ids["reader0@example.org"]), subscriber(db, ids["reader1@example.org"])
    assert (hard.bounce_score, hard.bounce_count, hard.status) == (1.0, 1, ACTIVE)
    assert (blocked.bounce_score, blocked.bounce_count, blocked.status) == (0.0, 0, ACTIVE)
    kept = {b.kind: b for b in bounces(db)}
    assert sorted(kept) == ["hard", "policy"]
    assert not kept["policy"].counted and "Spamhaus" in kept["policy"].diagnostic
    assert kept["hard"].source == "smtp" and kept["hard"].status == "5.1.1"


def test_feedsvc_dns_proposes_spf_for_the_return_path_domain(settings: Settings, tmp_path: Path) -> None:
    from builders import cli_env
    from click.testing import CliRunner
    from support import ROOT

    from feedsvc.cli import main

    config = tmp_path / "feedsvc.toml"
    text = (ROOT / "feedsvc.toml").read_text(encoding="utf-8")
    config.write_text(text + '\n[bounces]\nreturn_path = "bounces@news.example.org"\n', encoding="utf-8")
    env = {**cli_env(settings), "FEEDSVC_CONFIG": str(config)}
    result = CliRunner().invoke(main, ["dns"], env=env)  # exits 1 here: no DKIM key is configured
    assert "no DKIM key configured" in result.output
    assert 'news.example.org. 3600 IN TXT "v=spf1 mx ~all"' in result.output  # the envelope domain's SPF
    assert '\nfeedsvc.example.org. 3600 IN TXT "v=spf1' not in result.output


def _forged_complaint(victim: str, message_ids: list[str]) -> bytes:
    """An ARF complaint about `victim`, with no VERP tag, naming each of `message_ids` as the original's."""
    headers = "".join(f"Message-ID: {m}\r\n" for m in message_ids)
    return (
        "From: <abuse@fbl.example.net>\r\nTo: bounces@news.example.org\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nabuse report\r\n"
        "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nVersion: 1\r\nOriginal-Rcpt-To: {victim}\r\n\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: {victim}\r\n{headers}\r\n--b--\r\n"
    ).encode()


def test_an_outsider_cannot_name_someone_else_s_message_id_in_a_forged_complaint(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    from feedsvc.mail.message import make_message_id

    ids = readers(db, 2)
    _publish(db, seed_issue)
    with SmtpSink() as sink:
        _send(db, settings, sink)
        sink.wait_for(2)
    with db.session(readonly=True) as session:
        rows = {r.recipient: r for r in session.scalars(select(OutboxMessage))}
    own, victim = rows["reader0@example.org"], rows["reader1@example.org"]
    # The outsider reads their own mail's Message-ID and guesses the neighbouring rows' from it.
    guesses = [make_message_id(settings.publication, "issue", seed_issue.number, k) for k in range(1, 100)]
    guesses += [own.message_id.replace(f".{own.id}", f".{victim.id}", 1)]
    intake = take_in(db, settings, _forged_complaint("reader1@example.org", guesses), source="imap")
    assert [r.effect for r in intake.results] == ["foreign_message_id"]
    assert subscriber(db, ids["reader1@example.org"]).status == ACTIVE
    # The genuine Message-ID, which only the reader's own mailbox holds, is still matched.
    genuine = take_in(db, settings, _forged_complaint("reader1@example.org", [victim.message_id]), source="imap")
    assert [r.effect for r in genuine.results] == ["unsubscribed"]
