"""The whole way round with a real MTA: feedsvc's worker → Debian's Postfix → a sink that refuses some readers;
Postfix writes the DSNs itself and hands them to `feedsvc bounces serve` over LMTP through its transport map."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from mta_support import (
    BounceServer,
    Postfix,
    add_readers,
    bounce_config,
    feedsvc_command,
    process_env,
    rows_of,
    subscriber_state,
)
from smtp_support import SmtpSink
from sqlalchemy import select
from support import require

from feedsvc.bounces.models import Bounce
from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import OutboxMessage
from feedsvc.publishing import publish_issue

pytestmark = pytest.mark.slow
REFUSALS = {
    "gone@example.com": "550 5.1.1 <gone@example.com>: user unknown",
    "full@example.com": "452 4.2.2 <full@example.com>: mailbox full",
    "blocked@example.com": "554 5.7.1 message rejected as spam",
}


def _bounces(db: Database) -> list[Bounce]:
    with db.session(readonly=True) as session:
        return list(session.scalars(select(Bounce)))


def test_postfix_dsns_come_back_over_lmtp_and_are_recorded_per_recipient(
    db: Database, settings: Settings, seed_path: Path, tmp_path: Path
) -> None:
    require(Path("/usr/sbin/postfix").exists(), "Debian's postfix")
    readers = ["fine@example.com", *REFUSALS]
    add_readers(db, readers)
    with db.session() as session:
        publish_issue(session, settings, seed_path)
    env = process_env(settings, bounce_config(tmp_path))
    with SmtpSink() as sink, BounceServer(env) as receiver:
        sink.refuse.update(REFUSALS)
        transport = {
            "bounces.example.org": f"lmtp:inet:127.0.0.1:{receiver.port}",
            "example.com": f"smtp:[127.0.0.1]:{sink.port}",
        }
        with Postfix(transport) as mta:
            worker = subprocess.run(
                feedsvc_command("worker", "--once", "--no-progress"),
                env={**env, "FEEDSVC_SMTP_URL": f"smtp://127.0.0.1:{mta.port}?starttls=off"},
                capture_output=True,
                text=True,
                timeout=240,
            )
            assert worker.returncode == 0, worker.stderr
            assert "sent 4" in worker.stdout  # Postfix took every message: refusals come later, as DSNs
            deadline = time.monotonic() + 90
            while len(_bounces(db)) < 3 and time.monotonic() < deadline:
                time.sleep(0.5)
            postfix_log = mta.log
        assert len(_bounces(db)) == 3, postfix_log + receiver.output
    [delivered] = sink.messages
    assert delivered.rcpt_tos == ["fine@example.com"]
    assert delivered.mail_from.startswith("bounces+") and delivered.mail_from.endswith("@bounces.example.org")
    assert postfix_log.count("status=sent (250 2.0.0 recorded)") == 3  # each DSN answered after recording

    with db.session(readonly=True) as session:
        rows = rows_of(session, readers)
        states = {str(r): str(s) for r, s in session.execute(select(OutboxMessage.recipient, OutboxMessage.state))}
    assert set(states.values()) == {"sent"}
    found = {b.outbox_id: b for b in _bounces(db)}
    gone, full, blocked = (found[rows[a].outbox_id] for a in REFUSALS)
    # 550 5.1.1: hard, +1
    assert (gone.kind, gone.status, gone.source) == ("hard", "5.1.1", "lmtp")
    assert "user unknown" in gone.diagnostic
    assert subscriber_state(db, rows["gone@example.com"].subscriber_id) == {"status": "active", "score": 1.0}
    # 452 4.2.2: Postfix tried once (maximal_queue_lifetime = 0) and returned it as failed with 4.2.2: soft, +0.5
    assert (full.kind, full.status) == ("soft", "4.2.2")
    assert subscriber_state(db, rows["full@example.com"].subscriber_id) == {"status": "active", "score": 0.5}
    # 554 5.7.1: the sender's problem, recorded against the issue's send and not the reader
    assert (blocked.kind, blocked.status, blocked.counted, blocked.issue_number) == ("policy", "5.7.1", False, 398)
    assert subscriber_state(db, rows["blocked@example.com"].subscriber_id) == {"status": "active", "score": 0.0}
    assert subscriber_state(db, rows["fine@example.com"].subscriber_id) == {"status": "active", "score": 0.0}
