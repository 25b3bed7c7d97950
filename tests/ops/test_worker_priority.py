"""`feedsvc worker` yields the CPU to the web app on the same machine: every one of its threads runs at niceness 10
(NICENESS), and a worker started nicer than that (a unit's Nice=15) stays so. Real processes, sending."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from builders import cli_env
from delivery.delivery_support import subscribe_many
from ops_support import FEEDSVC, publish_seed
from smtp_support import SmtpSink

from feedsvc.cli.worker import NICENESS
from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database


def _thread_niceness(pid: int) -> dict[int, int]:
    """Each thread of `pid` (by id) and its niceness, from /proc (field 19 of stat, after the command's name)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rpartition(")")[2].split()
        found[int(task.name)] = int(fields[16])
    return found


def _sending_worker(settings: Settings, sink: SmtpSink, prefix: list[str]) -> subprocess.Popen[bytes]:
    """`feedsvc worker` (after `prefix`, such as `nice -n 15`) as deployed: no FEEDSVC_WORKER_NICENESS set."""
    env = {**os.environ, **cli_env(settings), "FEEDSVC_SMTP_URL": sink.url}
    env.pop("FEEDSVC_WORKER_NICENESS", None)
    command = [*prefix, str(FEEDSVC), "worker", "--no-progress", "--poll", "0.2", "--concurrency", "2"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _niceness_while_sending(
    db: Database, settings: Settings, seed_issue: Issue, prefix: list[str]
) -> tuple[dict[int, int], int]:
    subscribe_many(db, 5, ["industry"])
    publish_seed(db, seed_issue)
    with SmtpSink() as sink:
        worker = _sending_worker(settings, sink, prefix)
        try:
            sink.wait_for(5, timeout=60)  # the sender threads, the decider and the claimer are all running
            seen = _thread_niceness(worker.pid)
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(60)
    return seen, code


def test_every_thread_of_a_worker_runs_below_the_web_apps_priority(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    seen, code = _niceness_while_sending(db, settings, seed_issue, [])
    assert code == 0
    assert len(seen) >= 4 and set(seen.values()) == {NICENESS}, seen  # main, 2 senders, the decider
    assert os.getpriority(os.PRIO_PROCESS, 0) == 0  # this runner is untouched


def test_a_worker_started_nicer_stays_as_nice(db: Database, settings: Settings, seed_issue: Issue) -> None:
    seen, code = _niceness_while_sending(db, settings, seed_issue, ["nice", "-n", "15"])
    assert code == 0 and set(seen.values()) == {15}, seen
