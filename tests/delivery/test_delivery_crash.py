"""Workers as real processes: kill -9 at random moments during a 5,000-recipient send, and several workers
sharing one send. The database is SQLite and PostgreSQL (the `database_url` fixture)."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from delivery_support import by_state, subscribe_many
from smtp_misbehaving import MisbehavingSmtp

from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database
from feedsvc.outbox import sends

ROOT = Path(__file__).resolve().parents[2]
FEEDSVC = Path(sys.executable).parent / "feedsvc"
pytestmark = pytest.mark.slow


def start_worker(settings: Settings, url: str, *args: str, lease: int = 2) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml"),
        "FEEDSVC_VAR_DIR": str(settings.var_dir),
        "FEEDSVC_SECRET_KEY": settings.secret_key,
        "DATABASE_URL": settings.database_url,
        "FEEDSVC_SMTP_URL": url,
        "FEEDSVC_BASE_URL": settings.base_url,
        "FEEDSVC_LEASE_SECONDS": str(lease),
    }
    return subprocess.Popen(
        [str(FEEDSVC), "worker", "--no-progress", "--poll", "0.2", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def wait_for(condition, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_kill_9_during_a_send_loses_nothing_and_doubles_only_what_was_in_flight(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    total = 5000
    addresses = set(subscribe_many(db, total, ["industry"]))
    with db.session() as session:
        sends.publish(session, seed_issue, Path(seed_issue.source).read_text(encoding="utf-8"))
    rng = random.Random(20240122)
    kills: list[dict[str, int]] = []
    duplicates_so_far = 0
    with MisbehavingSmtp() as server:
        for _ in range(5):
            before = server.total_accepted
            target = before + rng.randint(50, 900)
            process = start_worker(settings, server.url, "--concurrency", "4")
            wait_for(lambda t=target, p=process: server.total_accepted >= t or p.poll() is not None)
            time.sleep(rng.random() * 0.2)  # and a random moment within a batch
            process.send_signal(signal.SIGKILL)
            process.wait()
            time.sleep(0.3)  # let the sink finish a message whose last bytes were already on the wire
            states = by_state(db)
            accepted = server.total_accepted
            # Delivered but not recorded as sent: these rows are still `sending` and will go again.
            unrecorded = accepted - states.get("sent", 0) - duplicates_so_far
            kills.append(
                {"in_flight": states.get("sending", 0), "unrecorded": unrecorded, "sent": states.get("sent", 0)}
            )
            duplicates_so_far += unrecorded
        # A last worker, left alone, finishes the send (taking over the dead workers' leases when they expire).
        process = start_worker(settings, server.url, "--concurrency", "4")
        wait_for(lambda: by_state(db) == {"sent": total})
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    duplicates = server.total_accepted - total
    print(f"\nkill -9 test ({db.dialect}): kills {kills}; duplicates {duplicates}")
    assert set(server.accepted) == addresses  # everyone got the issue
    assert by_state(db) == {"sent": total}  # nothing stuck in `queued` or `sending`
    assert all(k["sent"] < total for k in kills)  # every kill really interrupted the send
    # Every duplicate is a message that was in flight at a kill, and no kill doubled more than it had in hand.
    assert duplicates == sum(k["unrecorded"] for k in kills)
    assert all(0 <= k["unrecorded"] <= k["in_flight"] for k in kills)
    assert duplicates <= sum(k["in_flight"] for k in kills)


def test_several_worker_processes_share_a_send_exactly_once(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    addresses = set(subscribe_many(db, 1500, ["industry", "research"]))
    with db.session() as session:
        sends.publish(session, seed_issue, Path(seed_issue.source).read_text(encoding="utf-8"))
    with MisbehavingSmtp() as server:
        processes = [
            start_worker(settings, server.url, "--once", "--concurrency", "2", "--batch", "20", lease=300)
            for _ in range(3)
        ]
        outputs = [p.communicate(timeout=180)[0].decode() for p in processes]
    assert all(p.returncode == 0 for p in processes)
    sent = [int(re.search(r"sent (\d+),", out).group(1)) for out in outputs]  # type: ignore[union-attr]
    assert sum(sent) == 1500
    assert sum(1 for n in sent if n) >= 2  # the send really was shared
    assert set(server.accepted) == addresses and set(server.accepted.values()) == {1}
    assert by_state(db) == {"sent": 1500}
