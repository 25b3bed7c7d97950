"""Fixtures for the newsletter email tests: one reader's links and a hostile issue (the seed: tests/conftest.py)."""

from __future__ import annotations

import pytest
from email_support import HOSTILE, MANAGE, UNSUBSCRIBE

from feedsvc.config import Publication
from feedsvc.content.model import Issue
from feedsvc.content.reader import parse_bytes
from feedsvc.mail import message as mail_message


@pytest.fixture
def links() -> mail_message.Links:
    return mail_message.Links(manage=MANAGE, unsubscribe=UNSUBSCRIBE)


@pytest.fixture(scope="session")
def hostile(publication: Publication) -> Issue:
    return parse_bytes(HOSTILE.encode(), publication, source="hostile.md")
