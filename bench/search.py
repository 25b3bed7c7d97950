"""Benchmark of archive search: query latency p50 and p99 over a generated 400-issue archive.

The archive is the seed issue copied 400 times with new numbers and dates (bench/feeds.py `generate_issues`),
indexed on SQLite (and on PostgreSQL at 127.0.0.1:5432, user postgres, database test, in a fresh schema that
is dropped afterwards, when it answers). Each query goes in process through the Flask test client, in rounds
that alternate with `/healthz`; each figure is also given as a ratio to `/healthz` measured in the same run.

Run with `.venv/bin/python bench/search.py` (`--sqlite` skips PostgreSQL).
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from feeds import generate_issues  # noqa: E402

from feedsvc.config import load_publication, load_settings  # noqa: E402
from feedsvc.content.reader import issue_files, load_issues  # noqa: E402
from feedsvc.db.engine import Database  # noqa: E402
from feedsvc.search import index  # noqa: E402

ISSUES = 400
ROUNDS = 30
CALLS = 5  # requests per case per round
PG_URL = os.environ.get("FEEDSVC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
QUERIES = {
    "抖音": "抖音",
    "快手": "快手",
    "微短剧": "微短剧",
    "TikTok Shop": "TikTok Shop",
    "Latin word (tiktok)": "tiktok",
    "one CJK character (音)": "音",
    "no match (量子引力波)": "量子引力波",
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(label: str, url: str, work: Path, issues: list) -> None:
    database = Database(url)
    database.upgrade()
    with database.session() as s:
        index.sync(s, issues)
    database.dispose()

    from feedsvc.web import create_app

    env = {
        "FEEDSVC_VAR_DIR": str(work / "var"),
        "FEEDSVC_SITE_DIR": str(work / "site"),
        "FEEDSVC_SECRET_KEY": "bench",
        "DATABASE_URL": url,
    }
    client = create_app(load_settings(ROOT / "feedsvc.toml", env=env)).test_client()
    cases = {"/healthz": "/healthz"} | {
        name: "/search?" + urllib.parse.urlencode({"q": q}) for name, q in QUERIES.items()
    }
    for path in cases.values():  # warm up, and check every case answers
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, path in cases.items():  # alternating: every query, then /healthz again, each round
            for _ in range(CALLS):
                start = time.perf_counter()
                client.get(path)
                times[name].append(time.perf_counter() - start)
    health50 = statistics.median(times["/healthz"])
    health99 = percentile(times["/healthz"], 99)
    print(f"{label}: {ISSUES} issues, {ROUNDS} rounds x {CALLS} calls per case (Flask test client, in process)")
    print(f"  {'case':<26} {'p50 ms':>9} {'p99 ms':>9} {'p50/healthz':>12} {'p99/healthz':>12}")
    for name, values in times.items():
        p50, p99 = statistics.median(values), percentile(values, 99)
        print(f"  {name:<26} {p50 * 1e3:9.3f} {p99 * 1e3:9.3f} {p50 / health50:12.1f} {p99 / health99:12.1f}")


def main() -> None:
    publication = load_publication(ROOT / "feedsvc.toml")
    with tempfile.TemporaryDirectory(prefix="feedsvc-search-bench-") as tmp:
        work = Path(tmp)
        folder = work / "issues"
        folder.mkdir()
        generate_issues(folder, ISSUES, last=ISSUES)  # issues 400 … 1, a week apart
        issues = load_issues(issue_files(folder), publication)
        run("SQLite (FTS5)", f"sqlite:///{work / 'feedsvc.db'}", work, issues)
        if "--sqlite" not in sys.argv:
            postgres(work, issues)


def postgres(work: Path, issues: list) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError:
        print("PostgreSQL: not reachable at 127.0.0.1:5432, skipped")
        return
    schema = f"feedsvc_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        run("PostgreSQL", f"{PG_URL}?options=-csearch_path%3D{schema}", work, issues)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


if __name__ == "__main__":
    main()
