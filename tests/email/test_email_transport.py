"""Transports: SMTP against a real aiosmtpd server on loopback, and the .eml folder."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from email_support import parse_back, parts
from smtp_support import SmtpSink, free_port, self_signed_certificate, server_context

from feedsvc.config import ConfigError, Publication, load_settings
from feedsvc.content.model import Issue
from feedsvc.mail import message as mail_message
from feedsvc.mail import newsletter
from feedsvc.mail.transport import (
    Envelope,
    MailDirTransport,
    PermanentFailure,
    SmtpConfig,
    SmtpTransport,
    TemporaryFailure,
    Transport,
    open_transport,
    prepare,
)


@pytest.fixture
def message(seed: Issue, publication: Publication, links: mail_message.Links) -> EmailMessage:
    rendered = newsletter.render(seed, "industry,technology", publication)
    return mail_message.build_message(rendered, "reader@example.com", links, publication)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory, require_tool: Callable[[str], str]) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"), require_tool("openssl"))


def simple(to: str = "someone@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Sender <sender@example.org>"
    message["To"] = to
    message["Subject"] = "确认订阅"
    message.set_content("请点击链接确认。")
    return message


def send(transport: Transport, message: EmailMessage) -> str:
    """Send `message` as `prepare` makes it; its Message-ID."""
    envelope, data = prepare(message)
    transport.send(envelope, data)
    return envelope.message_id


# ------------------------------------------------------------------------------------------- SMTP


def test_what_arrives_is_what_was_built(sink: SmtpSink, message: EmailMessage) -> None:
    built = mail_message.serialise(message)
    with SmtpTransport(sink.url) as transport:
        message_id = send(transport, message)
    [received] = sink.wait_for(1)
    assert received.data == built  # byte for byte
    assert received.mail_from == "newsletter@feedsvc.example.org"
    assert received.rcpt_tos == ["reader@example.com"]
    arrived, sent = received.message, parse_back(message)
    assert arrived["Message-ID"] == message_id == message["Message-ID"]
    for name in ("Subject", "From", "To", "Date", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post"):
        assert arrived[name] == sent[name], name
    assert parts(arrived) == parts(sent)


def test_the_envelope_not_the_headers_says_who_it_is_from_and_to(sink: SmtpSink, message: EmailMessage) -> None:
    # What a VERP return path needs: the envelope sender differs from From, the bytes are sent untouched.
    data = mail_message.serialise(message)
    envelope = Envelope("bounces+r42@bounce.example.org", ("other@example.com",), str(message["Message-ID"]))
    with SmtpTransport(sink.url) as transport:
        transport.send(envelope, data)
    [received] = sink.wait_for(1)
    assert received.mail_from == "bounces+r42@bounce.example.org"
    assert received.rcpt_tos == ["other@example.com"]
    assert received.data == data


def test_one_connection_carries_many_messages(sink: SmtpSink, message: EmailMessage) -> None:
    with SmtpTransport(sink.url) as transport:
        for n in range(3):
            transport.send(*prepare(simple(f"reader{n}@example.com")))
    assert [r.rcpt_tos for r in sink.wait_for(3)] == [[f"reader{n}@example.com"] for n in range(3)]
    assert sink.connections == 1


def test_an_idle_connection_is_checked_and_replaced(sink: SmtpSink) -> None:
    transport = SmtpTransport(sink.url, idle_check=0)
    transport.send(*prepare(simple()))
    sink.hang_up()  # the server's idle timeout
    transport.send(*prepare(simple()))
    transport.close()
    assert len(sink.wait_for(2)) == 2
    assert sink.connections == 2


def test_starttls_and_auth(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with SmtpSink(tls_context=server_context(cert, key), users={"news letter": "p@ss:w/rd"}) as sink:
        url = f"smtp://news%20letter:p%40ss%3Aw%2Frd@127.0.0.1:{sink.port}?starttls=required&cafile={cert}"
        with SmtpTransport(url) as transport:
            transport.send(*prepare(simple()))
        [received] = sink.wait_for(1)
        assert received.tls and received.auth_user == "news letter"


def test_wrong_password_is_a_temporary_setup_failure(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with SmtpSink(tls_context=server_context(cert, key), users={"user": "right"}) as sink:
        with pytest.raises(TemporaryFailure) as failure:
            SmtpTransport(f"smtp://user:wrong@127.0.0.1:{sink.port}?cafile={cert}").send(*prepare(simple()))
        assert failure.value.code == 535
        assert not sink.messages


def test_an_untrusted_certificate_is_refused(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with SmtpSink(tls_context=server_context(cert, key)) as sink, pytest.raises(TemporaryFailure, match="certificate"):
        SmtpTransport(f"smtp://127.0.0.1:{sink.port}").send(*prepare(simple()))  # system CAs do not know it


def test_smtps(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with SmtpSink(tls_context=server_context(cert, key), implicit_tls=True) as sink:
        with SmtpTransport(f"smtps://127.0.0.1:{sink.port}?cafile={cert}") as transport:
            transport.send(*prepare(simple()))
        assert sink.wait_for(1)[0].tls


def test_starttls_required_but_not_offered(sink: SmtpSink) -> None:
    with pytest.raises(TemporaryFailure, match="STARTTLS"):
        SmtpTransport(f"smtp://127.0.0.1:{sink.port}?starttls=required").send(*prepare(simple()))
    assert not sink.messages


@pytest.mark.parametrize(
    ("stage", "reply", "kind", "code"),
    [
        ("RCPT", "550 5.1.1 no such user", PermanentFailure, 550),
        ("RCPT", "451 4.7.1 greylisted, try again", TemporaryFailure, 451),
        ("MAIL", "553 5.7.1 sender not allowed", PermanentFailure, 553),
        ("MAIL", "452 4.3.1 insufficient storage", TemporaryFailure, 452),
        ("DATA", "554 5.6.0 message refused", PermanentFailure, 554),
    ],
)
def test_replies_map_to_temporary_or_permanent(sink: SmtpSink, stage: str, reply: str, kind: type, code: int) -> None:
    transport = SmtpTransport(sink.url)
    sink.replies[stage] = reply
    with pytest.raises(kind) as failure:
        transport.send(*prepare(simple()))
    assert failure.value.code == code
    assert failure.value.temporary is (kind is TemporaryFailure)
    assert reply.split(" ", 1)[1] in str(failure.value)
    sink.replies.clear()
    transport.send(*prepare(simple()))  # the transaction was reset; the connection goes on
    transport.close()
    assert sink.connections == 1 and len(sink.wait_for(1)) == 1


def test_421_closes_the_connection(sink: SmtpSink) -> None:
    transport = SmtpTransport(sink.url)
    sink.replies["RCPT"] = "421 4.3.2 shutting down"
    with pytest.raises(TemporaryFailure) as failure:
        transport.send(*prepare(simple()))
    assert failure.value.code == 421
    sink.replies.clear()
    transport.send(*prepare(simple()))
    transport.close()
    assert sink.connections == 2


@pytest.mark.parametrize(("stage", "maybe_delivered"), [("RCPT", False), ("DATA", True)])
def test_a_dropped_connection_is_temporary(sink: SmtpSink, stage: str, maybe_delivered: bool) -> None:
    transport = SmtpTransport(sink.url)
    sink.drop_at = stage
    with pytest.raises(TemporaryFailure) as failure:
        transport.send(*prepare(simple()))
    assert failure.value.code == 0
    assert failure.value.maybe_delivered is maybe_delivered
    sink.drop_at = None
    transport.send(*prepare(simple()))  # a new connection
    transport.close()
    assert sink.connections == 2


def test_nobody_listening_is_temporary() -> None:
    with pytest.raises(TemporaryFailure, match="cannot connect") as failure:
        SmtpTransport(f"smtp://127.0.0.1:{free_port()}?timeout=5").send(*prepare(simple()))
    assert failure.value.code == 0


def test_partial_refusal_still_sends_to_the_others(sink: SmtpSink, caplog: pytest.LogCaptureFixture) -> None:
    message = simple("a@example.com")
    message["Cc"] = "b@example.com"
    sink.refuse["b@example.com"] = "550 5.1.1 no such user"
    with SmtpTransport(sink.url) as transport:
        message_id = send(transport, message)
    assert sink.wait_for(1)[0].rcpt_tos == ["a@example.com"]
    assert message_id in caplog.text and "b@example.com" in caplog.text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.org", SmtpConfig("mail.example.org", 25)),
        ("smtps://u:p@mail.example.org", SmtpConfig("mail.example.org", 465, True, "off", "u", "p")),
        (
            "smtp://a%40b:p%3Aq@[::1]:587?starttls=required&timeout=5&helo=me.example.org",
            SmtpConfig("::1", 587, False, "required", "a@b", "p:q", 5.0, "", "me.example.org"),
        ),
    ],
)
def test_smtp_urls(url: str, expected: SmtpConfig) -> None:
    assert SmtpConfig.from_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.org",
        "smtp://",
        "smtp://mail.example.org:notaport",
        "smtp://mail.example.org?starttls=maybe",
        "smtps://mail.example.org?starttls=required",
        "smtp://mail.example.org?tls=yes",
        "smtp://user@mail.example.org",
        "smtp://mail.example.org?timeout=soon",
    ],
)
def test_bad_smtp_urls(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        SmtpConfig.from_url(url)
    assert "FEEDSVC_SMTP_URL" in str(error.value)


def test_password_never_goes_in_clear_to_a_remote_host() -> None:
    assert SmtpConfig("127.0.0.1", 25).loopback and SmtpConfig("::1", 25).loopback
    assert SmtpConfig("localhost", 25).loopback
    assert not SmtpConfig("mail.example.org", 25).loopback


def test_plain_auth_on_loopback() -> None:
    with SmtpSink(users={"u": "p"}) as authed:
        with SmtpTransport(f"smtp://u:p@127.0.0.1:{authed.port}?starttls=off") as transport:
            transport.send(*prepare(simple()))
        assert authed.wait_for(1)[0].auth_user == "u"


# --------------------------------------------------------------------------------------- envelope


def test_envelope_completes_the_message() -> None:
    message = simple("a@example.com")
    message["Bcc"] = "hidden@example.com"
    env, data = prepare(message)
    assert env.sender == "sender@example.org"
    assert env.recipients == ("a@example.com", "hidden@example.com")
    assert env.message_id.endswith("@example.org>") and message["Date"] is not None
    assert b"hidden@example.com" not in data and message["Bcc"] is None


def test_envelope_needs_a_sender_and_a_recipient() -> None:
    with pytest.raises(ValueError, match="recipient"):
        prepare(simple(to=""))
    message = simple()
    del message["From"]
    with pytest.raises(ValueError, match="From"):
        prepare(message)


# --------------------------------------------------------------------------------------- mail dir


def test_mail_dir_writes_the_message_whole(tmp_path: Path, message: EmailMessage) -> None:
    folder = tmp_path / "mail"
    transport = MailDirTransport(folder)
    message_id = send(transport, message)
    [written] = list(folder.iterdir())
    assert written == transport.path_for(message_id) and written.suffix == ".eml"
    assert written.read_bytes() == mail_message.serialise(message)
    parsed = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == message_id
    transport.send(*prepare(message))  # a retry of the same message replaces its file
    assert list(folder.iterdir()) == [written]


def test_mail_dir_leaves_nothing_half_written(
    tmp_path: Path, message: EmailMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_rename(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_rename)
    with pytest.raises(TemporaryFailure, match="No space left"):
        MailDirTransport(tmp_path).send(*prepare(message))
    assert list(tmp_path.iterdir()) == []


def test_open_transport_follows_the_settings(tmp_path: Path, sink: SmtpSink, root: Path) -> None:
    env = {"FEEDSVC_VAR_DIR": str(tmp_path), "FEEDSVC_SECRET_KEY": "test"}
    settings = load_settings(root / "feedsvc.toml", env=env)
    folder_transport = open_transport(settings)
    assert isinstance(folder_transport, MailDirTransport) and folder_transport.folder == tmp_path / "mail"
    settings = load_settings(root / "feedsvc.toml", env={**env, "FEEDSVC_SMTP_URL": sink.url})
    smtp_transport = open_transport(settings)
    assert isinstance(smtp_transport, SmtpTransport)
    smtp_transport.send(*prepare(simple()))
    smtp_transport.close()
    assert len(sink.wait_for(1)) == 1
