"""Taking reports in, on SQLite and PostgreSQL: matching by VERP tag or Message-ID, the score, complaints,
policy blocks, and everything that must change nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from bounce_rows import bounces, events, sample, sent_row, subscriber, with_return_path
from builders import cli_env
from click.testing import CliRunner
from sqlalchemy import select, update

from feedsvc.bounces import stats
from feedsvc.bounces.intake import BounceEvent, take_in, take_in_event
from feedsvc.bounces.models import BounceReport
from feedsvc.config import Settings
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.models import ACTIVE, BOUNCED, UNSUBSCRIBED, Subscriber
from feedsvc.outbox.housekeeping import housekeeping
from feedsvc.subscribers import privacy, subscriptions, tokens


@pytest.fixture
def verp_settings(settings: Settings) -> Settings:
    return with_return_path(settings)


# sample → (reader, kind, effect on a first report)
MATCHED = {
    "postfix_user_unknown.eml": ("reader.gone@example.com", "hard", "scored"),
    "exim_nonstandard.eml": ("old.account@example.org", "hard", "scored"),
    "gmail_mailbox_full.eml": ("full.inbox@gmail.com", "soft", "scored"),
    "gmail_dmarc_policy.eml": ("strict.reader@gmail.com", "policy", "policy"),
    "outlook_recipient_not_found.eml": ("moved.away@outlook.com", "hard", "scored"),
    "outlook_blocklist.eml": ("hotmail.reader@hotmail.com", "policy", "policy"),
    "qq_exmail_chinese.eml": ("qq.reader@exmail.qq.com", "hard", "scored"),
    "netease_nonstandard_chinese.eml": ("spam.averse@163.com", "policy", "policy"),
    "arf_yahoo_abuse.eml": ("yahoo.reader@yahoo.com", "complaint", "unsubscribed"),
}


@pytest.mark.parametrize("name", sorted(MATCHED))
def test_each_sample_is_matched_by_its_verp_tag_and_acted_on(db: Database, verp_settings: Settings, name: str) -> None:
    email, kind, effect = MATCHED[name]
    row = sent_row(db, email)
    intake = take_in(db, verp_settings, sample(name, verp_settings, row), source="test")
    assert (intake.handled, intake.outcome) == (True, "recorded")
    [result] = intake.results
    assert (result.kind, result.effect, result.outbox_id, result.matched) == (kind, effect, row.outbox_id, True)
    [kept] = bounces(db)
    assert (kept.kind, kept.outbox_id, kept.issue_number, kept.report_id) == (
        kind,
        row.outbox_id,
        398,
        intake.report_id,
    )
    assert kept.diagnostic == result.diagnostic and kept.diagnostic
    reader = subscriber(db, row.subscriber_id)
    if kind == "policy":  # the sender's problem: never against the reader
        assert kept.subscriber_id == row.subscriber_id and not kept.counted
        assert (reader.bounce_score, reader.status) == (0.0, ACTIVE)
    elif kind == "complaint":
        assert reader.status == UNSUBSCRIBED
        assert (
            "complained",
            f"Feedback-Type: abuse; Yahoo!-Mail-Feedback/2.0 news.example.org (outbox row {row.outbox_id}, via test)",
        ) in events(db, row.subscriber_id)
        assert ("unsubscribed", "complaint") in events(db, row.subscriber_id)
    else:
        assert reader.bounce_score == {"hard": 1.0, "soft": 0.5}[kind] and reader.status == ACTIVE
        assert kept.subscriber_id == row.subscriber_id and kept.counted


def test_a_relay_that_rewrote_the_return_path_is_matched_by_the_message_id(
    db: Database, verp_settings: Settings
) -> None:
    row = sent_row(db, "relayed.reader@example.com")
    intake = take_in(db, verp_settings, sample("relay_rewrote_headers_only.eml", verp_settings, row), source="test")
    assert [(r.effect, r.outbox_id) for r in intake.results] == [("scored", row.outbox_id)]
    mailru = sent_row(db, "mailru.reader@mail.ru")  # an ARF whose only clue is the attached original
    intake = take_in(db, verp_settings, sample("arf_mailru_abuse.eml", verp_settings, mailru), source="test")
    assert [(r.kind, r.effect) for r in intake.results] == [("complaint", "unsubscribed")]


def test_a_message_id_we_never_sent_to_that_address_changes_nothing(db: Database, verp_settings: Settings) -> None:
    row = sent_row(db, "relayed.reader@example.com")
    other = sent_row(db, "someone.else@example.com")
    for target in (None, other):  # unknown, and known but sent to somebody else
        data = sample("relay_rewrote_headers_only.eml", verp_settings, target)
        intake = take_in(db, verp_settings, data, source="test")
        assert (intake.handled, intake.outcome) == (True, "unmatched")
        assert intake.results[0].effect == "foreign_message_id"
    assert bounces(db) == [] and subscriber(db, row.subscriber_id).bounce_score == 0.0
    with db.session(readonly=True) as session:
        assert stats.unmatched_reports(session) == 2


def test_message_ids_in_body_text_are_never_used(db: Database, verp_settings: Settings) -> None:
    row = sent_row(db, "old.account@example.org")
    data = sample("exim_nonstandard.eml", verp_settings, row).replace(b"bounces+", b"other+")  # the tag is gone
    intake = take_in(db, verp_settings, data, source="test")
    assert intake.outcome == "unmatched" and bounces(db) == []


def test_a_forged_tag_changes_nothing(db: Database, verp_settings: Settings) -> None:
    row = sent_row(db, "reader.gone@example.com")
    forged = sample("postfix_user_unknown.eml", verp_settings, row, tag="b" + "aaaaaaaa")
    intake = take_in(db, verp_settings, forged, source="test")
    assert intake.handled and intake.outcome == "unmatched"
    assert [r.effect for r in intake.results] == ["bad_tag"]  # not matched by Message-ID either
    assert bounces(db) == [] and subscriber(db, row.subscriber_id).bounce_score == 0.0


def test_a_replayed_report_counts_once(db: Database, verp_settings: Settings) -> None:
    row = sent_row(db, "reader.gone@example.com")
    data = sample("postfix_user_unknown.eml", verp_settings, row)
    first = take_in(db, verp_settings, data, source="test")
    again = [take_in(db, verp_settings, data.replace(b"\n", b"\r\n"), source="test") for _ in range(3)]
    assert first.results[0].effect == "scored"
    assert {r.results[0].effect for r in again} == {"replayed"}
    assert subscriber(db, row.subscriber_id).bounce_score == 1.0 and len(bounces(db)) == 1


def test_three_hard_bounces_make_a_subscriber_bounced(db: Database, verp_settings: Settings) -> None:
    now = utcnow()
    effects = []
    for day in range(3):
        row = sent_row(db, "reader.gone@example.com", issue=398 + day)
        at = now + timedelta(days=day)
        intake = take_in(db, verp_settings, sample("postfix_user_unknown.eml", verp_settings, row), source="t", now=at)
        effects.append(intake.results[0].effect)
    assert effects == ["scored", "scored", "bounced"]
    reader = subscriber(db, row.subscriber_id)
    assert (reader.status, reader.bounce_score, reader.bounce_count) == (BOUNCED, 3.0, 3)
    assert [k for k, _ in events(db, row.subscriber_id)] == ["bounce", "bounce", "bounce", "bounced"]
    assert "User unknown" in events(db, row.subscriber_id)[0][1]
    later = sent_row(db, "reader.gone@example.com", issue=500)  # bounced already: changes nothing
    intake = take_in(db, verp_settings, sample("postfix_user_unknown.eml", verp_settings, later), source="t")
    assert intake.results[0].effect == "left" and subscriber(db, row.subscriber_id).bounce_count == 3


def test_the_limit_comes_from_the_environment(db: Database, settings: Settings) -> None:
    one = with_return_path(settings.with_overrides(extra={**settings.extra, "FEEDSVC_BOUNCE_LIMIT": "1"}))
    row = sent_row(db, "reader.gone@example.com")
    intake = take_in(db, one, sample("postfix_user_unknown.eml", one, row), source="t")
    assert intake.results[0].effect == "bounced" and subscriber(db, row.subscriber_id).status == BOUNCED


def test_a_score_goes_stale_after_thirty_days_without_a_bounce(db: Database, verp_settings: Settings) -> None:
    now = utcnow()
    for issue, at in ((398, now), (399, now + timedelta(days=1)), (400, now + timedelta(days=32))):
        row = sent_row(db, "reader.gone@example.com", issue=issue)
        take_in(db, verp_settings, sample("postfix_user_unknown.eml", verp_settings, row), source="t", now=at)
    reader = subscriber(db, row.subscriber_id)
    assert (reader.status, reader.bounce_score) == (ACTIVE, 1.0)  # 2 went stale; the new bounce starts again


def test_soft_bounces_count_at_most_once_a_day(db: Database, verp_settings: Settings) -> None:
    now = utcnow()
    effects = []
    for issue, hours in ((398, 0), (399, 5), (400, 23), (401, 25), (402, 26)):
        row = sent_row(db, "full.inbox@gmail.com", issue=issue)
        data = sample("gmail_mailbox_full.eml", verp_settings, row)
        effects.append(take_in(db, verp_settings, data, source="t", now=now + timedelta(hours=hours)).results[0].effect)
    assert effects == ["scored", "soft_today", "soft_today", "scored", "soft_today"]
    assert subscriber(db, row.subscriber_id).bounce_score == 1.0
    assert len(bounces(db)) == 5  # every one is kept, only two counted
    assert [b.counted for b in bounces(db)] == [True, False, False, True, False]


def test_policy_blocks_never_count_against_the_reader(db: Database, verp_settings: Settings) -> None:
    for issue in range(398, 408):
        row = sent_row(db, "hotmail.reader@hotmail.com", issue=issue)
        take_in(db, verp_settings, sample("outlook_blocklist.eml", verp_settings, row), source="t")
    reader = subscriber(db, row.subscriber_id)
    assert (reader.status, reader.bounce_score, reader.bounce_count) == (ACTIVE, 0.0, 0)
    assert events(db, row.subscriber_id) == []
    with db.session(readonly=True) as session:
        assert stats.per_issue(session, {398: 10})[398].policy == 1
        assert {(h.kind, h.effect) for h in stats.history(session, row.subscriber_id)} == {("policy", "policy")}
    with db.session() as session:  # erasing the reader erases their policy blocks too (the words name them)
        privacy.erase(session, session.get(Subscriber, row.subscriber_id))
    assert bounces(db) == []


def test_a_complaint_unsubscribes_and_a_later_confirmed_sign_up_of_their_own_works(
    db: Database, verp_settings: Settings
) -> None:
    row = sent_row(db, "yahoo.reader@yahoo.com")
    take_in(db, verp_settings, sample("arf_yahoo_abuse.eml", verp_settings, row), source="imap")
    assert subscriber(db, row.subscriber_id).status == UNSUBSCRIBED
    later = utcnow() + timedelta(days=3)
    with db.session() as session:
        subscriptions.subscribe(session, verp_settings, "yahoo.reader@yahoo.com", ["industry"], now=later)
    with db.session() as session:
        reader = session.get(Subscriber, row.subscriber_id)
        asked = [int(later.timestamp() * 1000), ["industry"]]
        token = tokens.make_token(verp_settings, tokens.CONFIRM, reader.id, reader.token_version, *asked)
        subscriptions.confirm(session, verp_settings, token, now=later)
    assert subscriber(db, row.subscriber_id).status == ACTIVE


def test_reports_for_unsubscribed_or_erased_addresses_change_nothing(db: Database, verp_settings: Settings) -> None:
    gone = sent_row(db, "reader.gone@example.com", status=UNSUBSCRIBED)
    intake = take_in(db, verp_settings, sample("postfix_user_unknown.eml", verp_settings, gone), source="t")
    assert intake.results[0].effect == "left" and bounces(db) == []
    assert subscriber(db, gone.subscriber_id).bounce_score == 0.0
    erased = sent_row(db, "yahoo.reader@yahoo.com")
    with db.session() as session:
        privacy.erase(session, session.get(Subscriber, erased.subscriber_id))
    intake = take_in(db, verp_settings, sample("arf_yahoo_abuse.eml", verp_settings, erased), source="t")
    assert intake.handled and intake.results[0].effect in ("erased", "unmatched") and bounces(db) == []


def test_delayed_notices_and_auto_replies_are_handled_and_change_nothing(db: Database, verp_settings: Settings) -> None:
    row = sent_row(db, "slow.reader@example.net")
    for name in ("postfix_delayed.eml", "vacation_autoreply.eml"):
        intake = take_in(db, verp_settings, sample(name, verp_settings, row), source="t")
        assert (intake.handled, intake.outcome) == (True, "no_change")
    assert bounces(db) == [] and subscriber(db, row.subscriber_id).bounce_score == 0.0
    failed = take_in(db, verp_settings, sample("postfix_user_unknown.eml", verp_settings, row), source="t")
    assert failed.results[0].effect == "scored"  # the final failure after a delay still counts


def test_foreign_garbage_and_oversize_mail_is_not_handled(
    db: Database, verp_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from bounce_rows import SAMPLES

    assert take_in(db, verp_settings, (SAMPLES / "foreign_letter.eml").read_bytes(), source="t").handled is False
    assert take_in(db, verp_settings, b"\x00\xff garbage", source="t").handled is False
    small = verp_settings.with_overrides(extra={**verp_settings.extra, "FEEDSVC_BOUNCE_MAX_BYTES": "100"})
    row = sent_row(db, "reader.gone@example.com")
    with caplog.at_level("WARNING", logger="feedsvc.bounces.intake"):
        intake = take_in(db, small, sample("postfix_user_unknown.eml", small, row), source="imap")
    assert (intake.handled, intake.outcome) == (False, "too_large")
    assert "FEEDSVC_BOUNCE_MAX_BYTES" in caplog.text
    with db.session(readonly=True) as session:
        assert session.scalars(select(BounceReport)).all() == []


def test_ses_style_events(db: Database, verp_settings: Settings) -> None:
    hard = sent_row(db, "ses.hard@example.com")
    complaint = sent_row(db, "ses.complaint@example.com")
    blocked = sent_row(db, "ses.blocked@example.com")
    event = BounceEvent(hard.message_id, "SES.Hard@example.com", "hard", "5.1.1", "smtp; 550 5.1.1 user unknown")
    assert take_in_event(db, verp_settings, event, source="ses").results[0].effect == "scored"
    event = BounceEvent(complaint.message_id, "ses.complaint@example.com", "complaint", "abuse")
    assert take_in_event(db, verp_settings, event, source="ses").results[0].effect == "unsubscribed"
    event = BounceEvent(blocked.message_id, "ses.blocked@example.com", "hard", "5.7.1", "554 5.7.1 rejected as spam")
    assert take_in_event(db, verp_settings, event, source="ses").results[0].effect == "policy"
    event = BounceEvent(hard.message_id, "ses.complaint@example.com", "hard", "5.1.1")  # not sent to that address
    assert take_in_event(db, verp_settings, event, source="ses").results[0].effect == "foreign_message_id"
    with pytest.raises(ValueError, match="kind"):
        take_in_event(db, verp_settings, BounceEvent(hard.message_id, "x@example.com", "weird"), source="ses")


def test_a_policy_event_stays_policy_whatever_its_words(db: Database, verp_settings: Settings) -> None:
    """An SES complaint of type virus is the sender's problem; its words must not turn it into a soft bounce."""
    row = sent_row(db, "ses.virus@example.com")
    event = BounceEvent(row.message_id, "ses.virus@example.com", "policy", "virus", "Yahoo!-Mail-Feedback/2.0")
    assert take_in_event(db, verp_settings, event, source="ses").results[0].effect == "policy"
    assert subscriber(db, row.subscriber_id).bounce_score == 0.0


def test_raw_reports_are_kept_thirty_days_and_the_bounces_for_good(db: Database, verp_settings: Settings) -> None:
    row = sent_row(db, "reader.gone@example.com")
    data = sample("postfix_user_unknown.eml", verp_settings, row)
    intake = take_in(db, verp_settings, data, source="lmtp")
    with db.session() as session:
        housekeeping(session, utcnow() + timedelta(days=29))
    with db.session(readonly=True) as session:
        assert session.get(BounceReport, intake.report_id).raw == data
    with db.session() as session:
        housekeeping(session, utcnow() + timedelta(days=31))
    with db.session(readonly=True) as session:
        stored = session.get(BounceReport, intake.report_id)
        assert stored.raw is None and stored.outcome == "recorded"
    assert len(bounces(db)) == 1


def test_erasing_a_reader_empties_the_raw_reports_about_them_at_once(db: Database, verp_settings: Settings) -> None:
    """The raw report names the reader and quotes their mail: it goes with them, not 30 days later."""
    row, other = sent_row(db, "reader.gone@example.com"), sent_row(db, "moved.away@outlook.com")
    theirs = take_in(db, verp_settings, sample("postfix_user_unknown.eml", verp_settings, row), source="lmtp")
    kept = take_in(db, verp_settings, sample("outlook_recipient_not_found.eml", verp_settings, other), source="lmtp")
    with db.session() as session:
        privacy.erase(session, session.get(Subscriber, row.subscriber_id))
    with db.session(readonly=True) as session:
        assert session.get(BounceReport, theirs.report_id).raw is None
        assert session.get(BounceReport, kept.report_id).raw is not None
    assert [b.subscriber_id for b in bounces(db)] == [other.subscriber_id]


def test_status_json_and_export_show_what_came_back(
    db: Database, verp_settings: Settings, seed_path: Path, tmp_path: Path
) -> None:
    from feedsvc.cli import main

    env = cli_env(verp_settings)
    runner = CliRunner()
    assert runner.invoke(main, ["publish", str(seed_path)], env=env).exit_code == 0
    from feedsvc.db.models import SENT, OutboxMessage

    readers = {}
    for name, (email, _, _) in MATCHED.items():
        readers[name] = sent_row(db, email, issue=1)  # issue 1 is not published: not listed
    with db.session() as session:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.issue_number == 1).values(issue_number=398, state=SENT)
        )
    for name, row in readers.items():
        take_in(db, verp_settings, sample(name, verp_settings, row), source="t")
    result = runner.invoke(main, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    [issue] = json.loads(result.output)
    assert issue["number"] == 398 and issue["sent"] == len(MATCHED)
    came_back = {k: issue[k] for k in ("bounced_hard", "bounced_soft", "policy", "complaints")}
    assert came_back == {"bounced_hard": 4, "bounced_soft": 1, "policy": 3, "complaints": 1}
    assert issue["complaint_rate"] == pytest.approx(1 / len(MATCHED), abs=1e-6)
    exported = runner.invoke(main, ["subscribers", "export"], env=env).output.splitlines()
    assert exported[0] == "email,status,sections,bounce_score"
    assert "full.inbox@gmail.com,active,,0.5" in exported
    assert "reader.gone@example.com,active,,1" in exported
    assert "strict.reader@gmail.com,active,,0" in exported


def _bounce_counts() -> tuple[float, float, float]:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    return (
        value("feedsvc_bounces_total", kind="hard"),
        value("feedsvc_bounces_total", kind="policy"),
        value("feedsvc_complaints_total"),
    )


def test_bounces_and_complaints_are_counted_once_each_in_the_metrics(db: Database, verp_settings: Settings) -> None:
    before = _bounce_counts()
    for name, email in [
        ("postfix_user_unknown.eml", "reader.gone@example.com"),
        ("gmail_dmarc_policy.eml", "strict.reader@gmail.com"),
        ("arf_yahoo_abuse.eml", "yahoo.reader@yahoo.com"),
    ]:
        data = sample(name, verp_settings, sent_row(db, email))
        take_in(db, verp_settings, data, source="test")
        take_in(db, verp_settings, data, source="test")  # a replay counts nothing
    after = _bounce_counts()
    assert tuple(b - a for a, b in zip(before, after, strict=True)) == (1.0, 1.0, 1.0)
