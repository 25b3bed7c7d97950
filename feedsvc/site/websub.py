"""WebSub publishing: tell each hub which feeds a build changed, in the background, with retry and backoff.

A build never waits for a hub. It adds one ping per (hub, changed feed URL) to a small queue file beside
the site (``var/.site.websub.json`` for ``var/site``) and starts a drainer process (``python -m
feedsvc.site.websub <queue>``) that posts ``hub.mode=publish&hub.url=<feed>`` to each hub and exits when the
queue is empty. A ping that fails is tried again after 30 s, 2 min, 10 min, 1 h, 3 h and 12 h, then
dropped. The queue is a file, not the database, so it survives a restart: the next build, or the web app
starting, starts a drainer for what is left. One drainer runs at a time per site (an flock).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from feedsvc.config import Publication
from feedsvc.site.feeds import feed_names, site_url

RETRY_DELAYS = (30.0, 120.0, 600.0, 3600.0, 3 * 3600.0, 12 * 3600.0)
RETRY_ENV = "FEEDSVC_WEBSUB_RETRY"  # comma-separated seconds, for tests and impatient operators
TIMEOUT = 10.0
Poster = Callable[[str, str], bool]


def queue_path(site_dir: Path) -> Path:
    """The ping queue of the site at `site_dir`: a hidden file beside it."""
    site_dir = Path(os.path.abspath(site_dir))
    return site_dir.parent / f".{site_dir.name}.websub.json"


def changed_topics(changed: Iterable[str], publication: Publication) -> list[str]:
    """The self URLs of the subscription documents among the `changed` site paths (archives are not topics)."""
    documents = {f"feeds/{name}.{ext}" for name in feed_names(publication) for ext in ("atom", "json")}
    return [site_url(publication, "/" + path) for path in sorted(set(changed) & documents)]


def announce(site_dir: Path, changed: Iterable[str], publication: Publication) -> list[str]:
    """Queue a ping to every hub for each changed feed, and start the drainer; returns the topics queued.

    Never raises for a hub's sake and never waits for one."""
    if not publication.hubs:
        return []
    topics = changed_topics(changed, publication)
    queue = queue_path(site_dir)
    if enqueue(queue, publication.hubs, topics, time.time()):
        start_drainer(queue)
    return topics


def enqueue(queue: Path, hubs: Sequence[str], topics: Iterable[str], now: float) -> int:
    """Add a ping due now for each (hub, topic); a ping already queued is due now again, not doubled.

    Pings to hubs no longer configured are dropped. Returns how many pings are queued in all."""
    topics = list(topics)
    with _locked(queue):
        pending = [p for p in _load(queue) if p["hub"] in hubs]
        index = {(p["hub"], p["topic"]): p for p in pending}
        for hub in hubs:
            for topic in topics:
                ping = index.get((hub, topic))
                if ping is None:
                    ping = index[(hub, topic)] = {"hub": hub, "topic": topic, "attempts": 0, "seq": 0}
                    pending.append(ping)
                ping.update(due=now, seq=ping["seq"] + 1)
        _save(queue, pending)
        return len(pending)


def deliver_due(queue: Path, now: float, post: Poster, delays: Sequence[float] = RETRY_DELAYS) -> float | None:
    """Post every ping that is due, then record what happened; returns seconds until the next is due, or None
    when the queue is empty. The queue is not locked while posting, so a build can add pings meanwhile."""
    with _locked(queue):
        due = [dict(p) for p in _load(queue) if p["due"] <= now]
    outcome = {(p["hub"], p["topic"], p["seq"]): post(p["hub"], p["topic"]) for p in due}
    with _locked(queue):
        pending = []
        for ping in _load(queue):
            delivered = outcome.get((ping["hub"], ping["topic"], ping["seq"]))
            if delivered is False:
                ping["attempts"] += 1
                if ping["attempts"] > len(delays):
                    continue  # given up
                ping["due"] = now + delays[ping["attempts"] - 1]
            if not delivered:
                pending.append(ping)
        _save(queue, pending)
    return max(min(p["due"] for p in pending) - now, 0.0) if pending else None


def post_ping(hub: str, topic: str) -> bool:
    """One publish ping (``hub.mode=publish``, ``hub.url``); True when the hub answered 2xx."""
    if urllib.parse.urlsplit(hub).scheme not in ("http", "https"):
        return False
    body = urllib.parse.urlencode({"hub.mode": "publish", "hub.url": topic}).encode("ascii")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    request = urllib.request.Request(hub, data=body, method="POST", headers=headers)  # noqa: S310 (http(s) only)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            return 200 <= response.status < 300
    except (OSError, ValueError):
        return False


def drain(queue: Path, post: Poster = post_ping, delays: Sequence[float] = RETRY_DELAYS) -> None:
    """Deliver until the queue is empty (sleeping between retries); returns at once if another drainer runs."""
    with open(queue.with_suffix(".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        while (wait := deliver_due(queue, time.time(), post, delays)) is not None:
            time.sleep(min(wait, 60.0) + 0.01)


def start_drainer(queue: Path) -> None:
    """Start `drain` in its own process (it outlives a CLI build); reaped by a thread in a long-lived one."""
    process = subprocess.Popen(
        [sys.executable, "-m", "feedsvc.site.websub", str(queue)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    threading.Thread(target=process.wait, daemon=True, name="websub-reaper").start()


def resume(site_dir: Path) -> bool:
    """Start a drainer if pings are left from before (a restart); True if one was started."""
    queue = queue_path(site_dir)
    if not queue.exists():
        return False
    with _locked(queue):
        pending = _load(queue)
    if pending:
        start_drainer(queue)
    return bool(pending)


@contextlib.contextmanager
def _locked(queue: Path) -> Iterator[None]:
    """The queue file's own short lock (not the drainer's)."""
    queue.parent.mkdir(parents=True, exist_ok=True)
    with open(queue.with_suffix(".json.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load(queue: Path) -> list[dict]:
    try:
        return list(json.loads(queue.read_bytes())["pending"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _save(queue: Path, pending: list[dict]) -> None:
    """Write the queue atomically (a new file renamed over the old)."""
    temporary = queue.with_name(queue.name + f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"pending": pending}, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, queue)


def _delays_from_env() -> tuple[float, ...]:
    raw = os.environ.get(RETRY_ENV, "").strip()
    if not raw:
        return RETRY_DELAYS
    return tuple(float(part) for part in raw.split(","))


if __name__ == "__main__":
    drain(Path(sys.argv[1]), delays=_delays_from_env())
