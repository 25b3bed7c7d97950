"""Fixtures for the newsletter email tests: the parsed seed, one reader's links, a hostile issue."""

from __future__ import annotations

from pathlib import Path

import pytest
from email_support import HOSTILE, MANAGE, UNSUBSCRIBE

from feedsvc import emails
from feedsvc.config import Publication
from feedsvc.issues import Issue, parse, parse_bytes


@pytest.fixture(scope="session")
def seed(publication: Publication, seed_path: Path) -> Issue:
    return parse(seed_path, publication)


@pytest.fixture
def links() -> emails.Links:
    return emails.Links(manage=MANAGE, unsubscribe=UNSUBSCRIBE)


@pytest.fixture(scope="session")
def hostile(publication: Publication) -> Issue:
    return parse_bytes(HOSTILE.encode(), publication, source="hostile.md")
