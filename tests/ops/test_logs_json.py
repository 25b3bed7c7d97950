"""FEEDSVC_LOG_FORMAT=json: every line a worker writes is one JSON object with the documented keys, and the
lines say what an operator needs (which issue, how many sent) without Alembic's set-up chatter."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from pathlib import Path

import pytest
from builders import cli_env
from click.testing import CliRunner
from delivery.delivery_support import subscribe_many
from metrics_support import run_worker, value, wait_for
from smtp_misbehaving import MisbehavingSmtp

from feedsvc.cli import main
from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database
from feedsvc.ops import logs
from feedsvc.outbox import sends

KEYS = {"time", "level", "logger", "message", "process"}


@pytest.mark.slow
def test_a_worker_run_logs_one_json_object_per_line(db: Database, settings: Settings, seed_issue: Issue) -> None:
    total = 40
    subscribe_many(db, total, ["industry"])
    with db.session() as session:
        sends.publish(session, seed_issue, Path(seed_issue.source).read_text(encoding="utf-8"))
    with MisbehavingSmtp() as sink, run_worker(settings, sink.url) as worker:
        wait_for(lambda: sink.total_accepted >= total, what="the issue to arrive")
        wait_for(lambda: value(worker.scrape(), "feedsvc_queue_depth", state="sending") == 0, what="recorded")
        assert worker.stop() == 0
    records = worker.records()  # json.loads of every line: one that is not JSON fails here
    assert records and all(set(r) >= KEYS for r in records)
    for record in records:
        assert record["time"].endswith("Z")
        datetime.fromisoformat(record["time"])
    assert not [r for r in records if r["logger"].startswith("alembic")]
    started = [r for r in records if "concurrency" in r]
    assert len(started) == 1 and started[0]["level"] == "INFO"
    [summary] = [r for r in records if r.get("issue") == seed_issue.number and "sent" in r]
    assert summary["sent"] == total and summary["kind"] == "issue" and summary["failed"] == 0
    assert f"issue {seed_issue.number}: sent {total}" in summary["message"]


def test_json_lines_carry_extra_fields_and_exceptions() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("feedsvc.test.logs")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("broken on purpose")
        except ValueError:
            logger.exception("row %d failed", 7, extra={"row": 7, "issue": 398, "kind": "issue"})
    finally:
        logger.removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "row 7 failed" and record["level"] == "ERROR"
    assert (record["row"], record["issue"], record["kind"]) == (7, 398, "issue")
    assert "ValueError: broken on purpose" in record["exception"] and "Traceback" in record["exception"]


def test_text_is_the_default_and_a_wrong_format_is_refused(settings: Settings) -> None:
    assert logs.dict_config({})["formatters"]["feedsvc"]["()"].endswith("TextFormatter")
    record = logging.makeLogRecord({"name": "feedsvc.x", "levelname": "INFO", "msg": "hello", "created": 0})
    assert logs.TextFormatter().format(record) == "1970-01-01T00:00:00.000Z INFO feedsvc.x: hello"
    result = CliRunner().invoke(main, ["worker", "--once"], env={**cli_env(settings), "FEEDSVC_LOG_FORMAT": "xml"})
    assert result.exit_code == 1
    assert "FEEDSVC_LOG_FORMAT must be one of text, json, not 'xml'" in result.stderr
