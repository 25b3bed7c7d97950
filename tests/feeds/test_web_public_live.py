"""The real thing: `feedsvc build` and `feedsvc serve` as `make run` runs them, read by newsboat."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest

ROOT = Path(__file__).resolve().parents[2]
FEEDSVC = Path(sys.executable).with_name("feedsvc")


@dataclass
class LiveServer:
    url: str
    log: Path
    site_dir: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`feedsvc build` (issues/ of the repository, defaults otherwise) then `feedsvc serve` on a free port."""
    tmp = tmp_path_factory.mktemp("live")
    port = _free_port()
    env = {
        **os.environ,
        "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml"),
        "FEEDSVC_VAR_DIR": str(tmp / "var"),
        "FEEDSVC_SITE_DIR": str(tmp / "var" / "site"),
        "FEEDSVC_SECRET_KEY": "test-secret",
        "FEEDSVC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("FEEDSVC_ISSUES_DIR", None)
    built = subprocess.run([FEEDSVC, "build"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    log = tmp / "server.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            [FEEDSVC, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=sink, stderr=sink
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None, log.read_text("utf-8", "replace")
                assert time.monotonic() < deadline, "feedsvc serve did not answer within 30 s"
                time.sleep(0.1)
        yield LiveServer(url, log, tmp / "var" / "site")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_make_run_serves_the_technology_feed_with_4_entries(live: LiveServer) -> None:
    with urllib.request.urlopen(f"{live.url}/feeds/technology.atom", timeout=10) as response:
        assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
        parsed = feedparser.parse(response.read())
    assert parsed.bozo == 0
    assert len(parsed.entries) == 4
    assert parsed.feed.links[0].href == f"{live.url}/feeds/technology.atom"


@pytest.mark.parametrize("feed", ["technology", "all"])
def test_newsboat_reloads_add_nothing_the_second_time(
    live: LiveServer, tmp_path: Path, feed: str, require_tool: Callable[[str], str]
) -> None:
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
