"""Pooled PostgreSQL connections the server is done with are replaced at checkout, without a round trip for the
connections in use: one the server hung up on (a restart terminates every backend) is seen on its socket, one idle
for a while is pinged, one just opened is not tested, and descriptors past select()'s 1024 work. Every connection
has TCP keepalives, which turn a peer that vanished silently into the same hang-up, and a TCP user timeout."""

from __future__ import annotations

import os
import resource
import select
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from feedsvc.db import engine as db_engine
from feedsvc.db.engine import PG_CONNECTION_SETTINGS, Database

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _pooled_backends(db: Database) -> set[int]:
    """Two connections put in the pool (idle there afterwards): their server process ids."""
    with db.engine.connect() as first, db.engine.connect() as second:
        return {c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for c in (first, second)}


TERMINATE = sa.text("SELECT pg_terminate_backend(pid) FROM unnest(:pids) AS pid")
LISTED = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)")


@pytest.fixture
def admin(db: Database) -> Iterator[sa.Connection]:
    """A connection of its own (autocommit) that terminates the pool's backends, as a restart does to each."""
    engine = sa.create_engine(db.engine.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _two_fresh(db: Database, old: set[int]) -> None:
    with db.transaction() as one, db.transaction() as two:
        now = {c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for c in (one, two)}
    assert not now & old and len(now) == 2


def test_connections_the_server_closed_are_replaced_before_use(db: Database, admin: sa.Connection) -> None:
    assert not db.engine.pool._pre_ping  # no SELECT 1 before every checkout: the socket says it
    pooled = _pooled_backends(db)
    admin.execute(TERMINATE, {"pids": sorted(pooled)})  # FATAL 57P01 "terminating connection", then close
    deadline = time.monotonic() + 10
    while admin.execute(LISTED, {"pids": sorted(pooled)}).scalar_one() and time.monotonic() < deadline:
        time.sleep(0.02)
    _two_fresh(db, pooled)  # used a moment ago, so not pinged: the hang-up itself was seen


def test_an_idle_connection_is_pinged_so_a_backend_told_to_stop_a_moment_ago_is_replaced(
    db: Database, admin: sa.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_engine, "IDLE_PING_SECONDS", 0.0)  # every pooled connection counts as idle
    for _ in range(20):  # checked out at once: the server has often not closed the socket yet (the ping's case)
        pooled = _pooled_backends(db)
        admin.execute(TERMINATE, {"pids": sorted(pooled)})
        _two_fresh(db, pooled)


@pytest.fixture
def many_descriptors() -> Iterator[None]:
    """This process holds over 1100 open files, so the next sockets' descriptors are past 1024 (the soft limit raised
    for it if need be, as a server's often is)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        yield
    finally:
        for fd in opened:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class _CountedPolls:
    """select's poll, counting the polls the checkout test makes."""

    POLLIN, POLLERR, POLLHUP = select.POLLIN, select.POLLERR, select.POLLHUP

    def __init__(self) -> None:
        self.count = 0

    def poll(self) -> select.poll:
        self.count += 1
        return select.poll()


def test_a_connection_just_opened_is_handed_out_untested_and_a_pooled_one_is_tested(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = _CountedPolls()
    monkeypatch.setattr(db_engine, "readiness", polls)
    db.engine.dispose()  # an empty pool: the next checkout connects
    with db.transaction() as connection:
        connection.exec_driver_sql("SELECT 1")
    assert polls.count == 0  # SQLAlchemy's second try is such a connection: testing it could only fail it
    with db.transaction() as connection:  # back from the pool
        connection.exec_driver_sql("SELECT 1")
    assert polls.count == 1


def test_a_connection_past_descriptor_1024_is_checked_out(db: Database, many_descriptors: None) -> None:
    with db.transaction() as connection:
        assert connection.connection.driver_connection.pgconn.socket > 1024  # type: ignore[union-attr]
        assert connection.exec_driver_sql("SELECT 1").scalar_one() == 1
    with db.transaction() as connection:  # and again, from the pool
        assert connection.exec_driver_sql("SELECT 1").scalar_one() == 1


def test_every_connection_has_the_libpq_settings_unless_the_url_says_otherwise(db: Database) -> None:
    pooled = db.engine.raw_connection()
    try:
        given = pooled.driver_connection.info.get_parameters()  # type: ignore[union-attr]
    finally:
        pooled.close()
    assert {name: given.get(name) for name in PG_CONNECTION_SETTINGS} == {
        k: str(v) for k, v in PG_CONNECTION_SETTINGS.items()
    }
    own = Database(db.url + ("&" if "?" in db.url else "?") + "keepalives_idle=5")
    try:
        with own.engine.connect() as connection:
            parameters = connection.connection.driver_connection.info.get_parameters()  # type: ignore[union-attr]
            assert parameters["keepalives_idle"] == "5"
    finally:
        own.dispose()
