"""Bounce intake: reports classified and recorded per second, in process and end to end through LMTP, and the time to
take in a day's bounces of a million-recipient send (3%: 30,000 reports).

    .venv/bin/python bench/bounces.py                       # SQLite in a temporary folder
    .venv/bin/python bench/bounces.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dbench
    .venv/bin/python bench/bounces.py --reports 30000 --outbox 1000000   # the whole day, measured (slow)

Every figure is also given as a ratio to a baseline measured in the same run: reading the same reports without the
database (`read_report`, the parser alone), so a slower machine changes the figures but hardly the ratios. The
day's time is extrapolated linearly from the measured rate unless --reports is 30000, and the output says which.
Reports are 60% hard (5.1.1), 30% soft (4.2.2), 10% policy (5.7.1); half are matched by their VERP tag, half by the
Message-ID of the returned headers (a relay that rewrote the return path).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "bounces")]

from builders import make_settings  # noqa: E402
from mta_support import (  # noqa: E402
    BOUNCE_ADDRESS,
    BounceServer,
    bounce_config,
    dsn,
    lmtp_exchange,
    process_env,
    sent_rows,
    verp_address,
    with_return_path,
)

from feedsvc.bounces.classify import BouncePolicy  # noqa: E402
from feedsvc.bounces.intake import take_in  # noqa: E402
from feedsvc.bounces.reports import read_report  # noqa: E402
from feedsvc.db.engine import Database  # noqa: E402

DAY_REPORTS = 30_000
KINDS = (("5.1.1", "550 5.1.1 user unknown"),) * 6 + (("4.2.2", "452 4.2.2 mailbox full"),) * 3
KINDS += (("5.7.1", "554 5.7.1 rejected as spam"),)


def build(args: argparse.Namespace, folder: Path) -> tuple:
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    settings = make_settings(folder, url, base_url="http://127.0.0.1:8000")
    database = Database(url)
    database.upgrade()
    verp = with_return_path(settings)
    started = time.perf_counter()
    batch, rows = 20_000, {}
    for start in range(0, args.outbox, batch):
        addresses = [f"r{i}@example.com" for i in range(start, min(args.outbox, start + batch))]
        made = sent_rows(database, addresses)
        if len(rows) < 2 * args.reports:
            rows.update(made)
    print(f"set-up: {args.outbox} outbox rows in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})")
    chosen = sorted(rows.values(), key=lambda r: r.outbox_id)[: 2 * args.reports]
    reports = []
    for i, row in enumerate(chosen):
        status, words = KINDS[i % len(KINDS)]
        if i % 2:
            reports.append(dsn(BOUNCE_ADDRESS, row.recipient, status, words, message_id=row.message_id))
        else:
            reports.append(dsn(verp_address(verp, row), row.recipient, status, words))
    return settings, database, reports


def parse_rate(reports: list[bytes]) -> float:
    policy = BouncePolicy()
    started = time.perf_counter()
    for raw in reports:
        assert read_report(raw, policy) is not None
    return len(reports) / (time.perf_counter() - started)


def in_process_rate(database: Database, settings, reports: list[bytes]) -> float:
    verp = with_return_path(settings)
    started = time.perf_counter()
    for raw in reports:
        intake = take_in(database, verp, raw, source="bench")
        assert intake.outcome == "recorded", intake
    return len(reports) / (time.perf_counter() - started)


def lmtp_rate(settings, reports: list[bytes], folder: Path, connections: int) -> float:
    env = process_env(settings, bounce_config(folder))
    env.pop("FEEDSVC_BOUNCE_MAX_BYTES", None)
    failures: list[str] = []
    with BounceServer(env) as server:
        shares = [reports[i::connections] for i in range(connections)]

        def send(share: list[bytes]) -> None:
            for raw in share:
                answer = lmtp_exchange(server.port, "", [BOUNCE_ADDRESS], raw)[-1]
                if not answer.startswith("250"):
                    failures.append(answer)

        threads = [threading.Thread(target=send, args=(share,)) for share in shares]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"LMTP refused {len(failures)} report(s): {failures[0]}")
    return len(reports) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temporary folder")
    parser.add_argument("--reports", type=int, default=1000, help="reports per measured part (default 1000)")
    parser.add_argument("--outbox", type=int, default=100_000, help="outbox rows the reports are matched among")
    parser.add_argument("--connections", type=int, default=4, help="parallel LMTP connections (default 4)")
    args = parser.parse_args()
    args.outbox = max(args.outbox, 2 * args.reports)
    os.environ.pop("FEEDSVC_BOUNCE_MAX_BYTES", None)
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-bounces-") as name:
        folder = Path(name)
        settings, database, reports = build(args, folder)
        try:
            baseline = parse_rate(reports)
            inline = in_process_rate(database, settings, reports[: args.reports])
            wire = lmtp_rate(settings, reports[args.reports :], folder, args.connections)
        finally:
            database.dispose()
    print(f"baseline: read_report alone                 {baseline:8.0f} reports/s  1.00")
    print(f"take_in in process (read, match, record)    {inline:8.0f} reports/s  {inline / baseline:.3f}")
    print(
        f"LMTP end to end, {args.connections} connection(s)             {wire:8.0f} reports/s  {wire / baseline:.3f}"
        f"  ({wire / inline:.2f} of in process)"
    )
    how = "measured" if args.reports >= DAY_REPORTS else f"extrapolated from {args.reports} measured reports"
    print(
        f"a day's bounces of a 1,000,000-recipient send (30,000 reports, matched among {args.outbox} outbox rows), "
        f"{how}: {DAY_REPORTS / inline:.0f} s in process, {DAY_REPORTS / wire:.0f} s through LMTP"
    )


if __name__ == "__main__":
    main()
