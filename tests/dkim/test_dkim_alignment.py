"""DMARC relaxed alignment of the DKIM domain and the envelope domain with the From domain, and Feedback-ID."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import pytest

from feedsvc.config import Publication
from feedsvc.content.reader import parse
from feedsvc.mail import dkim, newsletter
from feedsvc.mail import message as mail_message


@pytest.mark.parametrize(
    ("domain", "from_domain", "aligned"),
    [
        ("example.org", "example.org", True),
        ("mail.example.org", "example.org", True),
        ("example.org", "news.example.org", True),
        ("mail.example.org", "news.example.org", True),  # relaxed: the same organisational domain
        ("example.net", "example.org", False),
        ("example.co.uk", "other.co.uk", False),  # a public suffix of two labels is no organisation
        ("mail.example.co.uk", "example.co.uk", True),
        ("MAIL.Example.ORG.", "example.org", True),
    ],
)
def test_relaxed_alignment(domain: str, from_domain: str, aligned: bool) -> None:
    assert dkim.aligned(domain, from_domain) is aligned


def test_alignment_problems_name_the_domains(publication: Publication) -> None:
    good = replace(publication, dkim_domain="mail.feedsvc.example.org")
    assert dkim.alignment_problems(good, "bounces.feedsvc.example.org") == []
    bad = replace(publication, dkim_domain="relay.example.net")
    [dkim_problem, spf_problem] = dkim.alignment_problems(bad, "bounce.example.com")
    assert "relay.example.net does not align with the From domain feedsvc.example.org" in dkim_problem
    assert "DKIM cannot make DMARC pass" in dkim_problem
    assert "envelope (Return-Path) domain bounce.example.com" in spf_problem and "SPF" in spf_problem


def test_every_issue_mail_has_a_feedback_id_without_personal_data(publication: Publication, seed_path: Path) -> None:
    issue = parse(seed_path, publication)
    rendered = newsletter.render(issue, None, publication, lang="en")
    values = set()
    for n in range(2):
        links = mail_message.Links(f"https://n.example.org/manage/tok{n}", f"https://n.example.org/unsubscribe/tok{n}")
        message = mail_message.build_message(rendered, f"reader{n}@example.org", links, publication)
        data = mail_message.serialise(message)
        [line] = [x for x in data.split(b"\r\n") if x.startswith(b"Feedback-ID:")]  # one line, never encoded
        values.add(line)
        assert b"reader" not in line and b"tok" not in line
    assert values == {b"Feedback-ID: 398:s3f.en:newsletter:feedsvc.example.org"}  # all six sections
    signed_by = replace(publication, dkim_domain="mail.feedsvc.example.org")
    two = dataclasses.replace(rendered, sections=("research", "industry"), lang="zh-CN")
    value = mail_message.feedback_id(two, mail_message.list_id(signed_by), signed_by)
    assert value == "398:s21.zh-CN:newsletter:mail.feedsvc.example.org"  # the first and the sixth
    odd = dataclasses.replace(rendered, number=1, sections=("a:b",), lang="x y")
    assert mail_message.feedback_id(odd, "N <l.example.org>", publication).count(":") == 3
