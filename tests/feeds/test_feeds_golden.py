"""Golden files: the seed's feeds, byte for byte. Regenerate after a deliberate change with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/feeds/test_feeds_golden.py`` and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feedsvc.config import Publication
from feedsvc.content.model import Issue
from feedsvc.site.feeds import feed_names, render_feeds

GOLDEN = Path(__file__).resolve().parent / "golden"
NAMES = ("industry", "content", "technology", "capital", "people", "research", "all", "issues")


def test_golden_covers_every_feed(golden_publication: Publication) -> None:
    assert feed_names(golden_publication) == NAMES


@pytest.mark.parametrize("filename", [f"{name}.{ext}" for name in NAMES for ext in ("atom", "json")])
def test_seed_feed_matches_golden(filename: str, seed_issue: Issue, golden_publication: Publication) -> None:
    produced = render_feeds([seed_issue], golden_publication)[f"feeds/{filename}"]
    golden = GOLDEN / filename
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_bytes(produced)
    assert golden.is_file(), f"{golden} is missing: run with UPDATE_GOLDEN=1 and review it"
    assert produced == golden.read_bytes()
