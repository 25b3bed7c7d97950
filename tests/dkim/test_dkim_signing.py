"""Signing the built message: both signatures verify with dkimpy against the published keys, and any change
to a signed header or the body breaks them."""

from __future__ import annotations

from dataclasses import replace
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import pytest
from dkim_support import replace_header, signatures, verify_all
from dns_support import ZoneServer

from feedsvc.config import Publication
from feedsvc.content.reader import parse
from feedsvc.mail import dkim, newsletter
from feedsvc.mail import message as mail_message
from feedsvc.mail.dns_records import records, zone_line
from feedsvc.mail.signing import SigningTransport
from feedsvc.mail.transport import MailDirTransport, prepare

LINKS = mail_message.Links("https://news.example.org/manage/t0k3n", "https://news.example.org/unsubscribe/t0k3n")


@pytest.fixture
def published(dkim_publication: Publication, signer: dkim.Signer) -> ZoneServer:
    """A DNS server on loopback answering with the records `feedsvc dns` prints for this signer."""
    zone = "\n".join(zone_line(r) for r in records(dkim_publication, signer.keys))
    with ZoneServer(zone) as server:
        yield server


@pytest.fixture
def built(dkim_publication: Publication, seed_path: Path) -> bytes:
    issue = parse(seed_path, dkim_publication)
    rendered = newsletter.render(issue, ["industry", "research"], dkim_publication)
    message = mail_message.build_message(
        rendered, "reader@example.org", LINKS, dkim_publication, message_id="<1@x.org>"
    )
    return mail_message.serialise(message)


def test_both_signatures_verify_against_the_published_keys(
    built: bytes, signer: dkim.Signer, published: ZoneServer
) -> None:
    data = signer.sign(built)
    assert verify_all(data, published.dkim_dnsfunc) == [("rsa-sha256", True), ("ed25519-sha256", True)]
    rsa, ed = signatures(data)
    for sig, selector in ((rsa, "s1"), (ed, "s1-ed25519")):
        assert (sig["d"], sig["s"], sig["c"]) == ("feedsvc.example.org", selector, "relaxed/relaxed")
        assert sig["h"].split(":") == [
            *("from", "to", "subject", "date", "message-id", "mime-version", "content-type", "reply-to"),
            *("list-id", "list-unsubscribe", "list-unsubscribe-post", "feedback-id", "from"),  # From twice: oversigned
        ]
    assert data.endswith(built)  # the message itself is untouched, the signatures go on top


def test_the_rsa_key_is_2048_bits(signer: dkim.Signer) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    assert load_pem_private_key(signer.keys[0].private, None).key_size == 2048  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (b"Subject", b"=?utf-8?b?5pS55LqG?="),
        (b"To", b"someone-else@example.org"),
        (b"From", b"mallory@example.net"),
        (b"Date", b"Mon, 1 Jan 2024 00:00:00 +0000"),
        (b"Message-ID", b"<other@x.org>"),
        (b"List-Unsubscribe", b"<https://evil.example.net/unsubscribe>"),
        (b"List-Unsubscribe-Post", b"List-Unsubscribe=Nothing"),
        (b"List-Id", b"other <other.example.net>"),
        (b"Feedback-ID", b"1:2:3:evil.example.net"),
        (b"Content-Type", b"text/plain"),
    ],
)
def test_changing_a_signed_header_breaks_both_signatures(
    built: bytes, signer: dkim.Signer, published: ZoneServer, header: bytes, value: bytes
) -> None:
    data = replace_header(signer.sign(built), header, value)
    assert verify_all(data, published.dkim_dnsfunc) == [("rsa-sha256", False), ("ed25519-sha256", False)]


def test_an_added_from_or_list_header_breaks_both_signatures(
    built: bytes, signer: dkim.Signer, published: ZoneServer
) -> None:
    data = signer.sign(built)
    head, _, body = data.partition(b"\r\n\r\n")
    for added in (b"From: mallory@example.net", b"Reply-To: mallory@example.net", b"List-Id: x <x.example.net>"):
        below = head + b"\r\n" + added + b"\r\n\r\n" + body
        assert verify_all(below, published.dkim_dnsfunc) == [("rsa-sha256", False), ("ed25519-sha256", False)]
    # A From put above the signed one, as an attacker prepending headers would: the second `from` in h=
    # covers it for every verifier (dkimpy also adds extra From fields on its own, bug #644046).
    above = data.replace(b"\r\nFrom: ", b"\r\nFrom: mallory@example.net\r\nFrom: ", 1)
    assert above.count(b"\r\nFrom: ") == 2
    assert verify_all(above, published.dkim_dnsfunc) == [("rsa-sha256", False), ("ed25519-sha256", False)]


def test_changing_the_body_breaks_both_signatures(built: bytes, signer: dkim.Signer, published: ZoneServer) -> None:
    data = signer.sign(built)
    head, _, body = data.partition(b"\r\n\r\n")
    line = body.splitlines()[5]
    changed = head + b"\r\n\r\n" + body.replace(line, line[:-4] + b"AAAA", 1)
    assert changed != data
    assert verify_all(changed, published.dkim_dnsfunc) == [("rsa-sha256", False), ("ed25519-sha256", False)]
    assert signer.verifies(data) and not signer.verifies(changed)  # the start-up trial's own check
    # Relaxed canonicalisation: what a relay may do to whitespace does not break it.
    padded = head + b"\r\n\r\n" + body.replace(b"\r\n", b"  \r\n", 3) + b"\r\n\r\n"
    assert verify_all(padded, published.dkim_dnsfunc) == [("rsa-sha256", True), ("ed25519-sha256", True)]


def test_cjk_subject_from_name_and_body_verify(
    dkim_publication: Publication, signer: dkim.Signer, published: ZoneServer, tmp_path: Path
) -> None:
    message = EmailMessage(policy=mail_message.POLICY)
    message["From"] = Address("中国网络视听协会 行业动态周报", addr_spec="newsletter@feedsvc.example.org")
    message["To"] = Address("读者 张三", addr_spec="reader@example.org")
    message["Subject"] = "行业动态周报 第398期（2024年1月22日）：网络视听、短剧与微短剧的新规"
    message.set_content("正文：国家广播电视总局发布新规。\n" * 40, cte="8bit")  # raw UTF-8 on the wire
    transport = SigningTransport(MailDirTransport(tmp_path / "mail"), signer)
    envelope, built = prepare(message)
    transport.send(envelope, built)
    data = transport.path_for(envelope.message_id).read_bytes()
    assert "国家广播电视总局".encode() in data and b"=?utf-8?" in data
    assert verify_all(data, published.dkim_dnsfunc) == [("rsa-sha256", True), ("ed25519-sha256", True)]


def test_every_recipient_copy_verifies(
    dkim_publication: Publication, seed_path: Path, signer: dkim.Signer, published: ZoneServer
) -> None:
    issue = parse(seed_path, dkim_publication)
    rendered = newsletter.render(issue, None, dkim_publication)
    copies = []
    for n in range(3):
        links = mail_message.Links(f"https://news.example.org/manage/{n}", f"https://news.example.org/unsubscribe/{n}")
        message = mail_message.build_message(rendered, f"r{n}@example.org", links, dkim_publication)
        copies.append(signer.sign(mail_message.serialise(message)))
    assert len({signatures(c)[0]["bh"] for c in copies}) == 3  # each body (its own links) hashed on its own
    for data in copies:
        assert verify_all(data, published.dkim_dnsfunc) == [("rsa-sha256", True), ("ed25519-sha256", True)]


def test_rsa_alone_signs_once(dkim_publication: Publication, key_files: dict[str, Path], built: bytes) -> None:
    only_rsa = dkim.Signer.from_environment(dkim_publication, {dkim.KEY_FILE: str(key_files["s1"])})
    assert only_rsa is not None
    assert [s["a"] for s in signatures(only_rsa.sign(built))] == ["rsa-sha256"]


def test_a_wrong_published_key_fails_verification(
    dkim_publication: Publication, key_files: dict[str, Path], built: bytes, signer: dkim.Signer
) -> None:
    other = dkim.Signer.from_environment(replace(dkim_publication), {dkim.KEY_FILE: str(key_files["s2"])})
    assert other is not None
    zone = "\n".join(zone_line(r) for r in records(dkim_publication, other.keys))  # s1 published with s2's key
    with ZoneServer(zone) as server:
        assert verify_all(signer.sign(built), server.dkim_dnsfunc)[0] == ("rsa-sha256", False)


MESSAGES = {
    "plain": b"From: a@feedsvc.example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n",
    "whitespace": (
        b"From: a@feedsvc.example.org\r\nTo:  b@example.org \r\nSubject:\tlots   of\r\n  space\r\n\r\n"
        b"a  b\t c \r\n\r\n  \r\nline\t\r\n\r\n\r\n"
    ),
    "bare line feeds": b"From: a@feedsvc.example.org\nTo: b@example.org\nSubject: lf\n\nbody\nmore\n\n",
    "bare line feeds in the body": b"From: a@feedsvc.example.org\r\nTo: b@example.org\r\n\r\nbody\nmore\r\n",
    "empty body": b"From: a@feedsvc.example.org\r\nTo: b@example.org\r\nSubject: nothing\r\n\r\n",
    "no body": b"From: a@feedsvc.example.org\r\nTo: b@example.org\r\nSubject: nothing\r\n",
    "cjk 8bit": "From: 协会 <a@feedsvc.example.org>\r\nTo: b@example.org\r\nSubject: 中文\r\n\r\n正文  中\r\n".encode(),
}


@pytest.mark.parametrize("name", [*MESSAGES, "built"])
def test_signatures_are_byte_for_byte_what_dkimpy_writes(
    name: str, built: bytes, signer: dkim.Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signer uses OpenSSL for the private-key step; everything else, and the result, is dkimpy's."""
    import time

    import dkim as dkimpy

    data = built if name == "built" else MESSAGES[name]
    monkeypatch.setattr(time, "time", lambda: 1767225600.5)
    reference = b"".join(
        dkimpy.DKIM(data).sign(
            key.selector.encode(),
            signer.domain.encode(),
            key.private,
            signature_algorithm=key.algorithm.encode(),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(dkim.INCLUDE),
        )
        for key in signer.keys
    )
    assert signer.sign(data) == reference + data
    assert signer.verifies(signer.sign(data))
