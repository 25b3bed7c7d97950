"""Reading reports (pure): every sample classified, VERP tags, the status rule, and bad input refused cleanly."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path

import pytest
from bounce_rows import SAMPLES, with_return_path
from builders import make_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from feedsvc.bounces import verp
from feedsvc.bounces.classify import BouncePolicy, classify_feedback, classify_status
from feedsvc.bounces.reports import Report, ReportError, read_report
from feedsvc.config import ConfigError, Settings

# sample → (report type, recipient, kind, status, words the diagnostic keeps)
EXPECTED = {
    "postfix_user_unknown.eml": ("dsn", "reader.gone@example.com", "hard", "5.1.1", "User unknown in virtual mailbox"),
    "postfix_delayed.eml": ("dsn", "slow.reader@example.net", "delayed", "4.4.1", "Connection timed out"),
    "exim_nonstandard.eml": ("flufl", "old.account@example.org", "hard", "5.2.1", "account that you tried to reach"),
    "gmail_mailbox_full.eml": ("dsn", "full.inbox@gmail.com", "soft", "5.2.2", "out of storage space"),
    "gmail_dmarc_policy.eml": ("dsn", "strict.reader@gmail.com", "policy", "5.7.26", "DMARC policy"),
    "outlook_recipient_not_found.eml": ("dsn", "moved.away@outlook.com", "hard", "5.5.0", "mailbox unavailable"),
    "outlook_blocklist.eml": ("dsn", "hotmail.reader@hotmail.com", "policy", "5.7.1", "block list (S3150)"),
    "qq_exmail_chinese.eml": ("dsn", "qq.reader@exmail.qq.com", "hard", "5.0.0", "Mailbox not found"),
    "netease_nonstandard_chinese.eml": ("flufl", "spam.averse@163.com", "policy", "", "垃圾邮件"),
    "relay_rewrote_headers_only.eml": ("dsn", "relayed.reader@example.com", "hard", "5.1.1", "User unknown"),
    "arf_yahoo_abuse.eml": ("arf", "yahoo.reader@yahoo.com", "complaint", "abuse", "Yahoo!-Mail-Feedback/2.0"),
    "arf_mailru_abuse.eml": ("arf", "mailru.reader@mail.ru", "complaint", "abuse", "Mail.Ru FBL"),
    "vacation_autoreply.eml": ("auto_reply", "away.reader@example.com", "auto_reply", "", ""),
}


def _read(name: str) -> Report:
    data = (SAMPLES / name).read_bytes().replace(b"@@MSGID@@", b"<issue.398.7@feedsvc.example.org>")
    report = read_report(data.replace(b"@@TAG@@", b"tagged"))
    assert report is not None, name
    return report


def test_every_sample_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in SAMPLES.glob("*.eml") if p.name != "foreign_letter.eml")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_is_read_and_classified(name: str) -> None:
    report_type, recipient, kind, status, words = EXPECTED[name]
    report = _read(name)
    assert report.report_type == report_type
    [result] = report.recipients
    assert (result.recipient, result.kind, result.status) == (recipient, kind, status)
    assert words in result.diagnostic
    assert report.changes_nothing is (kind in ("delayed", "auto_reply"))


@pytest.mark.parametrize(
    "name",
    [n for n in EXPECTED if n not in ("arf_mailru_abuse.eml", "vacation_autoreply.eml", "exim_nonstandard.eml")],
)
def test_the_returned_message_id_is_found_in_attached_headers(name: str) -> None:
    assert _read(name).message_ids == ("<issue.398.7@feedsvc.example.org>",) or name.startswith("netease")


def test_message_ids_come_from_attachments_never_from_body_text() -> None:
    # Exim quotes the original in its body text: that Message-ID is not taken; a Mail.ru ARF attaches it.
    assert _read("exim_nonstandard.eml").message_ids == ()
    assert _read("arf_mailru_abuse.eml").message_ids == ("<issue.398.7@feedsvc.example.org>",)


def test_a_letter_about_bounces_is_not_a_report() -> None:
    assert read_report((SAMPLES / "foreign_letter.eml").read_bytes()) is None


def test_the_verp_address_and_arf_original_mail_from_are_collected() -> None:
    assert "bounces+tagged@news.example.org" in _read("postfix_user_unknown.eml").addresses
    assert "<bounces+tagged@news.example.org>" in _read("arf_yahoo_abuse.eml").addresses


@pytest.mark.parametrize(
    ("status", "diagnostic", "kind"),
    [
        ("5.1.1", "550 5.1.1 user unknown", "hard"),
        ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound", "hard"),
        ("5.2.1", "550 5.2.1 account disabled", "hard"),
        ("5.4.4", "554 5.4.4 Host not found", "hard"),
        ("5.2.2", "552 5.2.2 mailbox full", "soft"),
        ("5.3.4", "552 5.3.4 message too big for system", "soft"),
        ("4.2.2", "452 4.2.2 over quota", "soft"),
        ("4.4.1", "", "soft"),
        ("5.7.1", "554 5.7.1 Service unavailable; client host blocked using Spamhaus", "policy"),
        ("5.7.26", "550 5.7.26 DMARC", "policy"),
        ("4.7.28", "421 4.7.28 unusual rate of unsolicited mail", "policy"),
        ("", "550 Mail content denied", "policy"),
        ("", "554 IP in blacklist", "policy"),
        ("", "550 User not found", "hard"),
        ("", "550 收件人不存在", "hard"),
        ("", "552 邮箱空间不足", "soft"),
        ("5.0.0", "550 Message rejected as spam", "policy"),
        ("5.0.0", "550 Requested action not taken", "hard"),
        ("", "PermanentFailure: 550 5.1.1 <a@example.org>: Recipient address rejected", "hard"),
        ("", "PermanentFailure: 554 5.7.1 <a@example.org>: Relay access denied", "policy"),
    ],
)
def test_the_status_rule(status: str, diagnostic: str, kind: str) -> None:
    assert classify_status(status, diagnostic) == kind


def test_feedback_types() -> None:
    assert [classify_feedback(t) for t in ("abuse", "fraud", "other", "", "virus", "auth-failure", "not-spam")] == [
        "complaint", "complaint", "complaint", "complaint", "policy", "policy", "none",
    ]  # fmt: skip


# -- VERP


@pytest.fixture
def verp_settings(tmp_path: Path) -> Settings:
    return with_return_path(make_settings(tmp_path))


def test_a_tag_names_its_row_and_survives_lower_and_upper_case(verp_settings: Settings) -> None:
    for outbox_id in (0, 1, 31, 32, 1_000_000, 2**40):
        tag = verp.make_tag(verp_settings, outbox_id)
        assert tag == tag.lower() and tag.isalnum() and len(tag) <= 8 + 9
        assert verp.read_tag(verp_settings, tag) == outbox_id
        assert verp.read_tag(verp_settings, tag.upper()) == outbox_id
    assert len(verp.make_tag(verp_settings, 1_000_000)) == 12
    sender = verp.envelope_sender(verp_settings, 1234)
    assert sender == f"bounces+{verp.make_tag(verp_settings, 1234)}@news.example.org"
    assert verp.find_tag(verp_settings, [f"<{sender.upper()}>"]) == verp.TagMatch(sender, 1234)


def test_a_forged_or_foreign_tag_names_no_row(verp_settings: Settings, tmp_path: Path) -> None:
    tag = verp.make_tag(verp_settings, 77)
    other = with_return_path(make_settings(tmp_path, env={"FEEDSVC_SECRET_KEY": "another-key-entirely"}))
    assert verp.read_tag(other, tag) is None  # signed with another key
    assert verp.read_tag(verp_settings, tag[:-1] + ("a" if tag[-1] != "a" else "b")) is None
    other_row = verp.make_tag(verp_settings, 78)[: -verp.MAC_CHARS] + tag[-verp.MAC_CHARS :]
    assert verp.read_tag(verp_settings, other_row) is None  # another row under row 77's signature
    assert verp.read_tag(verp_settings, "") is None and verp.read_tag(verp_settings, "!!!!!!!!!!") is None
    assert verp.find_tag(verp_settings, ["bounces+zzzzzzzzzz@news.example.org"]).outbox_id is None
    assert verp.find_tag(verp_settings, ["bounces@news.example.org", "someone+x@example.org"]) is None


def test_without_a_return_path_the_envelope_sender_stays(tmp_path: Path) -> None:
    plain = make_settings(tmp_path)
    assert plain.publication.return_path == "" and verp.envelope_sender(plain, 5) is None


def test_the_return_path_is_read_from_feedsvc_toml(tmp_path: Path) -> None:
    from support import ROOT

    from feedsvc.config import load_publication

    text = (ROOT / "feedsvc.toml").read_text(encoding="utf-8")
    config = tmp_path / "feedsvc.toml"
    config.write_text(text + '\n[bounces]\nreturn_path = "bounces@news.example.org"\n', encoding="utf-8")
    assert load_publication(config).return_path == "bounces@news.example.org"
    config.write_text(text + '\n[bounces]\nreturn_path = "bounces+x@news.example.org"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="return_path"):
        load_publication(config)


# -- bad input


def test_oversize_input_is_refused() -> None:
    policy = BouncePolicy(max_bytes=1000)
    data = (SAMPLES / "postfix_user_unknown.eml").read_bytes()
    with pytest.raises(ReportError, match="FEEDSVC_BOUNCE_MAX_BYTES"):
        read_report(data, policy)
    assert BouncePolicy.from_env({}).max_bytes == 10 * 1024 * 1024
    assert BouncePolicy.from_env({"FEEDSVC_BOUNCE_MAX_BYTES": "2048"}).max_bytes == 2048
    with pytest.raises(ConfigError, match="FEEDSVC_BOUNCE_MAX_BYTES"):
        BouncePolicy.from_env({"FEEDSVC_BOUNCE_MAX_BYTES": "ten"})


def _nested(depth: int) -> bytes:
    head = b"From: MAILER-DAEMON@example.org\r\nMIME-Version: 1.0\r\n"
    body = b"Content-Type: text/plain\r\n\r\nx\r\n"
    for level in range(depth):
        boundary = f"b{level}".encode()
        body = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n--' + boundary + b"\r\n"
            + body + b"\r\n--" + boundary + b"--\r\n"
        )  # fmt: skip
    return head + body


def test_deep_nesting_is_refused() -> None:
    assert read_report(_nested(5)) is None  # nested, but within the limit: simply not a report
    with pytest.raises(ReportError, match="nesting"):
        read_report(_nested(60))


def test_unknown_charsets_and_raw_8bit_do_not_break_reading() -> None:
    data = (
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\nTo: bounces@news.example.org\r\n"
        "Subject: =?x-unknown-charset?B?5L2g5aW9?= \xff\xfe\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        '--B\r\nContent-Type: text/plain; charset="x-made-up"\r\n\r\n退信 \x80\x81\r\n'
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; 读者@例子.中国\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 用户不存在\r\n\r\n--B--\r\n"
    ).encode("utf-8", "surrogateescape")
    report = read_report(data)
    assert report is not None
    [result] = report.recipients
    assert (result.recipient, result.kind, result.diagnostic) == ("读者@例子.中国", "hard", "550 用户不存在")


@pytest.mark.parametrize("garbage", [b"", b"\x00" * 100, b"\r\n\r\n", b"not a mail at all", b"\xff\xfe" * 5000])
def test_garbage_raises_only_the_documented_error_or_is_no_report(garbage: bytes) -> None:
    with contextlib.suppress(ReportError):
        assert read_report(garbage) is None


def test_a_base64_delivery_status_part_is_read() -> None:
    import base64

    fields = (
        b"Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; b64@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    )
    data = (
        b'From: postmaster@example.net\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(fields) + b"\r\n--B--\r\n"
    )  # fmt: skip
    report = read_report(data)
    assert report is not None and report.recipients[0].recipient == "b64@example.org"


_PIECES = [(SAMPLES / n).read_bytes() for n in sorted(EXPECTED)]


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=3000),
        st.builds(
            lambda i, cut, junk: _PIECES[i % len(_PIECES)][:cut] + junk,
            st.integers(0, 100),
            st.integers(0, 6000),
            st.binary(max_size=200),
        ),
    )
)
def test_arbitrary_bytes_raise_nothing_but_report_error(data: bytes) -> None:
    logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
    try:
        report = read_report(data, BouncePolicy(max_bytes=5000))
    except ReportError:
        return
    assert report is None or isinstance(report, Report)
    if report is not None:
        assert all(isinstance(r.recipient, str) and isinstance(r.diagnostic, str) for r in report.recipients)
        assert all(dataclasses.is_dataclass(r) for r in report.recipients)
