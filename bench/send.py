"""bench/send: how fast a send goes, what enqueueing a million subscribers costs, and the worker's memory.

1. Throughput: the seed issue to N recipients (default 20,000, in four section sets) through the real
   worker (SQLite ledger, claim/lease/record, `--connections` sender threads over persistent SMTP) into
   a local aiosmtpd sink running in its own process; against, in the same run and to the same sink, a
   plain smtplib loop: the same number of threads, one connection each, building the same messages
   (same render cache, links, Message-IDs) and sending them with `sendmail`, no database at all.
2. Enqueue: `publish` (record + one INSERT … SELECT) for 1,000,000 active subscribers, SQLite and
   PostgreSQL (skipped with a note when PostgreSQL is not reachable), against a bare INSERT … SELECT of
   the same subscribers' rows into a table with only a primary key; both timed to their commit, after
   the VACUUM ANALYZE autovacuum would have run on the freshly filled tables.
3. Memory: the `feedsvc worker` command (the console script operators run, feedsvc.toml) sending the
   whole million-row SQLite ledger (the enqueue part's, or one made here); its resident size sampled
   every second (VmRSS, printed by progress) and its peak (VmHWM) over everything it sent, against the
   57 MB target and the floor (`python -c "import sqlalchemy, sqlite3"`, same run). The render child's
   peak is printed on its own line: it is another process.
4. Signing: the same worker with DKIM off and on (rsa-sha256 2048 and Ed25519) in alternating rounds of
   one run, to the same sink; and what signing one message costs on its own (`--signing-recipients`).

    .venv/bin/python bench/send.py [--recipients 20000] [--connections 4] [--subscribers 1000000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dataclasses import replace  # noqa: E402

from sqlalchemy import text  # noqa: E402

from feedsvc.config import load_settings  # noqa: E402
from feedsvc.content.reader import parse  # noqa: E402
from feedsvc.db.engine import Database, utcnow  # noqa: E402
from feedsvc.db.models import section_key  # noqa: E402
from feedsvc.mail import dkim, newsletter  # noqa: E402
from feedsvc.mail import message as mail_message  # noqa: E402
from feedsvc.mail.signing import signed  # noqa: E402
from feedsvc.mail.transport import SmtpTransport  # noqa: E402
from feedsvc.outbox import sends  # noqa: E402
from feedsvc.outbox.retry import RetryPolicy  # noqa: E402
from feedsvc.outbox.worker import SendWorker  # noqa: E402
from feedsvc.subscribers import tokens  # noqa: E402

SEED = ROOT / "issues" / "2024-01-22-398.md"
SECRET = secrets.token_urlsafe(32)  # signs the links in the messages; any key will do for a bench
PG_URL = os.environ.get("FEEDSVC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
VARIANTS = (
    ("industry",),
    ("industry", "research"),
    ("content", "technology", "capital"),
    ("industry", "content", "technology", "capital", "people", "research"),
)


# ------------------------------------------------------------------------------------------ the sink


def _sink(port: int, counter: multiprocessing.Value, ready: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    from aiosmtpd.controller import Controller

    class Count:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            with counter.get_lock():  # type: ignore[attr-defined]
                counter.value += len(envelope.rcpt_tos)  # type: ignore[attr-defined]
            return "250 OK"

    controller = Controller(Count(), hostname="127.0.0.1", port=port, data_size_limit=0)
    controller.start()
    ready.set()
    signal.sigwait({signal.SIGTERM})
    controller.stop()


class Sink:
    """An aiosmtpd server in its own process (its own core), counting recipients accepted."""

    def __init__(self) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.counter = multiprocessing.Value("q", 0)
        ready = multiprocessing.Event()
        self.process = multiprocessing.Process(target=_sink, args=(self.port, self.counter, ready), daemon=True)
        self.process.start()
        if not ready.wait(20):
            raise RuntimeError("the SMTP sink did not start")
        self.url = f"smtp://127.0.0.1:{self.port}?starttls=off"

    @property
    def count(self) -> int:
        return int(self.counter.value)

    def reset(self) -> None:
        with self.counter.get_lock():
            self.counter.value = 0

    def stop(self) -> None:
        os.kill(self.process.pid, signal.SIGTERM)
        self.process.join(10)


# ------------------------------------------------------------------------------------------- helpers


def settings_for(url: str, var: Path):  # type: ignore[no-untyped-def]
    env = {
        "FEEDSVC_VAR_DIR": str(var),
        "FEEDSVC_SECRET_KEY": SECRET,
        "DATABASE_URL": url,
        "FEEDSVC_BASE_URL": "https://news.example.org",
        "FEEDSVC_LEASE_SECONDS": "300",
    }
    return load_settings(ROOT / "feedsvc.toml", env)


def fill(db: Database, count: int) -> None:
    """`count` active subscribers spread over VARIANTS, written set-based (as fast as the database goes)."""
    now = utcnow().replace(tzinfo=None).isoformat(sep=" ")
    with db.session() as s:
        if db.dialect == "postgresql":
            s.execute(
                text(
                    "INSERT INTO subscribers (email, status, source, lang, token_version, bounce_count, created_at, "
                    "updated_at, confirmed_at) SELECT 'reader' || g || '@example.org', 'active', 'bench', 'zh-CN', 1, "
                    "0, now(), now(), now() FROM generate_series(1, :n) AS g"
                ),
                {"n": count},
            )
        else:
            s.execute(
                text(
                    "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :n) "
                    "INSERT INTO subscribers (email, status, source, lang, token_version, bounce_count, created_at, "
                    "updated_at, confirmed_at) SELECT 'reader' || i || '@example.org', 'active', 'bench', 'zh-CN', 1, "
                    "0, :now, :now, :now FROM g"
                ),
                {"n": count, "now": now},
            )
        for index, variant in enumerate(VARIANTS):
            for slug in variant:
                s.execute(
                    text(
                        "INSERT INTO subscriber_sections (subscriber_id, section) "
                        "SELECT id, :slug FROM subscribers WHERE id % :k = :r"
                    ),
                    {"slug": slug, "k": len(VARIANTS), "r": index},
                )
        for index, variant in enumerate(VARIANTS):  # what set_sections writes beside the section rows
            s.execute(
                text("UPDATE subscribers SET sections_key = :key WHERE id % :k = :r"),
                {"key": section_key(variant), "k": len(VARIANTS), "r": index},
            )
    # The state a running database is in after a bulk load: autovacuum vacuums and analyses it (PostgreSQL).
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE" if db.dialect == "postgresql" else "ANALYZE")


def timed(step):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = step()
    return time.perf_counter() - start, result


# ---------------------------------------------------------------------------------------- throughput


def baseline(settings, issue, rows: list[tuple[int, int, str, str]], url: str, connections: int) -> float:  # type: ignore[no-untyped-def]
    """A plain smtplib loop: `connections` threads, one connection each, building and sending the same messages."""
    publication = settings.publication
    port = int(url.split(":")[2].split("?")[0])
    cache: dict[str, mail_message.RenderedEmail] = {}
    for _, _, _, variant in rows:
        if variant not in cache:
            cache[variant] = newsletter.render(issue, variant.split(";"), publication, templates=settings.templates_dir)

    def work(part: list[tuple[int, int, str, str]]) -> None:
        smtp = smtplib.SMTP("127.0.0.1", port)
        for row_id, sid, address, variant in part:
            links = mail_message.Links(
                manage=tokens.link(settings, "manage", sid, 1),
                unsubscribe=tokens.link(settings, "unsubscribe", sid, 1),
            )
            message = mail_message.build_message(
                cache[variant],
                address,
                links,
                publication,
                message_id=mail_message.make_message_id(publication, "issue", issue.number, row_id),
            )
            smtp.sendmail(publication.from_address, [address], mail_message.serialise(message))
        smtp.quit()

    threads = [threading.Thread(target=work, args=(rows[k::connections],)) for k in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def throughput(recipients: int, connections: int, rounds: int, work: Path) -> None:
    print(
        f"== throughput: seed issue to {recipients} recipients, {connections} connections, aiosmtpd sink process; "
        f"{rounds} alternating rounds of {recipients // rounds}"
    )
    db_path = work / "throughput.db"
    settings = settings_for(f"sqlite:///{db_path}", work / "var")
    db = Database(settings.database_url)
    db.upgrade()
    fill(db, recipients)
    issue = parse(SEED, settings.publication)
    far = "9999-01-01 00:00:00.000000"
    with db.session() as s:
        sends.publish(s, issue, SEED.read_text(encoding="utf-8"), source_name=SEED.name)
        s.execute(text("UPDATE outbox SET next_attempt_at = :far"), {"far": far})  # released round by round
    with db.session(readonly=True) as s:
        rows = [
            (int(r[0]), int(r[1]), str(r[2]), str(r[3]))
            for r in s.execute(text("SELECT id, subscriber_id, recipient, sections FROM outbox ORDER BY id"))
        ]
    db.dispose()
    db = Database(settings.database_url)  # the worker starts on fresh connections, as a worker process would
    size = len(rows) // rounds
    chunks = [rows[k * size : (k + 1) * size if k < rounds - 1 else len(rows)] for k in range(rounds)]
    worker = SendWorker(
        db, settings, concurrency=connections, policy=RetryPolicy(), transport_factory=lambda: SmtpTransport(sink.url)
    )
    sink = Sink()
    base_times: list[float] = []
    worker_times: list[float] = []
    try:
        for chunk in chunks:
            # The plain loop sends this round's messages, then the worker sends the same ones from the ledger.
            sink.reset()
            base_times.append(baseline(settings, issue, chunk, sink.url, connections))
            assert sink.count == len(chunk), f"baseline delivered {sink.count} of {len(chunk)}"
            with db.session() as s:
                s.execute(
                    text("UPDATE outbox SET next_attempt_at = :now WHERE id BETWEEN :a AND :b"),
                    {"now": "2000-01-01 00:00:00.000000", "a": chunk[0][0], "b": chunk[-1][0]},
                )
            sink.reset()
            seconds, _ = timed(lambda: worker.run(until_idle=True))
            worker_times.append(seconds)
            assert sink.count == len(chunk), f"worker delivered {sink.count} of {len(chunk)}"
    finally:
        sink.stop()
    with db.session(readonly=True) as s:
        states = {str(k): int(v) for k, v in s.execute(text("SELECT state, count(*) FROM outbox GROUP BY state"))}
    db.dispose()
    assert states == {"sent": recipients}, f"worker left {states}"
    base_seconds, worker_seconds = sum(base_times), sum(worker_times)
    base_rate, worker_rate = recipients / base_seconds, recipients / worker_seconds
    per_round = [b / w for b, w in zip(base_times, worker_times, strict=True)]
    print(f"plain smtplib loop : {base_seconds:7.2f} s  {base_rate:8.0f} msg/s")
    print(
        f"feedsvc worker     : {worker_seconds:7.2f} s  {worker_rate:8.0f} msg/s  (every row 'sent', Message-ID kept)"
    )
    print(
        f"ratio worker/plain : {worker_rate / base_rate:.2f}  (target 0.8 or more; per round "
        f"{', '.join(f'{r:.2f}' for r in per_round)})"
    )


# ------------------------------------------------------------------------------------------- signing


def signing_settings(settings, work: Path):  # type: ignore[no-untyped-def]
    """`settings` with DKIM on: fresh RSA 2048 and Ed25519 keys in `work`, selectors bench and bench-ed25519."""
    env = dict(settings.extra)
    for variable, algorithm in ((dkim.KEY_FILE, dkim.RSA), (dkim.ED25519_KEY_FILE, dkim.ED25519)):
        pem, _ = dkim.generate_key(algorithm, "bench")
        path = work / f"{algorithm}.pem"
        path.write_bytes(pem)
        env[variable] = str(path)
    domain = settings.publication.mail_domain
    publication = replace(settings.publication, dkim_domain=domain, dkim_selector="bench")
    return settings.with_overrides(publication=publication, extra=env)


def sign_alone(settings, issue, count: int = 200) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Milliseconds to build one message, and to sign it with both keys, in this thread alone."""
    signer = dkim.Signer.from_settings(settings)
    assert signer is not None and len(signer.keys) == 2
    rendered = newsletter.render(issue, None, settings.publication, templates=settings.templates_dir)
    links = mail_message.Links("https://news.example.org/manage/x", "https://news.example.org/unsubscribe/x")
    build_seconds, data = timed(
        lambda: [
            mail_message.serialise(
                mail_message.build_message(rendered, f"r{n}@example.org", links, settings.publication)
            )
            for n in range(count)
        ][-1]
    )
    sign_seconds, signed_data = timed(lambda: [signer.sign(data) for _ in range(count)][-1])
    assert signer.verifies(signed_data), "the bench's signature does not verify"
    return build_seconds / count * 1000, sign_seconds / count * 1000


def signing(recipients: int, connections: int, rounds: int, work: Path) -> None:
    print(
        f"== signing: the worker with DKIM off and on (rsa-sha256 + ed25519-sha256), {recipients} recipients, "
        f"{connections} connections, {rounds} rounds, each half off and half on (order alternating)"
    )
    settings = settings_for(f"sqlite:///{work / 'signing.db'}", work / "var")
    on = signing_settings(settings, work)
    db = Database(settings.database_url)
    db.upgrade()
    fill(db, recipients)
    issue = parse(SEED, settings.publication)
    with db.session() as s:
        sends.publish(s, issue, SEED.read_text(encoding="utf-8"), source_name=SEED.name)
        s.execute(text("UPDATE outbox SET next_attempt_at = '9999-01-01 00:00:00.000000'"))
        ids = [int(r[0]) for r in s.execute(text("SELECT id FROM outbox ORDER BY id"))]
    sink = Sink()
    workers = {
        "off": SendWorker(db, settings, concurrency=connections, transport_factory=lambda: SmtpTransport(sink.url)),
        "on": SendWorker(
            db, on, concurrency=connections, transport_factory=lambda: signed(SmtpTransport(sink.url), on)
        ),
    }
    seconds = {"off": 0.0, "on": 0.0}
    counts = {"off": 0, "on": 0}
    size = len(ids) // (2 * rounds)
    try:
        for k in range(2 * rounds):
            mode = ("off", "on")[(k + k // 2) % 2]  # off on, on off, off on ...
            part = ids[k * size : (k + 1) * size if k < 2 * rounds - 1 else len(ids)]
            with db.session() as s:
                s.execute(
                    text("UPDATE outbox SET next_attempt_at = '2000-01-01 00:00:00.000000' WHERE id BETWEEN :a AND :b"),
                    {"a": part[0], "b": part[-1]},
                )
            sink.reset()
            took, _ = timed(lambda mode=mode: workers[mode].run(until_idle=True))
            assert sink.count == len(part), f"signing {mode}: delivered {sink.count} of {len(part)}"
            seconds[mode] += took
            counts[mode] += len(part)
    finally:
        sink.stop()
        db.dispose()
    per = {mode: seconds[mode] / counts[mode] * 1000 for mode in seconds}
    for mode in ("off", "on"):
        print(
            f"worker, DKIM {mode:<3}  : {seconds[mode]:7.2f} s  {counts[mode] / seconds[mode]:8.0f} msg/s  "
            f"{per[mode]:.2f} ms/msg"
        )
    share = (per["on"] - per["off"]) / per["on"]
    print(
        f"signing's share of the per-message time: {share:.0%} (+{per['on'] - per['off']:.2f} ms/msg, "
        f"throughput x{per['off'] / per['on']:.2f}; target: at most 15%)"
    )
    build_ms, sign_ms = sign_alone(on, issue)
    print(f"one message alone, one thread: build + serialise {build_ms:.2f} ms, sign with both keys {sign_ms:.2f} ms")


# ------------------------------------------------------------------------------------------- enqueue


#: a table with only a primary key and the outbox's enqueue columns: the bare INSERT … SELECT's target.
BARE_TABLE = """CREATE TABLE bench_bare (id {pk}, kind VARCHAR(16), priority SMALLINT, subscriber_id INTEGER,
issue_number INTEGER, sections VARCHAR(512), recipient VARCHAR(320), state VARCHAR(16), attempts INTEGER,
next_attempt_at {ts}, created_at {ts}, updated_at {ts})"""
BARE_INSERT = """INSERT INTO bench_bare (kind, priority, subscriber_id, issue_number, sections, recipient, state,
attempts, next_attempt_at, created_at, updated_at)
SELECT 'issue', 100, id, :number, '', email, 'queued', 0, :now, :now, :now FROM subscribers WHERE status = 'active'"""


def bare(db: Database, number: int) -> float:
    """Seconds for the bare statement: the same subscribers' rows into a table with only a primary key."""
    postgres = db.dialect == "postgresql"
    with db.session() as s:
        s.execute(text("DROP TABLE IF EXISTS bench_bare"))
        s.execute(
            text(
                BARE_TABLE.format(
                    pk="BIGSERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY",
                    ts="TIMESTAMPTZ" if postgres else "TIMESTAMP",
                )
            )
        )
    now = utcnow() if postgres else utcnow().replace(tzinfo=None).isoformat(sep=" ")
    with db.session() as s:
        seconds, _ = timed(lambda: (s.execute(text(BARE_INSERT), {"number": number, "now": now}), s.commit()))
    return seconds


def claim_plan(db: Database) -> str:
    """PostgreSQL's plan (EXPLAIN) for the worker's claim query, exactly as the worker sends it, on the ledger."""
    from sqlalchemy import event

    from feedsvc.outbox.queue import _due

    seen: list[tuple[str, object]] = []

    def keep(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    with db.session() as s:
        s.execute(text("ANALYZE outbox"))
        event.listen(db.engine, "before_cursor_execute", keep)
        try:
            _due(s, 128, utcnow())
        finally:
            event.remove(db.engine, "before_cursor_execute", keep)
        statement, parameters = seen[-1]
        rows = s.connection().exec_driver_sql("EXPLAIN " + statement, parameters).all()  # type: ignore[arg-type]
    return "\n".join("    " + str(r[0]) for r in rows)


def enqueue(url: str, count: int, label: str, rounds: int = 2) -> Database | None:
    """`publish` for `count` subscribers against the bare statement, in alternating rounds (ABBA …)."""
    db = Database(url)
    try:
        db.upgrade()
    except Exception as exc:  # PostgreSQL not reachable: say so, do not pretend
        print(f"{label:<11}: skipped ({type(exc).__name__}: {str(exc).splitlines()[0]})")
        return None
    settings = settings_for(url, Path(tempfile.gettempdir()))
    fill_seconds, _ = timed(lambda: fill(db, count))
    issue = parse(SEED, settings.publication)
    plan_seconds, (per_variant, _) = timed(lambda: _plan(db, issue))
    source = SEED.read_text(encoding="utf-8")
    bare_times: list[float] = []
    feedsvc_times: list[float] = []
    result = None
    for k in range(2 * rounds):
        if (k + k // 2) % 2 == 0:  # bare, feedsvc, feedsvc, bare, ...
            bare_times.append(bare(db, issue.number))
            continue
        with db.session() as s:  # a fresh ledger for each publish (TRUNCATE on PostgreSQL, SQLite's fast DELETE)
            s.execute(text("TRUNCATE outbox CASCADE" if db.dialect == "postgresql" else "DELETE FROM outbox"))
            s.execute(text("DELETE FROM issues"))
        with db.session() as s:
            seconds, (result, _) = timed(
                lambda s=s: (sends.publish(s, issue, source, source_name=SEED.name), s.commit())
            )
        feedsvc_times.append(seconds)
        assert result.enqueued == count, f"enqueued {result.enqueued} of {count}"
    assert result is not None
    base, mine = sum(bare_times) / len(bare_times), sum(feedsvc_times) / len(feedsvc_times)
    print(
        f"{label:<11}: bare INSERT … SELECT {base:6.2f} s; feedsvc publish {mine:6.2f} s ({result.enqueued:,} rows, "
        f"{len(per_variant)} section sets); ratio {mine / base:.2f} (target 3 or less; rounds: bare "
        f"{', '.join(f'{t:.2f}' for t in bare_times)}, feedsvc {', '.join(f'{t:.2f}' for t in feedsvc_times)})"
    )
    print(f"{'':<11}  dry-run plan {plan_seconds:.2f} s; filling {count:,} subscribers took {fill_seconds:.1f} s")
    if db.dialect == "postgresql":
        print(f"{'':<11}  claim query plan at {result.enqueued:,} queued rows:\n{claim_plan(db)}")
    return db


def _plan(db: Database, issue):  # type: ignore[no-untyped-def]
    with db.session(readonly=True) as s:
        return sends.plan(s, issue.slugs)


# -------------------------------------------------------------------------------------------- memory


# The floor: a bare interpreter with SQLAlchemy and the database driver, nothing of feedsvc.
FLOOR = """
import sqlalchemy, sqlite3
print([line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")][0])
"""
# The render child's own peak: the four variants of the seed issue, as a worker's child renders them.
RENDER_CHILD = """
import sys
from pathlib import Path
from feedsvc.config import load_settings
from feedsvc.mail.variants import render_variants
settings = load_settings()
source = Path(sys.argv[1]).read_text(encoding="utf-8")
keys = [(";".join(sorted(v)), "zh-CN") for v in VARIANTS]
done = render_variants(settings.publication, settings.templates_dir, source, "seed.md", keys)
assert all(not isinstance(r, str) for r in done.values()), done
print([line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")][0])
"""
TARGET_MB = 57  # listmonk's published peak for a 7-million send
FEEDSVC = Path(sys.executable).parent / "feedsvc"  # the console script operators run


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, in kB (kibibytes, as /proc says)."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(("VmRSS", "VmHWM")):
                name, value = line.split(":")
                values[name] = int(value.split()[0])
    return values


def _sizes(kb: int) -> str:
    """`kb` kibibytes as MiB and MB, with the ratio of each to the 57 target."""
    mib, mb = kb / 1024, kb * 1024 / 1e6
    return (
        f"{mib:.1f} MiB = {mb:.1f} MB (ratio to {TARGET_MB}: {mib / TARGET_MB:.3f} in MiB, {mb / TARGET_MB:.3f} in MB)"
    )


def ledger(db_path: Path, subscribers: int) -> None:
    """The million-row SQLite ledger the memory part sends from, when the enqueue part did not leave one."""
    if db_path.exists():
        return
    settings = settings_for(f"sqlite:///{db_path}", db_path.parent / "var")
    db = Database(settings.database_url)
    db.upgrade()
    seconds, _ = timed(lambda: fill(db, subscribers))
    issue = parse(SEED, settings.publication)
    with db.session() as s:
        result = sends.publish(s, issue, SEED.read_text(encoding="utf-8"), source_name=SEED.name)
    db.dispose()
    print(f"ledger: {subscribers:,} subscribers filled in {seconds:.0f} s, {result.enqueued:,} rows queued")


def dkim_config(work: Path) -> dict[str, str]:
    """The environment of a `feedsvc worker` that signs (rsa-sha256 2048, selector bench): feedsvc.toml with
    the DKIM settings filled in, written to `work`, and the key file."""
    pem, _ = dkim.generate_key(dkim.RSA, "bench")
    key = work / "dkim-bench.pem"
    key.write_bytes(pem)
    domain = settings_for("sqlite://", work).publication.mail_domain
    toml = (ROOT / "feedsvc.toml").read_text(encoding="utf-8")
    toml = toml.replace('dkim_domain = ""', f'dkim_domain = "{domain}"').replace(
        'dkim_selector = ""', 'dkim_selector = "bench"'
    )
    config = work / "feedsvc-dkim.toml"
    config.write_text(toml, encoding="utf-8")
    return {
        "FEEDSVC_CONFIG": str(config),
        dkim.KEY_FILE: str(key),
        "FEEDSVC_TEMPLATES_DIR": str(ROOT / "templates"),
        "FEEDSVC_ISSUES_DIR": str(ROOT / "issues"),
    }


def memory(
    db_path: Path,
    messages: int,
    connections: int,
    work: Path,
    seconds_limit: float,
    every: float,
    signing_env: dict[str, str] | None = None,
) -> None:
    """The peak resident size (VmHWM) of the `feedsvc worker` command over the send of `messages` rows (0: the
    whole ledger), against the 57 MB target; the floor (SQLAlchemy and sqlite3 alone) measured in the same run.
    With `signing_env` (dkim_config), the worker signs every message with DKIM."""
    with Database(f"sqlite:///{db_path}").session(readonly=True) as s:
        queued = int(s.execute(text("SELECT count(*) FROM outbox WHERE state = 'queued'")).scalar_one())
    messages = messages or queued
    signs = "DKIM on (rsa-sha256 2048)" if signing_env else "DKIM off, as feedsvc.toml ships"
    print(
        f"== worker memory: `feedsvc worker --concurrency {connections}` (the console script, feedsvc.toml, SMTP to "
        f"an aiosmtpd sink process, {signs}) sends {messages:,} of the {queued:,} queued rows of the SQLite ledger",
        flush=True,
    )
    sink = Sink()
    env = dict(
        os.environ,
        FEEDSVC_CONFIG=str(ROOT / "feedsvc.toml"),
        FEEDSVC_VAR_DIR=str(work / "var"),
        FEEDSVC_SECRET_KEY=SECRET,
        DATABASE_URL=f"sqlite:///{db_path}",
        FEEDSVC_SMTP_URL=sink.url,
        FEEDSVC_BASE_URL="https://news.example.org",
    )
    env.update(signing_env or {})
    floor = subprocess.run([sys.executable, "-c", FLOOR], env=env, capture_output=True, text=True, check=True)
    command = [str(FEEDSVC), "worker", "--no-progress", "--concurrency", str(connections)]
    log = work / "worker.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=handle, stderr=handle)
    samples: list[tuple[float, int, int]] = []  # (seconds, sent, VmRSS kB)
    start = time.perf_counter()
    last_print = start
    stopped = "the whole ledger was sent" if messages == queued else f"{messages:,} were sent"
    peak = 0
    try:
        while sink.count < messages:
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited with {process.returncode}: {log.read_text()[-2000:]}")
            time.sleep(1.0)
            status = _status(process.pid)
            if "VmRSS" not in status:  # it exited since the poll above (a zombie has no memory): said next turn
                continue
            now = time.perf_counter()
            samples.append((now - start, sink.count, status["VmRSS"]))
            # The most either reading reached: Linux counts RSS per thread and folds the counts in lazily, so
            # VmHWM itself can read lower later than it once did (seen: 51.7 MiB, then 51.5).
            peak = max(peak, status["VmHWM"], status["VmRSS"])
            if now - last_print >= every:
                last_print = now
                print(
                    f"  {now - start:7.0f} s  sent {sink.count:>9,}  VmRSS {status['VmRSS'] / 1024:5.1f} MiB  "
                    f"VmHWM {peak / 1024:5.1f} MiB",
                    flush=True,
                )
            if seconds_limit and now - start >= seconds_limit:
                stopped = f"STOPPED by --memory-seconds {seconds_limit:.0f}: not the whole ledger"
                break
        peak = max(peak, _status(process.pid).get("VmHWM", 0))  # the last sample's alone, if it exited meanwhile
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(120)
        sink.stop()
    seconds = time.perf_counter() - start
    sent = sink.count
    print(f"sent {sent:,} of {queued:,} in {seconds:.0f} s ({sent / seconds:,.0f} msg/s): {stopped}")
    print(f"`feedsvc worker` peak RSS (the most VmHWM or VmRSS read each second, over all it sent): {_sizes(peak)}")
    floor_kb = int(floor.stdout)
    print(f"the floor, `python -c 'import sqlalchemy, sqlite3'` (same run): {_sizes(floor_kb)}")
    marks = [samples[min(len(samples) - 1, int(len(samples) * f))] for f in (0.0, 0.1, 0.25, 0.5, 0.75)] + samples[-1:]
    print("RSS by progress: " + ", ".join(f"{n:,} sent: {rss / 1024:.1f} MiB" for _, n, rss in marks if samples))
    child = subprocess.run(
        [sys.executable, "-c", f"VARIANTS = {VARIANTS!r}\n" + RENDER_CHILD, str(SEED)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    print(
        "the render child (its own process: one per issue per worker, exits once the variants are rendered; "
        f"not in the worker's figure above): peak {int(child.stdout) / 1024:.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=8, help="alternate plain loop and worker in this many rounds")
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--memory-messages", type=int, default=0, help="0: every queued row of the ledger")
    parser.add_argument("--memory-seconds", type=float, default=0, help="stop the memory part after this (0: never)")
    parser.add_argument("--memory-every", type=float, default=60, help="print the worker's RSS this often (s)")
    parser.add_argument("--ledger", type=Path, help="a SQLite ledger to send from (default: the enqueue part's)")
    parser.add_argument(
        "--memory-dkim", action="store_true", help="then the same with DKIM on, from a new ledger of --subscribers"
    )
    parser.add_argument("--signing-recipients", type=int, default=4_000)
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["throughput", "enqueue", "sqlite", "postgres", "memory", "signing"],
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="feedsvc-bench-send-"))
    try:
        if "throughput" not in args.skip:
            throughput(args.recipients, args.connections, args.rounds, work)
        if "signing" not in args.skip:
            signing(args.signing_recipients, args.connections, max(1, args.rounds // 2), work)
        if "enqueue" not in args.skip:
            print(f"== enqueue: publish to {args.subscribers:,} active subscribers ({len(VARIANTS)} section sets)")
            sqlite_path = work / "million.db"
            if "sqlite" not in args.skip:
                db = enqueue(f"sqlite:///{sqlite_path}", args.subscribers, "SQLite")
                if db is not None:
                    db.dispose()
            if "postgres" not in args.skip:
                schema = f"bench_send_{os.getpid()}"
                admin = Database(PG_URL)
                try:
                    with admin.engine.begin() as c:
                        c.exec_driver_sql(f"CREATE SCHEMA {schema}")
                    pg = enqueue(f"{PG_URL}?options=-csearch_path%3D{schema}", args.subscribers, "PostgreSQL")
                    if pg is not None:
                        pg.dispose()
                except Exception as exc:
                    print(f"PostgreSQL : skipped ({type(exc).__name__}: {str(exc).splitlines()[0]})")
                finally:
                    try:
                        with admin.engine.begin() as c:
                            c.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                    except Exception as exc:
                        print(f"(could not drop schema {schema}: {exc})")
                    admin.dispose()
        if "memory" not in args.skip:
            path = args.ledger or work / "million.db"
            ledger(path, args.subscribers)
            memory(path, args.memory_messages, args.connections, work, args.memory_seconds, args.memory_every)
            if args.memory_dkim:
                ledger(work / "dkim.db", args.subscribers)
                limits = (args.memory_seconds, args.memory_every)
                memory(work / "dkim.db", args.memory_messages, args.connections, work, *limits, dkim_config(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
