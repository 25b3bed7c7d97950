"""build_message(): structure, headers, personalisation and header safety, checked on the parsed-back bytes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from collections.abc import Callable
from email import message_from_bytes, policy
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest
from email_support import MANAGE, UNSUBSCRIBE, parse_back, parts

from feedsvc.config import Publication
from feedsvc.content.model import Issue
from feedsvc.mail import message as mail_message
from feedsvc.mail import newsletter


@pytest.fixture
def rendered(seed: Issue, publication: Publication) -> mail_message.RenderedEmail:
    return newsletter.render(seed, "industry,technology", publication)


def raw_headers(data: bytes) -> list[str]:
    """The header lines (continuations kept separate) of serialised message bytes."""
    return data.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")


def header_block(data: bytes, name: str) -> str:
    """One header as it is on the wire, folded lines included."""
    text = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    match = re.search(rf"^{name}:.*?(?=\r\n\S)", text, re.M | re.S | re.I)
    assert match, name
    return match.group(0)


def test_multipart_alternative_text_then_html_utf8(
    rendered: mail_message.RenderedEmail, links: mail_message.Links, publication: Publication
) -> None:
    message = parse_back(mail_message.build_message(rendered, "reader@example.com", links, publication))
    assert message.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    for part in message.iter_parts():
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "base64"
    text, html = parts(message)
    assert "第五批国家文化和科技融合示范基地名单公布" in text and "第五批国家文化和科技融合示范基地名单公布" in html


def test_headers(rendered: mail_message.RenderedEmail, links: mail_message.Links, publication: Publication) -> None:
    when = dt.datetime(2024, 1, 22, 8, 0, tzinfo=dt.UTC)
    built = mail_message.build_message(rendered, "reader@example.com", links, publication, date=when)
    data = mail_message.serialise(built)
    message = parse_back(built)
    assert message["Subject"] == "行业动态周报 第398期（2024年1月22日）"
    assert message["From"].addresses[0].display_name == "行业动态周报"
    assert message["From"].addresses[0].addr_spec == "newsletter@feedsvc.example.org"
    assert message["To"].addresses[0].addr_spec == "reader@example.com"
    assert parsedate_to_datetime(message["Date"]) == when
    assert re.fullmatch(r"<[^<>@\s]+@feedsvc\.example\.org>", message["Message-ID"])
    assert message["List-Id"] == "行业动态周报 <newsletter.feedsvc.example.org>"
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Archive"] == "<http://127.0.0.1:8000/issues/>"
    assert message["List-Post"] == "NO"
    assert message["Reply-To"] is None
    # on the wire: ASCII only, the subject and names as RFC 2047 encoded words, lines folded
    assert data.split(b"\r\n\r\n", 1)[0].isascii()
    assert header_block(data, "Subject").startswith("Subject: =?utf-8?")
    assert all(len(line) <= 78 for line in raw_headers(data))


def test_list_unsubscribe_with_mailto_and_a_long_url_stays_a_url(
    rendered: mail_message.RenderedEmail, publication: Publication
) -> None:
    long_link = "https://news.example.org/unsubscribe/" + "Ab3-_" * 40
    links = mail_message.Links(manage="https://news.example.org/manage/x", unsubscribe=long_link)
    pub = dataclasses.replace(
        publication, unsubscribe_mailto="unsubscribe@feedsvc.example.org", reply_to="editors@example.org"
    )
    data = mail_message.serialise(mail_message.build_message(rendered, "reader@example.com", links, pub))
    block = header_block(data, "List-Unsubscribe")
    # the stock policy would have turned the long URL into =?utf-8?q?=3Chttps...?=, which no client reads
    assert "=?" not in block
    assert f"<{long_link}>," in block
    assert "<mailto:unsubscribe@feedsvc.example.org?subject=unsubscribe>" in block
    message = parse_back(mail_message.build_message(rendered, "reader@example.com", links, pub))
    assert message["List-Unsubscribe"] == (
        f"<{long_link}>, <mailto:unsubscribe@feedsvc.example.org?subject=unsubscribe>"
    )
    assert message["Reply-To"].addresses[0].addr_spec == "editors@example.org"
    assert all(len(line) <= 998 for line in raw_headers(data))


def test_issue_subject_overrides(seed: Issue, publication: Publication, links: mail_message.Links) -> None:
    special = dataclasses.replace(seed, subject="年度特刊：2023 回顾")
    rendered = newsletter.render(special, "industry", publication)
    message = parse_back(mail_message.build_message(rendered, "reader@example.com", links, publication))
    assert message["Subject"] == "年度特刊：2023 回顾"


def test_placeholders_are_substituted_and_escaped(
    rendered: mail_message.RenderedEmail, links: mail_message.Links, publication: Publication
) -> None:
    address = "o'brien+news&more@example.com"
    text, html = parts(parse_back(mail_message.build_message(rendered, address, links, publication)))
    for placeholder in mail_message.PLACEHOLDERS:
        assert placeholder not in text and placeholder not in html
    assert f'href="{MANAGE}"' in html and f'href="{UNSUBSCRIBE}"' in html
    assert "o&#x27;brien+news&amp;more@example.com" in html
    assert address in text
    assert f"管理订阅：{MANAGE}" in text and f"退订：{UNSUBSCRIBE}" in text


def test_urls_with_query_strings_are_escaped_in_html(
    rendered: mail_message.RenderedEmail, publication: Publication
) -> None:
    links = mail_message.Links("https://n.example.org/manage/t?a=1&b=2", "https://n.example.org/unsubscribe/t?a=1&b=2")
    text, html = parts(parse_back(mail_message.build_message(rendered, "r@example.com", links, publication)))
    assert 'href="https://n.example.org/manage/t?a=1&amp;b=2"' in html
    assert "https://n.example.org/manage/t?a=1&b=2" in text


def test_message_id_can_be_given_for_retries(
    rendered: mail_message.RenderedEmail, links: mail_message.Links, publication: Publication
) -> None:
    message_id = mail_message.make_message_id(publication, "issue-398", "outbox", 4711)
    assert message_id == "<issue-398.outbox.4711@feedsvc.example.org>"
    message = mail_message.build_message(rendered, "r@example.com", links, publication, message_id=message_id)
    assert parse_back(message)["Message-ID"] == message_id
    assert mail_message.make_message_id(publication) != mail_message.make_message_id(publication)


def test_recipient_with_display_name(
    rendered: mail_message.RenderedEmail, links: mail_message.Links, publication: Publication
) -> None:
    message = parse_back(
        mail_message.build_message(rendered, Address("张三", addr_spec="zhang@example.com"), links, publication)
    )
    assert message["To"].addresses[0].display_name == "张三"
    assert "zhang@example.com" in parts(message)[0]


HOSTILE_HEADERS = "x\r\nBcc: victim@example.net\r\nX-Injected: yes"


def test_no_header_injection_through_names_or_subject(
    seed: Issue, publication: Publication, links: mail_message.Links
) -> None:
    evil_pub = dataclasses.replace(publication, from_name=HOSTILE_HEADERS, name="周报\nX-Injected: yes")
    evil_issue = dataclasses.replace(seed, subject=HOSTILE_HEADERS)
    rendered = newsletter.render(evil_issue, "industry", evil_pub)
    # Address() itself refuses CR and LF; other line separators it lets through are made spaces
    recipient = Address("x\u2028Bcc: victim@example.net\x85X-Injected: yes", addr_spec="reader@example.com")
    built = mail_message.build_message(rendered, recipient, links, evil_pub)
    data = mail_message.serialise(built)
    message = parse_back(built)
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert b"\r\nBcc:" not in data and b"\r\nX-Injected:" not in data
    assert message["Subject"] == "x Bcc: victim@example.net X-Injected: yes"
    assert message["From"].addresses[0].display_name == "x Bcc: victim@example.net X-Injected: yes"
    assert message["To"].addresses[0].display_name == "x Bcc: victim@example.net X-Injected: yes"
    assert [a.addr_spec for a in message["To"].addresses] == ["reader@example.com"]


@pytest.mark.parametrize(
    "address",
    [
        "reader@example.com\r\nBcc: victim@example.net",
        "reader@example.com\nBcc: victim@example.net",
        "reader@example.com, victim@example.net",
        "Reader <reader@example.com>",
        "reader@@example.com",
        "no-at-sign",
        "",
    ],
)
def test_bad_recipient_addresses_are_refused(
    address: str, rendered: mail_message.RenderedEmail, links: mail_message.Links, publication: Publication
) -> None:
    with pytest.raises(mail_message.EmailError):
        mail_message.build_message(rendered, address, links, publication)


@pytest.mark.parametrize(
    "url",
    [
        "https://news.example.org/unsubscribe/x\r\nBcc: victim@example.net",
        "https://news.example.org/unsubscribe/x>, <https://evil.example/",
        "javascript:alert(1)",
        "/unsubscribe/relative",
        "https://news.example.org/un subscribe",
        "https://news.example.org/退订",
    ],
)
def test_bad_links_are_refused(url: str) -> None:
    with pytest.raises(mail_message.EmailError):
        mail_message.Links(manage="https://news.example.org/manage/x", unsubscribe=url)


def test_list_headers_refuse_line_breaks_and_non_ascii() -> None:
    message = EmailMessage(policy=mail_message.POLICY)
    with pytest.raises(ValueError, match="linefeed"):
        message["List-Unsubscribe"] = "<https://a.example/>\r\nBcc: victim@example.net"
    with pytest.raises(mail_message.EmailError):
        message["List-Unsubscribe"] = "<https://a.example/>\x00"
    with pytest.raises(mail_message.EmailError):
        message["List-Id"] = "列表 <list.example.org>"


def generic_bytes(message: EmailMessage) -> bytes:
    """What the email package's own generator writes for `message`."""
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=mail_message.POLICY).flatten(message)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("recipient", "changes", "options"),
    [
        ("reader@example.com", {}, {}),
        (Address("张三", addr_spec="zhang@example.com"), {}, {}),
        (
            "a.very.long.local.part.for.testing.header.folding.of.addresses@subdomain.example.com",
            {"reply_to": "editors@example.org", "unsubscribe_mailto": "leave@feedsvc.example.org"},
            {"message_id": "<issue-398.row-77@feedsvc.example.org>"},
        ),
        (
            Address("Zoë O'Brien, Esq.", addr_spec="zoe@example.com"),
            {"from_name": "x\r\nBcc: victim@example.net", "name": "A Very Long Publication Name " * 3},
            {"date": dt.datetime(2024, 1, 22, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))},
        ),
    ],
)
def test_fast_serialisation_is_the_generators_bytes(
    seed: Issue, publication: Publication, recipient: object, changes: dict, options: dict
) -> None:
    pub = dataclasses.replace(publication, **changes)
    rendered = newsletter.render(seed, "industry,content", pub)
    long_link = "https://news.example.org/unsubscribe/" + "x" * 150
    links = mail_message.Links("https://news.example.org/manage/abc?x=1&y=2", long_link)
    message = mail_message.build_message(rendered, recipient, links, pub, **options)  # type: ignore[arg-type]
    fast = mail_message.serialise(message)
    assert fast == generic_bytes(message)
    assert parse_back(message)["List-Unsubscribe"].startswith(f"<{long_link}>")


def test_a_changed_message_is_written_by_the_generator(
    rendered: mail_message.RenderedEmail, links: mail_message.Links, publication: Publication
) -> None:
    def changed(change: Callable[[EmailMessage], object]) -> bytes:
        message = mail_message.build_message(rendered, "reader@example.com", links, publication)
        change(message)
        data = mail_message.serialise(message)
        assert data == generic_bytes(message)
        return data

    assert b"\r\nX-Campaign: spring\r\n" in changed(lambda m: m.__setitem__("X-Campaign", "spring"))
    assert b"\r\nList-Post:" not in changed(lambda m: m.__delitem__("List-Post"))
    assert changed(lambda m: m.replace_header("Subject", "Changed")).startswith(b"Subject: Changed\r\n")
    body = changed(lambda m: m.get_body(("plain",)).set_content("替换的正文"))  # type: ignore[union-attr]
    assert parts(message_from_bytes(body, policy=policy.default))[0].splitlines() == ["替换的正文"]  # type: ignore[arg-type]
    message = mail_message.build_message(rendered, "reader@example.com", links, publication)
    assert message.as_bytes(unixfrom=True, policy=mail_message.POLICY).startswith(b"From ")


def test_a_given_message_id_must_be_one(
    rendered: mail_message.RenderedEmail, links: mail_message.Links, publication: Publication
) -> None:
    for bad in ("no-brackets@example.org", "<a b@example.org>", "<x@example.org>\r\nBcc: v@example.net", "<@>"):
        with pytest.raises(mail_message.EmailError):
            mail_message.build_message(rendered, "r@example.com", links, publication, message_id=bad)


@pytest.mark.parametrize("sections", ["all", "research", "industry,people"])
def test_parts_are_exactly_what_set_content_makes_of_the_personalised_rendering(
    seed: Issue, publication: Publication, sections: str
) -> None:
    rendered = newsletter.render(seed, sections, publication)
    links = mail_message.Links(
        "https://n.example.org/manage/a?b=1&c=2", "https://n.example.org/unsubscribe/" + "z" * 90
    )
    recipient = "o'brien&co@example.com"
    message = mail_message.build_message(rendered, recipient, links, publication)
    personal = newsletter.personalise(rendered, recipient, links)
    reference = EmailMessage(policy=mail_message.POLICY)
    reference.set_content(personal.text, subtype="plain", charset="utf-8", cte="base64")
    reference.add_alternative(personal.html, subtype="html", charset="utf-8", cte="base64")
    for ours, theirs in zip(message.iter_parts(), reference.iter_parts(), strict=True):
        assert ours.get_payload() == theirs.get_payload()
        # set_content leaves a stray MIME-Version header on the first part; ours does not carry it
        assert list(ours.items()) == [(k, v) for k, v in theirs.items() if k != "MIME-Version"]
