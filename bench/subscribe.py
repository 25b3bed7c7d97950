"""Benchmark: sign-ups per second and p99 latency under 50 concurrent clients, against gunicorn.

It starts gunicorn with deploy/gunicorn.conf.py on a free loopback port (its default worker count for
this machine, gthread), on a fresh migrated database, with FEEDSVC_TRUSTED_PROXIES=1 as behind the
shipped nginx (deploy/nginx.conf sets X-Forwarded-For), and runs three phases with the same 50 client
threads (one keep-alive HTTP connection each):

* /healthz, the cheapest request the app answers (the baseline),
* POST /subscribe from 50 addresses: each client sends its own reader's address in X-Forwarded-For, as
  nginx does for 50 readers, so each has its own rate-limit counter row (the headline figure, see below),
* POST /subscribe from one address: no X-Forwarded-For, so the app counts every request against the
  socket peer 127.0.0.1, one counter row that all 50 clients bump (readers behind one NAT, or no proxy).

Each sign-up is the full one with a new address (rate-limit upsert, CSRF check, address validation, the
queued request; then, decided after the answer by `feedsvc worker` running beside gunicorn as deployed:
subscriber + sections + event rows and the confirmation mail rendered and written to the outbox, commit,
and the confirmation sent, to the mail folder). Each client first GETs the form once for its session cookie
and CSRF token (not timed).

Why 50 addresses is the headline: the goal is 50 concurrent readers signing up, and readers are 50
addresses. Behind the shipped deploy the app sees each reader's address (X-Forwarded-For, trusted one
proxy deep), and nginx itself lets one address post forms at 10 a minute (burst 5), so 50 concurrent
sign-ups from one address never reach the app there: nginx answers most with 429. The one-address figure
is printed too, from the same server in the same rounds: it is the hot-row case (every request waits its
turn on one counter row) and what the app alone, without nginx, does with one busy address.

The phases alternate in ten rounds (so that other load on the machine falls on all alike: on a shared
machine one burst of someone else's work can set a phase's p99 when rounds are few), and each phase starts
once every sign-up before it is decided and its confirmation sent (deciding and sending are part of a
sign-up's cost and must not spill over into the next phase, least of all into /healthz). It prints requests
per second and p99 latency of each, and each sign-up figure as a ratio to /healthz measured on the same
server in the same run (over all rounds, and the spread of the ratio round by round, which shows how noisy
the run was). The per-client rate limit
is raised for the run (FEEDSVC_SIGNUP_RATE_LIMIT) so every request is a sign-up; the limiter still counts
every request.
Every answer must be 200 and the database must hold exactly one subscriber and one outbox row per
sign-up, or the run fails. Loopback only; bounded by REQUESTS per phase and a timeout per request.

Timing (issue 16): can an attacker tell known from unknown addresses by how long the same answer takes?
One client, one request at a time, the two classes interleaved in random order, SAMPLES each:

* /manage first contact: an address never seen against a subscribed one whose last mail is old;
* /subscribe repeated within 10 minutes: a never-seen address against one mailed moments ago.

It prints each class's median and how often the best single threshold on one sample's latency tells the
classes apart (50% is a coin toss; the target is under 55%): fitted on the samples themselves (about 54%
for identical distributions at 200 samples), and chosen on half of them and scored on the other half.

Run: .venv/bin/python bench/subscribe.py [--database sqlite|postgresql|both] [--part throughput|timing|both]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from feedsvc.db.engine import Database  # noqa: E402
from feedsvc.db.models import QUEUED, SENDING, OutboxMessage, Subscriber, SubscriptionRequest  # noqa: E402

CLIENTS = 50
REQUESTS = 3_000  # per phase, spread over the clients
ROUNDS = 10  # the phases alternate, REQUESTS // ROUNDS each time (300: six per client)
WARMUP = 200
TIMEOUT = 30.0
STARTUP_SECONDS = 120  # a loaded machine boots five workers slowly; start-up is not what is measured
SAMPLES = 200  # per class in the timing part
PG_URL = os.environ.get("FEEDSVC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Phase:
    name: str
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def p99(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98]

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)


class Client:
    """One HTTP/1.1 keep-alive connection with a cookie jar of one cookie."""

    def __init__(self, port: int, forwarded_for: str = "") -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        self.cookie = ""
        self.csrf = ""
        self.forwarded_for = forwarded_for  # the reader's address, as nginx would send it; none: the peer's

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if self.forwarded_for:
            headers["X-Forwarded-For"] = self.forwarded_for
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed this keep-alive connection (gunicorn's keepalive timeout or a worker's
            # max_requests restart) before answering: like any HTTP client, retry once on a new one.
            # The time of both tries counts.
            self.connection.close()
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        data = response.read().decode("utf-8", "replace")
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, data

    def start_session(self) -> None:
        status, page = self.request("GET", "/subscribe")
        match = CSRF.search(page)
        if status != 200 or not match:
            raise RuntimeError(f"GET /subscribe answered {status} without a form")
        self.csrf = match.group(1)

    def manage(self, email: str) -> int:
        form = urllib.parse.urlencode({"csrf_token": self.csrf, "email": email})
        return self.request("POST", "/manage", form)[0]

    def signup(self, email: str) -> int:
        form = urllib.parse.urlencode(
            {"csrf_token": self.csrf, "email": email, "sections": ["industry", "research"]}, doseq=True
        )
        return self.request("POST", "/subscribe", form)[0]

    def healthz(self, _unused: str) -> int:
        return self.request("GET", "/healthz")[0]

    def close(self) -> None:
        self.connection.close()


def run_phase(name: str, clients: list[Client], action: Callable[[Client], Callable[[str], int]], total: int) -> Phase:
    """`total` requests spread over the clients, all started together; wall time and each latency."""
    per_client = total // len(clients)
    barrier = threading.Barrier(len(clients) + 1)
    latencies: list[list[float]] = [[] for _ in clients]
    errors: list[str] = []

    def work(index: int) -> None:
        call = action(clients[index])
        barrier.wait()
        try:
            for n in range(per_client):
                started = time.perf_counter()
                status = call(f"{name}-{index}-{n}@bench.example.org")
                latencies[index].append(time.perf_counter() - started)
                if status != 200:
                    errors.append(f"{name}: HTTP {status}")
                    return
        except Exception as exc:  # a failed request fails the run, never shortens it silently
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return Phase(name, seconds, [x for chunk in latencies for x in chunk])


def combine(name: str, phases: list[Phase]) -> Phase:
    """Several rounds of one phase as one: their total time and every latency."""
    return Phase(name, sum(p.seconds for p in phases), [x for p in phases for x in p.latencies])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not start within {STARTUP_SECONDS} s")


def prepare_database(kind: str, folder: Path) -> tuple[str, Callable[[], None]]:
    """A fresh migrated database URL and a function that removes it."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
        database = Database(url)
        database.upgrade()
        database.dispose()
        return url, lambda: None
    import sqlalchemy as sa

    schema = f"feedsvc_bench_{os.getpid()}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    database = Database(url)
    database.upgrade()
    database.dispose()

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()

    return url, drop


@contextmanager
def server(kind: str) -> Iterator[tuple[int, str]]:
    """gunicorn on a fresh migrated database of `kind`: its port and the database URL."""
    folder = Path(tempfile.mkdtemp(prefix=f"feedsvc-bench-{kind}-"))
    url, drop = prepare_database(kind, folder)
    port = free_port()
    env = {
        **os.environ,
        "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml"),
        "FEEDSVC_VAR_DIR": str(folder / "var"),
        "FEEDSVC_SECRET_KEY": "bench-secret-key",
        "FEEDSVC_BASE_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": url,
        "FEEDSVC_BIND": f"127.0.0.1:{port}",
        "FEEDSVC_SIGNUP_RATE_LIMIT": "100000000/3600",
        "FEEDSVC_TRUSTED_PROXIES": "1",  # as behind deploy/nginx.conf; a request without X-Forwarded-For is the peer's
    }
    log = folder / "gunicorn.log"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    config = ROOT / "deploy" / "gunicorn.conf.py"
    started: list[subprocess.Popen[bytes]] = []
    try:
        with open(log, "wb") as out, open(folder / "worker.log", "wb") as worker_out:
            command = [gunicorn, "-c", str(config), "--access-logfile", "/dev/null", "feedsvc.web:create_app()"]
            started.append(subprocess.Popen(command, env=env, stdout=out, stderr=out, cwd=ROOT))
            # As deployed (deploy/feedsvc-worker.service): the worker decides the queued sign-ups and sends
            # their confirmations (to the mail folder: FEEDSVC_SMTP_URL is not set).
            worker = [Path(sys.executable).with_name("feedsvc"), "worker", "--no-progress"]
            started.append(subprocess.Popen(worker, env=env, stdout=worker_out, stderr=worker_out, cwd=ROOT))
        wait_until_up(port, started[0], log)
        if started[1].poll() is not None:
            raise RuntimeError(f"feedsvc worker exited:\n{(folder / 'worker.log').read_text(errors='replace')[-2000:]}")
        yield port, url
    finally:
        for running in started:
            running.terminate()
        for running in started:
            try:
                running.wait(timeout=20)
            except subprocess.TimeoutExpired:
                running.kill()
        drop()
        shutil.rmtree(folder, ignore_errors=True)


def wait_decided(url: str, seconds: float = 300) -> tuple[int, float]:
    """Wait until no sign-up request is left undecided and no confirmation unsent (or `seconds` pass): how many
    were undecided at first, and how long it took."""
    database = Database(url)
    started = time.monotonic()
    try:
        first = None
        while time.monotonic() < started + seconds:
            with database.session(readonly=True) as s:
                left = s.scalar(select(func.count()).select_from(SubscriptionRequest)) or 0
                live = OutboxMessage.state.in_((QUEUED, SENDING))
                unsent = s.scalar(select(func.count()).select_from(OutboxMessage).where(live)) or 0
            first = left if first is None else first
            if not left and not unsent:
                break
            time.sleep(0.05)
        return first or 0, time.monotonic() - started
    finally:
        database.dispose()


def count_rows(url: str) -> tuple[int, int]:
    """(subscribers, outbox rows) in the database at `url`."""
    database = Database(url)
    with database.session(readonly=True) as s:
        subscribers = s.scalar(select(func.count()).select_from(Subscriber)) or 0
        rows = s.scalar(select(func.count()).select_from(OutboxMessage)) or 0
    database.dispose()
    return subscribers, rows


def reader_address(index: int) -> str:
    """A distinct reader's address for client `index`, from 198.18.0.0/15 (the benchmarking range, RFC 2544)."""
    return f"198.18.{index // 250}.{index % 250 + 1}"


def bench(kind: str) -> None:
    with server(kind) as (port, url):
        one = [Client(port) for _ in range(CLIENTS)]  # every request from 127.0.0.1
        many = [Client(port, reader_address(i)) for i in range(CLIENTS)]  # each its own reader's address
        for client in one + many:
            client.start_session()
        run_phase("warmup", many, lambda c: c.signup, WARMUP)
        # Alternate the phases in rounds, so that load from anything else on the machine falls on all. Each
        # phase starts once the sign-ups before it are decided: deciding is part of a sign-up's cost, and must
        # not spill over into the next phase (least of all into /healthz, the baseline).
        healths, spread, shared = [], [], []
        backlog: dict[str, list[tuple[int, float]]] = {"spread": [], "shared": []}
        wait_decided(url)
        for round_ in range(ROUNDS):
            healths.append(run_phase(f"healthz{round_}", one, lambda c: c.healthz, REQUESTS // ROUNDS))
            spread.append(run_phase(f"addresses{round_}", many, lambda c: c.signup, REQUESTS // ROUNDS))
            backlog["spread"].append(wait_decided(url))
            shared.append(run_phase(f"oneaddress{round_}", one, lambda c: c.signup, REQUESTS // ROUNDS))
            backlog["shared"].append(wait_decided(url))
        health = combine("healthz", healths)
        signups = [combine("sign-up, 50 addresses", spread), combine("sign-up, one address", shared)]
        for client in one + many:
            client.close()
        expected = sum(len(phase.latencies) for phase in signups) + WARMUP // CLIENTS * CLIENTS
        deadline = time.monotonic() + 300  # sign-ups are decided after the answer: wait for them (a loaded machine)
        while count_rows(url) != (expected, expected) and time.monotonic() < deadline:
            time.sleep(0.2)
        decided = count_rows(url)  # checked after the figures are printed

    workers = os.environ.get("FEEDSVC_WEB_WORKERS") or str((os.cpu_count() or 1) * 2 + 1)
    print(
        f"database {kind}; gunicorn {workers} workers x {os.environ.get('FEEDSVC_WEB_THREADS', '2')} threads; "
        f"{CLIENTS} concurrent clients; {REQUESTS} requests per phase; {os.cpu_count()} CPUs"
    )
    for phase in (health, *signups):
        print(
            f"  {phase.name:22} {phase.rate:8.0f} req/s   median {phase.median * 1000:7.1f} ms   "
            f"p99 {phase.p99 * 1000:7.1f} ms"
        )
    for phase, rounds, waits in zip(signups, (spread, shared), backlog.values(), strict=True):
        each = sorted(r.p99 / h.p99 for r, h in zip(rounds, healths, strict=True))
        sustained = len(phase.latencies) / (phase.seconds + sum(seconds for _, seconds in waits))
        print(
            f"  {phase.name}: p99 as a ratio to /healthz p99 {phase.p99 / health.p99:.2f} "
            f"(round by round: median {statistics.median(each):.2f}, {each[0]:.2f} to {each[-1]:.2f}); "
            f"sign-ups/s as a ratio to /healthz {phase.rate / health.rate:.3f}"
        )
        print(
            f"    undecided when a phase ended: at most {max(n for n, _ in waits)} of {REQUESTS // ROUNDS}; "
            f"decided sign-ups/s (the phases and the waits until all were decided) {sustained:.0f}, "
            f"as a ratio to /healthz {sustained / health.rate:.3f}"
        )
    subscribers, rows = decided
    if subscribers != expected or rows != expected:
        raise RuntimeError(f"expected {expected} subscribers and outbox rows, found {subscribers} and {rows}")


def best_threshold(first: list[float], second: list[float]) -> tuple[float, bool, float]:
    """The single latency threshold that best names the class of one sample: (threshold, whether `first`
    is the faster class, its accuracy on these samples, balanced)."""
    marked = sorted([(x, 0) for x in first] + [(x, 1) for x in second])
    below = [0, 0]  # samples of each class at or under the threshold so far
    best = (float("-inf"), True, 0.5)
    for value, label in marked:
        below[label] += 1
        accuracy = (below[0] / len(first) + (len(second) - below[1]) / len(second)) / 2
        for first_faster, score in ((True, accuracy), (False, 1 - accuracy)):
            if score > best[2]:
                best = (value, first_faster, score)
    return best


def told_apart(first: list[float], second: list[float]) -> tuple[float, float]:
    """How often one threshold names the class of a sample: (on the samples it was chosen on, on fresh ones).

    The first figure is what the threshold that fits these samples best scores on them; with 200 samples
    per class it is about 54% even for two identical distributions (it fits the noise). The second
    chooses the threshold on the even samples and scores it on the odd ones, as an attacker would have
    to: 50% is a coin toss.
    """
    in_sample = best_threshold(first, second)[2]
    threshold, first_faster, _ = best_threshold(first[::2], second[::2])
    fresh_first, fresh_second = first[1::2], second[1::2]
    hits_first = sum((x <= threshold) == first_faster for x in fresh_first) / len(fresh_first)
    hits_second = sum((x <= threshold) != first_faster for x in fresh_second) / len(fresh_second)
    return in_sample, (hits_first + hits_second) / 2


def timed(call: Callable[[str], int], email: str) -> float:
    started = time.perf_counter()
    status = call(email)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"HTTP {status} for {email}")
    return elapsed


def timing_case(client: Client, call: Callable[[str], int], classes: dict[str, list[str]]) -> dict[str, list[float]]:
    """Each class's addresses through `call`, interleaved in random order; the latencies per class."""
    order = [(name, email) for name, emails in classes.items() for email in emails]
    random.Random(16).shuffle(order)
    samples: dict[str, list[float]] = {name: [] for name in classes}
    for name, email in order:
        samples[name].append(timed(call, email))
    return samples


def bench_timing(kind: str) -> None:
    with server(kind) as (port, url):
        client = Client(port)
        client.start_session()
        for n in range(WARMUP):
            client.signup(f"warm-{n}@bench.example.org")
        known = [f"known-{n}@bench.example.org" for n in range(SAMPLES)]
        for email in known:
            client.signup(email)
        time.sleep(2)  # let any deferred work finish, then make every last mail old
        database = Database(url)
        with database.session() as s:
            s.execute(Subscriber.__table__.update().values(notified_at=None))
        database.dispose()
        manage = timing_case(
            client,
            client.manage,
            {"unknown": [f"nobody-{n}@bench.example.org" for n in range(SAMPLES)], "known": known},
        )
        recent = [f"recent-{n}@bench.example.org" for n in range(SAMPLES)]
        for email in recent:
            client.signup(email)
        time.sleep(2)
        signup = timing_case(
            client,
            client.signup,
            {"never seen": [f"new-{n}@bench.example.org" for n in range(SAMPLES)], "mailed": recent},
        )
        client.close()
    print(f"database {kind}; timing, one client, {SAMPLES} samples per class, interleaved")
    for case, samples in (("/manage first contact", manage), ("/subscribe within 10 min", signup)):
        (a, first), (b, second) = samples.items()
        medians = f"{a} {statistics.median(first) * 1000:6.2f} ms   {b} {statistics.median(second) * 1000:6.2f} ms"
        fitted, fresh = told_apart(first, second)
        print(f"  {case:26} {medians}   told apart {fitted * 100:4.1f}% (fitted), {fresh * 100:4.1f}% (fresh samples)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--part", choices=["throughput", "timing", "both"], default="both")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for kind in kinds:
        if kind == "postgresql" and not _postgres_up():
            print("database postgresql: not reachable at 127.0.0.1:5432; skipped")
            continue
        if args.part in ("throughput", "both"):
            bench(kind)
        if args.part in ("timing", "both"):
            bench_timing(kind)


def _postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
