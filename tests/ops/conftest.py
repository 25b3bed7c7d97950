"""Fixtures of the fault tests: a private PostgreSQL cluster per module, and a fresh migrated database in it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from pg_cluster import PrivateCluster

from feedsvc.db.engine import Database


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PrivateCluster]:
    """A running private cluster (never the shared 5432 server); a test may stop and start it."""
    cluster = PrivateCluster.create()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def private_url(pg_cluster: PrivateCluster) -> Iterator[str]:
    """A new, migrated database in the private cluster; its URL. The cluster is running again afterwards."""
    name = f"feedsvc_{secrets.token_hex(4)}"
    admin = sa.create_engine(pg_cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    url = pg_cluster.url.rpartition("/")[0] + f"/{name}"
    database = Database(url)
    database.upgrade()
    database.dispose()
    yield url
    if not pg_cluster.running():
        pg_cluster.start()


@pytest.fixture
def private_db(private_url: str) -> Iterator[Database]:
    """A `Database` on `private_url`."""
    database = Database(private_url)
    yield database
    database.dispose()
