"""What the fault tests share: a real `feedsvc worker` process with its log in a file, the outbox by state,
a published seed issue, gunicorn on the shipped config, and polling with a deadline."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from builders import cli_env
from support import ROOT

from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database
from feedsvc.outbox import sends

FEEDSVC = Path(sys.executable).parent / "feedsvc"


def start_worker(
    settings: Settings, smtp_url: str, log: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`feedsvc worker` on `settings`, sending to `smtp_url`; stdout is piped, its log goes to the file `log`."""
    variables = {**os.environ, **cli_env(settings), "FEEDSVC_SMTP_URL": smtp_url, **(env or {})}
    with open(log, "ab") as handle:
        return subprocess.Popen(
            [str(FEEDSVC), "worker", "--no-progress", "--poll", "0.2", *args],
            env=variables,
            stdout=subprocess.PIPE,
            stderr=handle,
        )


def publish_seed(db: Database, issue: Issue) -> None:
    """Record `issue` and queue its mail to every active subscriber (the one publish sequence's send step)."""
    with db.session() as session:
        sends.publish(session, issue, Path(issue.source).read_text(encoding="utf-8"))


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `condition` every 50 ms; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.05)


def start_web(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    """gunicorn with deploy/gunicorn.conf.py (one worker) serving `settings` on 127.0.0.1:`port`."""
    variables = {
        **os.environ,
        **cli_env(settings),
        "FEEDSVC_BIND": f"127.0.0.1:{port}",
        "FEEDSVC_WEB_WORKERS": "1",
        "FEEDSVC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    with open(log, "ab") as handle:
        return subprocess.Popen(
            [
                str(FEEDSVC.parent / "gunicorn"),
                "-c",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
                "feedsvc.web:create_app()",
            ],
            env=variables,
            stdout=handle,
            stderr=handle,
            cwd=ROOT,
        )
