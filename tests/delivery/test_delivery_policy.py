"""Pure parts of delivery: retry policy, progress line, subscriber CSV parsing."""

from __future__ import annotations

import datetime as dt
import io
import random

import pytest

from feedsvc.cli.progress import Counts, ProgressBar, format_duration, format_line
from feedsvc.config import ConfigError
from feedsvc.outbox.retry import RetryPolicy
from feedsvc.subscribers.addresses import normalise_email
from feedsvc.subscribers.csvfile import parse_csv, parse_sections

T0 = dt.datetime(2024, 1, 22, 8, 0, tzinfo=dt.UTC)
SLUGS = ("industry", "content", "technology", "capital", "people", "research")

# ------------------------------------------------------------------------------------------ retry


def test_backoff_doubles_then_caps() -> None:
    policy = RetryPolicy(base_seconds=60, factor=2, max_seconds=600, jitter=0)
    assert [policy.delay(n) for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]
    assert policy.delay(10_000) == 600  # no overflow for absurd attempt counts


def test_jitter_stays_within_its_band() -> None:
    policy = RetryPolicy(base_seconds=100, jitter=0.1)
    rng = random.Random(1)
    delays = [policy.delay(1, rng) for _ in range(200)]
    assert all(90 <= d <= 110 for d in delays)
    assert len(set(delays)) > 100  # actually spread


def test_next_attempt_until_the_deadline_then_none() -> None:
    policy = RetryPolicy(base_seconds=3600, factor=2, max_seconds=86400, deadline_seconds=10_000, jitter=0)
    assert policy.next_attempt(1, T0, T0) == T0 + dt.timedelta(hours=1)
    # A retry that would land after the deadline is pulled onto it: one last try, not a silent drop.
    late = T0 + dt.timedelta(seconds=9000)
    assert policy.next_attempt(3, T0, late) == T0 + dt.timedelta(seconds=10_000)
    assert policy.next_attempt(4, T0, T0 + dt.timedelta(seconds=10_000)) is None


def test_policy_from_environment() -> None:
    policy = RetryPolicy.from_env(
        {"FEEDSVC_RETRY_BASE_SECONDS": "5", "FEEDSVC_RETRY_DEADLINE_SECONDS": "60", "FEEDSVC_BOUNCE_LIMIT": "1"}
    )
    assert (policy.base_seconds, policy.deadline_seconds, policy.bounce_limit) == (5, 60, 1)
    assert RetryPolicy.from_env({}) == RetryPolicy()
    with pytest.raises(ConfigError):
        RetryPolicy.from_env({"FEEDSVC_BOUNCE_LIMIT": "0"})
    with pytest.raises(ConfigError):
        RetryPolicy.from_env({"FEEDSVC_RETRY_FACTOR": "fast"})


# --------------------------------------------------------------------------------------- progress


def test_format_line_shows_every_figure() -> None:
    line = format_line(Counts(queued=500, sending=20, sent=450, failed=30), rate=26.0)
    assert "sent 450" in line and "failed 30" in line and "remaining 520" in line
    assert "26.0/s" in line and "ETA 20s" in line
    assert "[#########" in line and " 48.0%" in line


def test_format_line_without_a_rate_or_anything_left() -> None:
    assert "ETA --" in format_line(Counts(queued=5), rate=None)
    assert "ETA 0s" in format_line(Counts(sent=5), rate=None)
    assert "100.0%" in format_line(Counts(), rate=None)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (None, 9.6, 245, 3720)] == ["--", "10s", "4m05s", "1h02m"]


def test_progress_bar_rate_from_its_window() -> None:
    now = [0.0]
    out = io.StringIO()
    bar = ProgressBar(out, window_seconds=10, log_interval=5, clock=lambda: now[0])
    for second in range(0, 31):
        now[0] = float(second)
        bar.update(Counts(queued=10_000 - 40 * second, sent=40 * second))
    assert bar.rate() == pytest.approx(40.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 7  # not a terminal: a line every 5 s, not one per update
    assert "40.0/s" in lines[-1]
    bar.finish(Counts(sent=10_000))
    assert "sent 10000" in out.getvalue().splitlines()[-1]


def test_progress_bar_redraws_in_place_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    bar = ProgressBar(out, clock=lambda: 0.0)
    bar.update(Counts(queued=2))
    bar.finish(Counts(sent=2))
    assert out.getvalue().count("\r") == 2 and out.getvalue().endswith("\n")


# ----------------------------------------------------------------------------------------- import


def test_csv_good_rows_and_line_numbered_errors() -> None:
    data = (
        b"email,sections\r\n"
        b"Reader@Example.COM,industry;technology\r\n"
        b"not-an-address,\r\n"
        b"\r\n"
        b"b@example.org,\r\n"
        b"c@example.org,industry;nonsense\r\n"
        b'd@example.org,"research;\r\ncontent"\r\n'
        b"reader@example.com,capital\r\n"
        b"e@example.org,people,extra\r\n"
        b"f@example.org, Capital ; industry \r\n"
    )
    parsed = parse_csv(data, SLUGS, normalise_email)
    assert [(r.line, r.email, r.sections) for r in parsed.rows] == [
        (2, "reader@example.com", ("industry", "technology")),
        (5, "b@example.org", ()),
        (7, "d@example.org", ("content", "research")),
        (11, "f@example.org", ("industry", "capital")),  # the quoted field of line 7 ran onto line 8
    ]
    messages = {e.line: e.message for e in parsed.errors}
    assert sorted(messages) == [3, 6, 9, 10]
    assert "not a valid address" in messages[3]
    assert "nonsense" in messages[6]
    assert "repeats line 2" in messages[9]
    assert "3 fields" in messages[10]


def test_csv_accepts_an_export_and_skips_people_who_left() -> None:
    data = (
        "\ufeffemail,status,sections\n"
        "a@example.org,active,industry\n"
        "b@example.org,unsubscribed,industry\n"
        "c@example.org,bounced,\n"
        "d@example.org,pending,\n"
    ).encode()
    parsed = parse_csv(data, SLUGS, normalise_email)
    assert [r.email for r in parsed.rows] == ["a@example.org", "d@example.org"]
    assert [s.line for s in parsed.skipped] == [3, 4]
    assert not parsed.errors


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"address,sections\na@example.org,\n", "no 'email' column"),
        ("email\n张三@例子.中国\n".encode("gb18030"), "not UTF-8 text; it looks like GB18030/GBK"),
    ],
)
def test_csv_refusals(data: bytes, message: str) -> None:
    parsed = parse_csv(data, SLUGS, normalise_email)
    assert not parsed.rows
    assert message in parsed.errors[0].message


def test_parse_sections_keeps_configured_order() -> None:
    assert parse_sections("research;industry;industry", SLUGS) == ("industry", "research")
    assert parse_sections("  ", SLUGS) == ()
    with pytest.raises(ValueError, match="unknown section"):
        parse_sections("sport", SLUGS)
