"""`feedsvc publish`, `status`, `send pause|resume|cancel` and `subscribers import` from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from delivery_support import add_subscribers, subscribe_many
from sqlalchemy import func, select

from feedsvc.cli import main
from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import ACTIVE, BOUNCED, KIND_CONFIRM, PENDING, UNSUBSCRIBED, OutboxMessage, Subscriber
from feedsvc.subscribers import privacy

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], settings: Settings, tmp_path: Path) -> tuple[int, str, str]:
    env = {
        "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml"),
        "FEEDSVC_VAR_DIR": str(settings.var_dir),
        "FEEDSVC_SECRET_KEY": settings.secret_key,
        "DATABASE_URL": settings.database_url,
        "FEEDSVC_ISSUES_DIR": str(tmp_path / "issues"),
        "FEEDSVC_SITE_DIR": str(tmp_path / "site"),
    }
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_publish_builds_records_and_queues_once(
    db: Database, settings: Settings, seed_path: Path, tmp_path: Path
) -> None:
    subscribe_many(db, 7, ["industry"])
    subscribe_many(db, 3, ["research", "industry"], prefix="two")
    code, out, _ = run(["publish", "--dry-run", str(seed_path)], settings, tmp_path)
    assert code == 0
    assert "10 recipient(s) would get mail" in out
    assert "       7  industry\n" in out and "       3  industry, research\n" in out
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert not (tmp_path / "site").exists()

    code, out, _ = run(["publish", str(seed_path)], settings, tmp_path)
    assert code == 0, out
    assert "issue 398: queued 10 message(s); 0 active subscriber(s)" in out
    assert (tmp_path / "issues" / seed_path.name).read_bytes() == seed_path.read_bytes()
    assert (tmp_path / "site" / "issues").exists()

    code, out, _ = run(["publish", str(seed_path)], settings, tmp_path)
    assert (code, "nothing new queued" in out) == (0, True)

    code, out, _ = run(["status", "--json"], settings, tmp_path)
    came_back = {"bounced_hard": 0, "bounced_soft": 0, "policy": 0, "complaints": 0, "complaint_rate": 0}
    counts = {"number": 398, "queued": 10, "sending": 0, "sent": 0, "failed": 0, "skipped": 0}
    assert json.loads(out) == [counts | came_back]
    code, out, _ = run(["status"], settings, tmp_path)
    assert "398 running" in " ".join(out.split())  # the send runs; its rows are queued


def test_publish_refuses_a_broken_issue(settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "broken.md"
    broken.write_text("nothing here\n", encoding="utf-8")
    code, _, err = run(["publish", str(broken)], settings, tmp_path)
    assert code == 1 and "broken.md" in err


def test_send_pause_resume_cancel_commands(db: Database, settings: Settings, seed_path: Path, tmp_path: Path) -> None:
    subscribe_many(db, 4, ["industry"])
    shutil.copytree(ROOT / "issues", tmp_path / "issues")
    assert run(["publish", str(tmp_path / "issues" / seed_path.name)], settings, tmp_path)[0] == 0
    assert "paused" in run(["send", "pause", "398"], settings, tmp_path)[1]
    assert "4 queued message(s) will not be sent" in run(["send", "cancel", "398"], settings, tmp_path)[1]
    assert "4 cancelled message(s) queued again" in run(["send", "resume", "398"], settings, tmp_path)[1]
    code, _, err = run(["send", "pause", "12345"], settings, tmp_path)
    assert code == 1 and "not been published" in err


def test_subscribers_import(db: Database, settings: Settings, tmp_path: Path) -> None:
    with db.session() as session:
        add_subscribers(
            session,
            [
                ("active@example.org", ACTIVE, ["research"]),
                ("pending@example.org", PENDING, ["research"]),
                ("left@example.org", UNSUBSCRIBED, ["research"]),
                ("bounced@example.org", BOUNCED, ["research"]),
            ],
        )
        privacy.suppress(session, "erased@example.org", reason="erased")
    csv_file = tmp_path / "list.csv"
    csv_file.write_text(
        "email,sections\n"
        "new@example.org,industry;technology\n"
        "Everything@Example.org,\n"
        "active@example.org,industry\n"
        "pending@example.org,industry\n"
        "left@example.org,\n"
        "bounced@example.org,\n"
        "erased@example.org,\n"
        "broken,\n"
        "odd@example.org,sport\n",
        encoding="utf-8",
    )
    code, out, err = run(["subscribers", "import", str(csv_file)], settings, tmp_path)
    assert code == 1  # bad rows make a non-zero exit, but everything else was imported
    assert f"{csv_file}:9: 'broken' is not a valid address" in err
    assert f"{csv_file}:10: odd@example.org: unknown section sport" in err
    assert "2 sent a confirmation" in out and "2 already subscribed" in out
    assert "2 unsubscribed or bounced earlier" in out and "1 suppressed" in out
    with db.session() as session:
        people = {str(e): str(s) for e, s in session.execute(select(Subscriber.email, Subscriber.status))}
        confirmations = set(session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.kind == KIND_CONFIRM)))
        sections = {
            e: s for e, _, s in privacy.subscriber_rows(session) if e in ("new@example.org", "everything@example.org")
        }
    assert people["new@example.org"] == PENDING and people["left@example.org"] == UNSUBSCRIBED
    assert "erased@example.org" not in people and "broken" not in people
    assert confirmations == {"new@example.org", "everything@example.org"}
    assert sections["new@example.org"] == ["industry", "technology"]
    assert len(sections["everything@example.org"]) == len(settings.publication.slugs)

    code, out, _ = run(["subscribers", "import", "--consented", str(csv_file)], settings, tmp_path)
    assert "3 active" in out  # new@ and everything@ (pending since the first run) and pending@
    with db.session() as session:
        people = {str(e): str(s) for e, s in session.execute(select(Subscriber.email, Subscriber.status))}
    assert people["new@example.org"] == ACTIVE and people["pending@example.org"] == ACTIVE
    assert people["left@example.org"] == UNSUBSCRIBED and people["bounced@example.org"] == BOUNCED
    assert "erased@example.org" not in people


def test_publish_wait_and_worker_show_progress(
    db: Database, settings: Settings, seed_path: Path, tmp_path: Path
) -> None:
    import threading

    from smtp_misbehaving import MisbehavingSmtp

    from feedsvc.mail.transport import SmtpTransport
    from feedsvc.outbox.worker import SendWorker

    subscribe_many(db, 40, ["industry"])
    shutil.copytree(ROOT / "issues", tmp_path / "issues")
    with MisbehavingSmtp() as server:
        stop = threading.Event()
        worker = SendWorker(db, settings, poll_interval=0.05, transport_factory=lambda: SmtpTransport(server.url))
        thread = threading.Thread(target=worker.run, args=(stop,))
        thread.start()
        try:
            code, out, err = run(["publish", "--wait", str(tmp_path / "issues" / seed_path.name)], settings, tmp_path)
        finally:
            stop.set()
            thread.join()
    assert code == 0, err
    final = err.strip().splitlines()[-1]
    assert final.startswith("issue 398 [########################] 100.0%") and "sent 40" in final
    assert "remaining 0" in final and "ETA 0s" in final
    assert len(server.accepted) == 40

    # The worker's own bar: the same rows queued again, `worker --once --progress` sends them to the mail folder.
    with db.session() as session:
        session.execute(
            OutboxMessage.__table__.update()
            .where(OutboxMessage.state == "sent")
            .values(state="queued", message_id=None, sent_at=None)
        )
    code, out, err = run(["worker", "--once", "--progress"], settings, tmp_path)
    assert code == 0 and "sent 40," in out
    assert "sending [" in err and "sent 40" in err
