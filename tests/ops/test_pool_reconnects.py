"""A pooled PostgreSQL connection the server hung up on (a restart terminates every backend) is replaced at checkout,
with no ping: the next transactions run on fresh connections, without an error. Every connection has TCP keepalives,
which turn a peer that vanished silently into the same hang-up."""

from __future__ import annotations

import pytest

from feedsvc.db.engine import PG_KEEPALIVES, Database


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_connections_the_server_closed_are_replaced_before_use(db: Database) -> None:
    assert not db.engine.pool._pre_ping  # what replaces the ping is the subject here
    with db.engine.connect() as first, db.engine.connect() as second:  # two idle connections in the pool after this
        pooled = {c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for c in (first, second)}
    admin = Database(db.url)
    try:
        with admin.engine.connect() as connection:  # what a restart does to each of them: FATAL 57P01, then close
            for pid in pooled:
                connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
            connection.commit()
    finally:
        admin.dispose()
    with db.transaction() as one, db.transaction() as two:
        now = {c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for c in (one, two)}
    assert not now & pooled and len(now) == 2


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_every_connection_has_tcp_keepalives_unless_the_url_says_otherwise(db: Database) -> None:
    pooled = db.engine.raw_connection()
    try:
        given = pooled.driver_connection.info.get_parameters()  # type: ignore[union-attr]
    finally:
        pooled.close()
    assert {name: given.get(name) for name in PG_KEEPALIVES} == {k: str(v) for k, v in PG_KEEPALIVES.items()}
    own = Database(db.url + "&keepalives_idle=5" if "?" in db.url else db.url + "?keepalives_idle=5")
    try:
        with own.engine.connect() as connection:
            assert connection.connection.driver_connection.info.get_parameters()["keepalives_idle"] == "5"  # type: ignore[union-attr]
    finally:
        own.dispose()
