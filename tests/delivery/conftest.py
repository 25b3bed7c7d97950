"""Fixtures for delivery tests: the seed issue, parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedsvc.config import Publication
from feedsvc.content.reader import Issue, parse


@pytest.fixture
def seed_issue(seed_path: Path, publication: Publication) -> Issue:
    return parse(seed_path, publication)
