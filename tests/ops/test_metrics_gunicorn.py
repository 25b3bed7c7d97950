"""gunicorn with deploy/gunicorn.conf.py and PROMETHEUS_MULTIPROC_DIR: /metrics sums every worker process,
even one that has since exited, and gunicorn's own lines come out as JSON with the app's."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from builders import cli_env
from metrics_support import Samples, parse, value, wait_for
from smtp_misbehaving import free_port

from feedsvc.config import Settings

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
AUTH = {"Authorization": "Basic " + base64.b64encode(b"prometheus:pw").decode()}
pytestmark = pytest.mark.slow


def get(url: str, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers={**(headers or {}), "Connection": "close"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read()


def records(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def served_by(log: Path) -> set[int]:
    """The pids of the gunicorn workers that logged a request to /healthz."""
    return {int(r["process"]) for r in records(log) if r["logger"] == "gunicorn.access" and "/healthz" in r["message"]}


def test_metrics_sum_every_gunicorn_worker(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"stale")  # left by an earlier run: removed at start
    env = {
        **os.environ,
        **cli_env(settings),
        "FEEDSVC_BIND": f"127.0.0.1:{port}",
        "FEEDSVC_WEB_WORKERS": "2",
        "FEEDSVC_METRICS_PASSWORD": "pw",
        "FEEDSVC_LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(GUNICORN), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "feedsvc.web:create_app()"],
            env=env,
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )
    try:

        def up() -> bool:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                return get(f"{base}/healthz") is not None
            except OSError:  # refused, reset or timed out: not up yet
                return False

        wait_for(up, 60, "gunicorn")
        for _ in range(9):
            get(f"{base}/healthz")
        wait_for(lambda: len(served_by(log)) >= 1, 10, "the access log")
        gone = served_by(log)
        for pid in gone:  # the workers that answered exit; their counts must stay in the sum
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: all(not Path(f"/proc/{pid}").exists() for pid in gone), 30, "the workers to exit")
        time.sleep(0.5)

        def scraped() -> Samples:
            return parse(get(f"{base}/metrics", AUTH).decode())

        wait_for(lambda: _answers(scraped), 30, "a new worker")
        samples = [scraped() for _ in range(4)]
    finally:
        server.terminate()
        server.wait(30)
    assert not (folder / "counter_999999.db").exists()
    for sample in samples:  # whichever worker answered the scrape, the sum is the same
        assert value(sample, "feedsvc_http_requests_total", endpoint="public.healthz", status="200") >= 10
    counts = {value(s, "feedsvc_http_requests_total", endpoint="public.healthz", status="200") for s in samples}
    assert len(counts) == 1
    lines = records(log)  # every line gunicorn and the app wrote is JSON
    assert any(r["logger"] == "gunicorn.error" for r in lines)
    assert "Traceback" not in log.read_text()


def _answers(scrape) -> bool:  # type: ignore[no-untyped-def]
    try:
        scrape()
    except OSError:  # refused, reset or timed out: not up yet
        return False
    return True
