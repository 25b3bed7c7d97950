"""Benchmark: what a failed login costs, by kind, against a wrong password for a known address (the baseline).

A login must not tell by its timing whether an address is staff or is locked. This prints the median time of
`login.check_password` (the rate-limit reads and hits, the argon2 verification, the audit entry) for:

* a wrong password for a known address (the baseline),
* an unknown address,
* a known address that is locked (the right password, refused),

each as a ratio to the baseline (target: all within 0.9 to 1.1), interleaved round by round so that
machine load hits every kind alike. SQLite in a temporary folder. Run: .venv/bin/python bench/login.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feedsvc.db.engine import Database  # noqa: E402
from feedsvc.staff import accounts, login  # noqa: E402

ROUNDS = 30
PASSWORD = "correct horse battery staple"
SECRET = "bench-secret"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite:///{Path(folder) / 'bench.db'}")
        database.upgrade()
        with database.session() as s:
            accounts.add(s, "known@example.org", "owner", "bench", PASSWORD)
            accounts.add(s, "locked@example.org", "owner", "bench", PASSWORD)
        now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
        with database.session() as s:
            for _ in range(login.ACCOUNT_LIMIT.count):
                login.check_password(s, SECRET, "locked@example.org", "wrong", "198.51.100.1", now)
        cases = {
            "wrong password, known address": ("known@example.org", "wrong"),
            "unknown address": ("nobody@example.org", "wrong"),
            "locked address, right password": ("locked@example.org", PASSWORD),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for n in range(ROUNDS):
            for name, (email, password) in cases.items():
                client = f"203.0.113.{n % 200}"  # a fresh client each round: only the account limit applies
                start = time.perf_counter()
                with database.session() as s:
                    assert login.check_password(s, SECRET, email, password, client, now) is None
                times[name].append(time.perf_counter() - start)
        database.dispose()
    baseline = statistics.median(times["wrong password, known address"])
    for name, measured in times.items():
        median = statistics.median(measured)
        print(f"{name:34s} {median * 1000:7.1f} ms  ratio {median / baseline:.3f}")


if __name__ == "__main__":
    main()
