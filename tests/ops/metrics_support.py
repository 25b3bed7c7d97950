"""Helpers for the metrics and log tests: a real `feedsvc worker` with JSON logs and /metrics, and scrapes
read with prometheus_client's own parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builders import cli_env
from prometheus_client.parser import text_string_to_metric_families

from feedsvc.config import Settings

FEEDSVC = Path(sys.executable).parent / "feedsvc"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a text exposition: (name, sorted labels) → value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(condition: Callable[[], bool], timeout: float = 90.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@dataclass
class Worker:
    """A `feedsvc worker` process whose stderr is read line by line (JSON logs) while it runs."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def records(self) -> list[dict[str, Any]]:
        """The log lines so far, each parsed as JSON (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in list(self.lines) if line]

    @property
    def metrics_url(self) -> str:
        wait_for(lambda: any("metrics_port" in r for r in self.records()), 30, "the worker's metrics address")
        found = next(r for r in self.records() if "metrics_port" in r)
        return f"http://{found['metrics_host']}:{found['metrics_port']}/metrics"

    def scrape(self) -> Samples:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as answer:
            assert answer.headers["Content-Type"].startswith("text/plain")
            return parse(answer.read().decode())

    def stop(self) -> int:
        """SIGTERM, and the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(30)


@contextmanager
def run_worker(settings: Settings, smtp_url: str, **env: str) -> Iterator[Worker]:
    """`feedsvc worker --metrics-port 0` with JSON logs, sending to `smtp_url`; stopped afterwards."""
    variables = {
        **os.environ,
        **cli_env(settings),
        "FEEDSVC_SMTP_URL": smtp_url,
        "FEEDSVC_LOG_FORMAT": "json",
        "FEEDSVC_LEASE_SECONDS": "30",
        **env,
    }
    variables.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [str(FEEDSVC), "worker", "--no-progress", "--poll", "0.2", "--metrics-port", "0"],
        env=variables,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = Worker(process)
    reader = threading.Thread(target=worker._read, daemon=True)
    reader.start()
    try:
        yield worker
    finally:
        worker.stop()
        reader.join(10)
