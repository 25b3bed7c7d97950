"""`feedsvc bounces serve`: one answer per recipient after recording, 451 when recording fails, 552 when too large."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from builders import LOCAL_BASE_URL, make_settings
from mta_support import (
    BOUNCE_ADDRESS,
    BounceServer,
    bounce_config,
    dsn,
    letter,
    lmtp_exchange,
    process_env,
    sent_rows,
    subscriber_state,
    verp_address,
    with_return_path,
)
from smtp_support import free_port
from sqlalchemy import func, select

from feedsvc.bounces import lmtp
from feedsvc.bounces.models import Bounce, BounceReport
from feedsvc.config import Settings
from feedsvc.db.engine import Database

pytestmark = pytest.mark.slow


class _Receiver(Controller):
    def __init__(self, take: lmtp.Take, *, max_bytes: int, use_lmtp: bool = True, **kwargs: Any) -> None:
        self._factory = lmtp.server_factory(take, lmtp=use_lmtp, max_bytes=max_bytes)
        super().__init__(None, hostname="127.0.0.1", port=free_port(), **kwargs)

    def factory(self) -> SMTP:
        return self._factory()


@contextmanager
def receiving(take: lmtp.Take, *, max_bytes: int = 1 << 20, use_lmtp: bool = True) -> Iterator[int]:
    """The receiver in this process (aiosmtpd's thread); its port."""
    controller = _Receiver(take, max_bytes=max_bytes, use_lmtp=use_lmtp, ready_timeout=10)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def _taking(fail_for: str = "") -> tuple[list[tuple[bytes, tuple[str, ...]]], Callable[[bytes, Sequence[str]], bool]]:
    taken: list[tuple[bytes, tuple[str, ...]]] = []

    def take(raw: bytes, recipients: Sequence[str]) -> bool:
        if fail_for and fail_for in recipients:
            raise RuntimeError("the database is away")
        taken.append((raw, tuple(recipients)))
        return True

    return taken, take


def test_each_recipient_gets_its_own_answer_after_it_is_taken_in() -> None:
    taken, take = _taking(fail_for="bounces+two@bounces.example.org")
    with receiving(take) as port:
        answers = lmtp_exchange(
            port,
            "",
            ["bounces+one@bounces.example.org", "bounces+two@bounces.example.org"],
            b"Subject: report\r\n\r\nx\r\n",
        )
    assert answers[:2] == ["250 2.1.5 OK", "250 2.1.5 OK"]
    assert answers[2:] == [lmtp.ACCEPTED, lmtp.NOT_RECORDED]  # the MTA keeps the second recipient and retries
    assert [recipients for _, recipients in taken] == [("bounces+one@bounces.example.org",)]


def test_over_smtp_one_failure_fails_the_message() -> None:
    _, take = _taking(fail_for="b@bounces.example.org")
    with receiving(take, use_lmtp=False) as port:
        answers = lmtp_exchange(
            port, "", ["a@bounces.example.org", "b@bounces.example.org"], b"Subject: r\r\n\r\nx\r\n", lmtp=False
        )
    assert answers[-1] == lmtp.NOT_RECORDED


def test_a_message_over_the_limit_is_refused_with_552_and_not_taken_in() -> None:
    taken, take = _taking()
    with receiving(take, max_bytes=2000) as port:
        answers = lmtp_exchange(
            port, "", ["bounces@bounces.example.org"], b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 100
        )
    assert answers[-1].startswith("552")
    assert taken == []


def test_serve_records_a_dsn_and_refuses_a_letter_over_smtp(db: Database, settings: Settings, tmp_path: Path) -> None:
    row = sent_rows(db, ["gone@example.com"])["gone@example.com"]
    address = verp_address(with_return_path(settings), row)
    with BounceServer(process_env(settings, bounce_config(tmp_path)), smtp=True) as server:
        report = dsn(address, row.recipient, "5.1.1", "550 5.1.1 user unknown")
        assert lmtp_exchange(server.port, "", [address], report, lmtp=False)[-1] == lmtp.ACCEPTED
        # a letter is no report: refused, so the MTA returns it to its sender rather than it vanishing here
        answer = lmtp_exchange(server.port, "", [BOUNCE_ADDRESS], letter(BOUNCE_ADDRESS), lmtp=False)[-1]
        assert answer == lmtp.NOT_A_REPORT
    assert subscriber_state(db, row.subscriber_id) == {"status": "active", "score": 1.0}
    with db.session(readonly=True) as session:
        assert [(b.kind, b.source) for b in session.scalars(select(Bounce))] == [("hard", "smtp")]
        assert session.scalar(select(func.count()).select_from(BounceReport)) == 1  # the letter is no report


def test_a_database_failure_answers_451_and_the_receiver_goes_on(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "own.db"
    shutil.copyfile(sqlite_template, path)
    settings = make_settings(tmp_path, f"sqlite:///{path}", base_url=LOCAL_BASE_URL)
    database = Database(settings.database_url)
    try:
        row = sent_rows(database, ["gone@example.com"])["gone@example.com"]
        address = verp_address(with_return_path(settings), row)
        report = dsn(address, row.recipient, "5.1.1", "550 5.1.1 user unknown")
        with BounceServer(process_env(settings, bounce_config(tmp_path))) as server:
            with database.session() as session:  # the table the receiver writes to goes away
                session.execute(sa.text("ALTER TABLE bounce_reports RENAME TO bounce_reports_away"))
            assert lmtp_exchange(server.port, "", [address], report)[-1] == lmtp.NOT_RECORDED
            with database.session() as session:
                session.execute(sa.text("ALTER TABLE bounce_reports_away RENAME TO bounce_reports"))
            assert lmtp_exchange(server.port, "", [address], report)[-1] == lmtp.ACCEPTED  # the MTA's retry
            assert "could not be recorded: answered 451" in server.output
        assert subscriber_state(database, row.subscriber_id)["score"] == 1.0
    finally:
        database.dispose()
