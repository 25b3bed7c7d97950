"""Scale (issue 13): the outbox without a foreign key (migration 0012), and a worker that loads no renderer."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from builders import cli_env
from delivery_support import outbox_index_sql, subscribe_many
from smtp_support import SmtpSink
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedsvc import ratelimit
from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import (
    Database,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
    utcnow,
)
from feedsvc.db.models import OutboxMessage, Subscriber, section_key
from feedsvc.outbox import sends
from feedsvc.subscribers import privacy, subscriptions

# What rendering loads (Markdown, Jinja2, premailer and its lxml/cssutils), what DKIM loads, and Flask.
RENDERER_MODULES = ("premailer", "lxml", "cssutils", "jinja2", "markdown_it", "dkim", "cryptography", "flask")
# And what the command's start-up and housekeeping used to keep for the life of the process: Alembic (and its
# Mako) for the schema check, dnspython and the Public Suffix List for DKIM's checks, email-validator (idna);
# and prometheus_client, which only a worker serving --metrics-port needs. The worker claims, sends, records and
# scores refusals in Core statements: the ORM (sqlalchemy.orm, some 6 MiB) is never loaded by sending either.
COMMAND_MODULES = (
    *RENDERER_MODULES,
    *("alembic", "mako", "dns", "publicsuffixlist", "email_validator", "idna", "prometheus_client"),
    "sqlalchemy.orm",
)
# `feedsvc worker` as the console script runs it (`from feedsvc.cli import main; main()`), saying at exit which
# of the modules named in FEEDSVC_TEST_MODULES it had loaded, on stderr's last line.
COMMAND = """
import atexit, os, sys
names = set(os.environ["FEEDSVC_TEST_MODULES"].split(","))
loaded = lambda: sorted(names & set(sys.modules))
atexit.register(lambda: print("loaded:" + ",".join(loaded()), file=sys.stderr))
from feedsvc.cli import main
sys.argv[0] = "feedsvc"
main()
"""
WORKER = """
import sys, threading
from feedsvc.config import load_settings
from feedsvc.db.engine import Database
from feedsvc.outbox.worker import SendWorker
settings = load_settings()
stats = SendWorker(Database(settings.database_url), settings, concurrency=2).run(until_idle=True)
loaded = sorted(set(sys.argv[1].split(",")) & set(sys.modules))
print(stats.sent, ",".join(loaded))
"""


def _python(settings: Settings, smtp_url: str, arguments: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """`python -c` with `arguments` under `settings`, sending to `smtp_url`."""
    variables = {**os.environ, **cli_env(settings), "FEEDSVC_SMTP_URL": smtp_url, **env}
    command = [sys.executable, "-c", *arguments]
    return subprocess.run(command, env=variables, capture_output=True, text=True, timeout=240, check=False)


def test_the_worker_sends_an_issue_without_loading_a_renderer(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    # A real worker process sends every variant of an issue over SMTP; the renders come from its child process.
    subscribe_many(db, 30, ["industry"])
    subscribe_many(db, 20, ["research", "people"], prefix="two")
    with db.session() as session:
        sends.publish(session, seed_issue, Path(seed_issue.source).read_text(encoding="utf-8"))
    with SmtpSink() as sink:
        done = _python(settings, sink.url, [WORKER, ",".join((*RENDERER_MODULES, "sqlalchemy.orm"))])
        received = sink.wait_for(50)
    assert done.returncode == 0, done.stderr[-2000:]
    sent, loaded = done.stdout.split("\n")[0].partition(" ")[::2]
    assert (int(sent), loaded) == (50, ""), done.stderr[-2000:]
    subjects = {r.message["Subject"] for r in received}
    assert len(received) == 50 and len(subjects) == 1
    bodies = {r.message.get_body(("plain",)).get_content().count("\n") for r in received}  # type: ignore[union-attr]
    assert len(bodies) == 2  # two variants, each rendered once


def test_the_worker_command_sends_and_keeps_housekeeping_without_loading_what_it_does_not_need(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    # `feedsvc worker --once` (start-up checks, scheduled publishing, housekeeping, the send) as operators run it,
    # with a refusal to score and a confirmation to send besides the issue.
    subscribe_many(db, 20, ["industry"])
    with db.session() as session:
        subscriptions.subscribe(session, settings, "new@example.org", ["industry"])
        sends.publish(session, seed_issue, Path(seed_issue.source).read_text(encoding="utf-8"))
    with SmtpSink() as sink:
        sink.refuse["reader3@example.org"] = "550 5.1.1 no such user"
        arguments = [COMMAND, "worker", "--once", "--no-progress"]
        done = _python(settings, sink.url, arguments, FEEDSVC_TEST_MODULES=",".join(COMMAND_MODULES))
        received = sink.wait_for(20)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sent 20, retried 0, failed 1" in done.stdout and len(received) == 20
    assert done.stderr.strip().splitlines()[-1] == "loaded:", done.stderr[-2000:]
    with db.session(readonly=True) as session:
        refused = session.scalars(select(Subscriber).where(Subscriber.email == "reader3@example.org")).one()
        assert (refused.bounce_count, refused.bounce_score) == (1, 1.0)  # scored by the worker, in Core


def test_the_schema_check_reads_both_revisions_as_alembic_does(db: Database, tmp_path: Path) -> None:
    # The worker's start-up check reads them without Alembic; Alembic's own answers are the reference.
    from alembic.runtime.migration import MigrationContext

    def alembics(engine: sa.Engine) -> str | None:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None and head_revision() == head
    assert current_revision(db.engine) == alembics(db.engine) == head and db.schema_problem() is None
    downgrade(db.engine, "0011")
    try:
        assert current_revision(db.engine) == alembics(db.engine) == "0011"
        assert f"is at migration 0011, not {head}: run `feedsvc db upgrade`" in (db.schema_problem() or "")
    finally:
        upgrade(db.engine)
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    assert current_revision(empty.engine) is None and "has no feedsvc tables" in (empty.schema_problem() or "")
    empty.dispose()


def test_erasing_or_purging_subscribers_deletes_their_mail(db: Database, settings: Settings) -> None:
    start = utcnow()
    with db.session() as s:
        subscriptions.subscribe(s, settings, "old@example.org", ["industry"], now=start - timedelta(days=31))
        subscriptions.subscribe(s, settings, "new@example.org", ["industry"], now=start - timedelta(days=1))
    with db.session() as s:
        assert privacy.purge_unconfirmed(s, now=start) == 1
    with db.session(readonly=True) as s:
        kept = s.scalar(select(Subscriber.id).where(Subscriber.email == "new@example.org"))
        owners = list(s.scalars(select(OutboxMessage.subscriber_id)))
    assert owners == [kept]  # the purged sign-up's confirmation went with it: no key cascades it any more


def _foreign_keys(db: Database) -> list[dict[str, object]]:
    return sa.inspect(db.engine).get_foreign_keys("outbox")


def test_migration_0012_drops_the_key_and_the_issue_state_index_and_keeps_the_partial_ones(db: Database) -> None:
    indexes = outbox_index_sql(db)
    assert _foreign_keys(db) == []
    assert "ix_outbox_issue_number_state" not in indexes
    assert "WHERE" in indexes["ix_outbox_claim"] and "queued" in indexes["ix_outbox_claim"]
    assert "WHERE" in indexes["ix_outbox_lease"] and "sending" in indexes["ix_outbox_lease"]
    assert "ix_outbox_subscriber_id_state" not in indexes  # 0013: a subscriber's rows go through the unique index
    before = ScriptDirectory.from_config(alembic_config()).get_revision("0012").down_revision
    assert isinstance(before, str)
    downgrade(db.engine, before)
    assert [fk["referred_table"] for fk in _foreign_keys(db)] == ["subscribers"]
    assert "ix_outbox_issue_number_state" in outbox_index_sql(db)
    assert "WHERE" in outbox_index_sql(db)["ix_outbox_claim"]
    upgrade(db.engine)
    assert _foreign_keys(db) == [] and set(outbox_index_sql(db)) == set(indexes)


def test_publish_names_every_section_set_as_section_key_does(db: Database, seed_issue: Issue) -> None:
    # Each reader's sections_key becomes their variant: the sorted ';'-joined slugs, for every choice.
    slugs = list(seed_issue.slugs)
    choices = [slugs[i:j] for i in range(len(slugs)) for j in range(i + 1, len(slugs) + 1)] + [slugs[::2]]
    for n, choice in enumerate(choices):
        subscribe_many(db, 1, choice, prefix=f"c{n}-")
    with db.session() as session:
        assert sends.publish(session, seed_issue, "x").enqueued == len(choices)
    with db.session(readonly=True) as session:
        rows = session.execute(
            select(Subscriber.email, OutboxMessage.sections).join(
                Subscriber, Subscriber.id == OutboxMessage.subscriber_id
            )
        ).all()
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == len(choices)
    by_prefix = {email.split("-")[0]: variant for email, variant in rows}
    assert by_prefix == {f"c{n}": section_key(choice) for n, choice in enumerate(choices)}


def test_a_rate_limit_hit_skips_only_its_own_transactions_flush(db: Database) -> None:
    # The counter's transaction commits without waiting for the WAL flush (PostgreSQL); the next one is durable.
    limit = ratelimit.Limit.parse("1/60")
    key = ratelimit.client_key("signup", "192.0.2.9", "secret")

    def flush(session: Session) -> str:
        return str(session.execute(sa.text("SHOW synchronous_commit")).scalar()) if db.dialect == "postgresql" else ""

    with db.session() as s:
        assert ratelimit.hit(s, key, limit, 1_000_000)
        inside = flush(s)
    with db.session() as s:
        assert not ratelimit.hit(s, key, limit, 1_000_001)  # counted, committed, read back
    with db.session() as s:
        after = flush(s)
    assert (inside, after) == (("off", "on") if db.dialect == "postgresql" else ("", ""))
