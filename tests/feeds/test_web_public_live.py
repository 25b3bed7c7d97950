"""The real thing: `feedsvc build` and `feedsvc serve` as `make run` runs them, read by newsboat."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest


def test_make_run_serves_the_technology_feed_with_4_entries(live) -> None:  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(f"{live.url}/feeds/technology.atom", timeout=10) as response:
        assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
        parsed = feedparser.parse(response.read())
    assert parsed.bozo == 0
    assert len(parsed.entries) == 4
    assert parsed.feed.links[0].href == f"{live.url}/feeds/technology.atom"


@pytest.mark.parametrize("feed", ["technology", "all"])
def test_newsboat_reloads_add_nothing_the_second_time(
    live, tmp_path: Path, feed: str, require_tool: Callable[[str], str]
) -> None:  # type: ignore[no-untyped-def]
    newsboat = require_tool("newsboat")
    feed_url = f"{live.url}/feeds/{feed}.atom"
    urls, cache, config = tmp_path / "urls", tmp_path / "cache.db", tmp_path / "config"
    urls.write_text(feed_url + "\n", "utf-8")
    config.write_text("reload-threads 1\ndownload-timeout 20\n", "utf-8")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}

    def reload() -> int:
        command = [newsboat, "-x", "reload", "-u", str(urls), "-c", str(cache), "-C", str(config)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        with sqlite3.connect(cache) as db:
            return db.execute("SELECT count(*) FROM rss_item WHERE feedurl = ?", (feed_url,)).fetchone()[0]

    with urllib.request.urlopen(feed_url, timeout=10) as response:
        entries = feedparser.parse(response.read()).entries
    first = reload()
    assert first == len(entries) == {"technology": 4, "all": 27}[feed]
    assert reload() == first  # the second reload adds nothing
    with sqlite3.connect(cache) as db:
        guids = {row[0] for row in db.execute("SELECT guid FROM rss_item WHERE feedurl = ?", (feed_url,))}
        [(etag,)] = db.execute("SELECT etag FROM rss_feed WHERE rssurl = ?", (feed_url,)).fetchall()
    assert guids == {entry.id for entry in entries}
    assert etag  # newsboat keeps our ETag from the second reload on, and sends it next time
    full_before, not_modified_before = _answers(live.log, feed, "200"), _answers(live.log, feed, "304")
    assert reload() == first
    assert _answers(live.log, feed, "304") > not_modified_before  # the third reload was answered 304 …
    assert _answers(live.log, feed, "200") == full_before  # … and never with the whole feed


def _answers(log: Path, feed: str, status: str) -> int:
    """How many times the server's access log (possibly coloured) shows `status` for a GET of the feed."""
    lines = log.read_text("utf-8", "replace").splitlines()
    return sum(1 for line in lines if f"GET /feeds/{feed}.atom " in line and line.rstrip().endswith(f"{status} -"))
