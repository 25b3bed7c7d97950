"""WebSub publishing against a recording hub process on loopback: exactly the changed feeds, once each, in
the background; a hub that is down neither fails nor delays a build, and hears the pings later."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from lxml import etree

from feedsvc.config import Publication, Settings, load_publication
from feedsvc.site import websub
from feedsvc.site.build import build
from feedsvc.site.feeds import feed_names
from feedsvc.web import create_app

HUB_SCRIPT = Path(__file__).with_name("recording_hub.py")
ROOT = Path(__file__).resolve().parents[2]
ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass
class Hub:
    """A running recording hub: its URL and what it has heard so far."""

    url: str
    log: Path

    def heard(self) -> list[str]:
        if not self.log.exists():
            return []
        lines = [json.loads(line) for line in self.log.read_text("utf-8").splitlines()]
        assert all(told["mode"] == "publish" for told in lines), lines
        return [told["url"] for told in lines]

    def wait_for(self, count: int, seconds: float = 20.0) -> list[str]:
        """What the hub heard once it has heard `count` pings (and a moment more, to catch extra ones)."""
        deadline = time.monotonic() + seconds
        while len(self.heard()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        return self.heard()


def _start_hub(tmp: Path, port: int = 0) -> tuple[Hub, subprocess.Popen[str]]:
    log = tmp / f"hub-{time.monotonic_ns()}.log"
    process = subprocess.Popen(
        [sys.executable, str(HUB_SCRIPT), str(port), str(log)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    bound = int(process.stdout.readline())
    return Hub(f"http://127.0.0.1:{bound}/hub", log), process


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    running, process = _start_hub(tmp_path)
    try:
        yield running
    finally:
        process.terminate()
        process.wait(timeout=10)


def _build(site_settings: Settings, publication: Publication) -> float:
    start = time.perf_counter()
    build(site_settings.issues_dir, site_settings.site_dir, publication, site_settings.templates_dir)
    return time.perf_counter() - start


def _topics(publication: Publication, *names: str) -> Counter[str]:
    return Counter(f"{publication.base_url}/feeds/{n}.{ext}" for n in names for ext in ("atom", "json"))


def _drained(site_settings: Settings, seconds: float = 20.0) -> None:
    """Wait until the ping queue beside the site is empty."""
    queue = websub.queue_path(site_settings.site_dir)
    deadline = time.monotonic() + seconds
    while json.loads(queue.read_text("utf-8"))["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(queue.read_text("utf-8"))["pending"] == []


def test_the_hub_hears_exactly_the_changed_feeds_once_each(site_settings: Settings, hub: Hub) -> None:
    publication = replace(site_settings.publication, websub_hubs=(hub.url,))
    _build(site_settings, publication)
    first = hub.wait_for(16)
    assert Counter(first) == _topics(publication, *feed_names(publication))  # a first build changes every feed
    (site_settings.issues_dir / "2024-01-29-399.md").write_text(
        (ROOT / "issues" / "2024-01-22-398.md")
        .read_text("utf-8")
        .replace("第 398 期", "第 399 期")
        .replace("2024 年 1 月 22 日", "2024 年 1 月 29 日"),
        "utf-8",
    )
    _build(site_settings, publication)
    heard = hub.wait_for(len(first) + 16)
    assert Counter(heard[len(first) :]) == _topics(publication, *feed_names(publication))
    _drained(site_settings)
    _build(site_settings, publication)  # nothing changed: nothing to tell
    assert hub.wait_for(len(heard) + 1, seconds=2.0) == heard


def test_only_the_feeds_an_issue_touches_are_pinged(site_settings: Settings, hub: Hub, write_issue) -> None:  # type: ignore[no-untyped-def]
    publication = replace(site_settings.publication, websub_hubs=(hub.url,))
    _build(site_settings, publication)
    before = hub.wait_for(16)
    write_issue(399, dt.date(2024, 1, 29), {"技术": [("新的一条技术动态", "正文。")]})
    _build(site_settings, publication)
    heard = hub.wait_for(len(before) + 6)
    assert Counter(heard[len(before) :]) == _topics(publication, "technology", "all", "issues")


def test_a_down_hub_never_fails_or_delays_a_build_and_hears_later(
    site_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(websub.RETRY_ENV, "0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5")
    black_hole = socket.socket()  # takes connections and never answers: a ping in the build would hang 10 s
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(64)
    port = black_hole.getsockname()[1]
    without = _build(site_settings, site_settings.publication)
    (site_settings.site_dir.parent / "other").mkdir()
    elsewhere = site_settings.with_overrides(site_dir=site_settings.site_dir.parent / "other" / "site")
    with_hub = _build(elsewhere, replace(site_settings.publication, websub_hubs=(f"http://127.0.0.1:{port}/hub",)))
    assert with_hub < without + 1.0  # the build does not wait for the hub
    pending = json.loads(websub.queue_path(elsewhere.site_dir).read_text("utf-8"))["pending"]
    assert len(pending) == 16
    black_hole.close()  # the hub comes back
    hub, process = _start_hub(tmp_path, port)
    try:
        assert Counter(hub.wait_for(16, seconds=40)) == _topics(
            site_settings.publication, *feed_names(site_settings.publication)
        )
        _drained(elsewhere)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_pings_left_by_a_restart_go_out_when_the_web_app_starts(site_settings: Settings, hub: Hub) -> None:
    queue = websub.queue_path(site_settings.site_dir)
    topic = f"{site_settings.publication.base_url}/feeds/all.atom"
    websub.enqueue(queue, [hub.url], [topic], time.time())
    create_app(site_settings, TESTING=True)
    assert hub.wait_for(1) == [topic]
    _drained(site_settings)


def test_failed_pings_back_off_then_give_up_and_a_newer_ping_is_not_lost(tmp_path: Path) -> None:
    queue = tmp_path / ".site.websub.json"
    websub.enqueue(queue, ["http://hub"], ["http://site/feeds/all.atom"], now=100.0)
    assert websub.deliver_due(queue, 100.0, lambda hub, topic: False, delays=(10.0, 40.0)) == 10.0
    assert websub.deliver_due(queue, 105.0, lambda hub, topic: True, delays=(10.0, 40.0)) == 5.0  # not due yet
    assert websub.deliver_due(queue, 110.0, lambda hub, topic: False, delays=(10.0, 40.0)) == 40.0
    assert websub.deliver_due(queue, 150.0, lambda hub, topic: False, delays=(10.0, 40.0)) is None  # given up

    def build_meanwhile(hub: str, topic: str) -> bool:
        websub.enqueue(queue, [hub], [topic], now=200.0)  # a build changes the feed again during the ping
        return True

    websub.enqueue(queue, ["http://hub"], ["http://site/feeds/all.atom"], now=200.0)
    assert websub.deliver_due(queue, 200.0, build_meanwhile) == 0.0  # the newer ping is still queued
    assert websub.deliver_due(queue, 200.0, lambda hub, topic: True) is None


def test_every_feed_carries_rel_hub_and_rel_self(site_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(websub, "start_drainer", lambda queue: None)  # these hubs do not exist
    hubs = ("https://hub-one.example.org/", "https://hub-two.example.org/")
    publication = replace(site_settings.publication, websub_hubs=hubs, feed_limit=5)
    build(site_settings.issues_dir, site_settings.site_dir, publication, site_settings.templates_dir)
    documents = list((site_settings.site_dir.resolve() / "feeds").rglob("*.atom"))
    assert any("archive" in str(path) for path in documents)
    for path in documents:
        root = etree.parse(str(path)).getroot()
        assert [link.get("href") for link in root.findall(f"{ATOM}link[@rel='hub']")] == list(hubs)
        [own] = root.findall(f"{ATOM}link[@rel='self']")
        assert own.get("href") == f"{publication.base_url}/{path.relative_to(site_settings.site_dir.resolve())}"
    for path in (site_settings.site_dir.resolve() / "feeds").rglob("*.json"):
        assert json.loads(path.read_bytes())["hubs"] == [{"type": "WebSub", "url": hub} for hub in hubs]


def test_websub_hubs_and_the_older_websub_hub_are_both_read(tmp_path: Path) -> None:
    text = (ROOT / "feedsvc.toml").read_text("utf-8")
    assert "websub_hubs = []" in text
    config = tmp_path / "feedsvc.toml"
    config.write_text(
        text.replace(
            "websub_hubs = []",
            'websub_hubs = ["https://a.example/", "https://b.example/"]\nwebsub_hub = "https://old.example/"',
        ),
        "utf-8",
    )
    assert load_publication(config).hubs == ("https://a.example/", "https://b.example/", "https://old.example/")
    config.write_text(text.replace("websub_hubs = []", 'websub_hub = "https://old.example/"'), "utf-8")
    assert load_publication(config).hubs == ("https://old.example/",)
    config.write_text(text.replace("websub_hubs = []", 'websub_hubs = ["ftp://nope"]'), "utf-8")
    with pytest.raises(Exception, match="not an absolute http"):
        load_publication(config)
