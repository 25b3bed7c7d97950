"""The database: an engine and session factory from DATABASE_URL, and Alembic migrations run from code.

SQLite (the default, a file under var/) runs in WAL mode with a busy timeout and foreign keys on, and
every transaction starts with ``BEGIN IMMEDIATE``: a transaction that reads and then writes takes the
write lock up front, so concurrent writers queue on the busy timeout instead of failing with "database
is locked" when a deferred read lock cannot be upgraded. A read-only transaction can ask for a plain
``BEGIN`` with ``Database.session(readonly=True)``. PostgreSQL is used through psycopg 3.

No Flask here: the web app, the CLI and the worker each make a `Database` from their Settings.
"""

from __future__ import annotations

import ast
import random
import select as readiness
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Connection, Engine, column, create_engine, event, inspect, select, table
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    #: what a statement runs on: an ORM session, or a Core connection (in `feedsvc worker`, always the latter).
    Executor: TypeAlias = Session | Connection

SQLITE_BUSY_TIMEOUT_MS = 15_000
READONLY = "feedsvc_readonly"
#: libpq's connection settings on every PostgreSQL connection, unless the URL sets them. `connect_timeout`: libpq
#: waits for ever by default, so a lost host would hang requests. The rest are for a peer that vanished without
#: hanging up (a lost host, a NAT that forgot the flow): TCP keepalives fail an idle connection within about
#: 90 s, where the kernel's defaults wait two hours (the pool's checkout test then finds it, and the decider's
#: LISTEN connection errors out and is opened again); `tcp_user_timeout` (ms) fails a connection whose sent
#: statement or ping goes unacknowledged for 30 s, where the kernel retransmits for about 15 minutes (a request
#: thread or a worker step would wait that long).
PG_CONNECTION_SETTINGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 60,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
#: a pooled PostgreSQL connection unused this long is pinged at checkout (`_check_out_live_connections`).
IDLE_PING_SECONDS = 10.0
CHECKED_IN = "feedsvc_checked_in"  # the pool record's note of when its connection came back (time.monotonic)
VERSION_TABLE = "alembic_version"  # where Alembic records the revision (its default; env.py keeps it)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (what every column stores)."""
    return datetime.now(UTC)


def normalise_url(url: str) -> URL:
    """`url` as SQLAlchemy sees it, with plain ``postgresql://`` meaning psycopg 3 (not psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`, with the SQLite pragmas and transaction mode described above."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).update(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        if not database or database == ":memory:":
            kwargs.setdefault("poolclass", NullPool)
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    connect_args = kwargs.setdefault("connect_args", {})
    for name, value in PG_CONNECTION_SETTINGS.items():
        if name not in parsed.query:
            connect_args.setdefault(name, value)
    if parsed.get_driver_name() != "psycopg":  # another driver: SQLAlchemy's ping on every checkout
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)
    engine = create_engine(parsed, **kwargs)
    _check_out_live_connections(engine)
    return engine


def _check_out_live_connections(engine: Engine) -> None:
    """Replace, at checkout, a pooled psycopg connection the server has hung up on, without a round trip for the
    connections in use.

    A restarting PostgreSQL (or an idle-session timeout, or ``pg_terminate_backend``) says "terminating
    connection" and closes the socket, which an idle pooled connection otherwise has nothing to read from: one
    zero-timeout poll of the socket (a system call, about 2 µs) finds that, where SQLAlchemy's pre-ping spent a
    ``SELECT 1`` round trip on every checkout of every request. A connection that sat unused in the pool for
    IDLE_PING_SECONDS is still pinged: a server that moved (a failover to another host behind the same address)
    says nothing on the old socket until something is sent, and a backend told to stop a moment ago may not
    have said so yet. A host that vanished makes the socket readable (its error) once the TCP keepalives give up
    (PG_CONNECTION_SETTINGS). Either way the pool connects afresh (DisconnectionError). A connection just opened
    is handed out untested, as SQLAlchemy's pre-ping does: SQLAlchemy tries a checkout twice, and a test that
    failed the fresh second connection too would raise an error that is not the database's (not a 503).
    """
    import psycopg

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if CHECKED_IN not in record.info:  # fresh from connect (SQLAlchemy's second try, too): nothing to test yet
            return
        try:
            waiting = readiness.poll()
            waiting.register(dbapi_connection.pgconn.socket, readiness.POLLIN | readiness.POLLERR | readiness.POLLHUP)
            hung_up = dbapi_connection.closed or bool(waiting.poll(0))
        except psycopg.Error as exc:  # "the connection is lost"
            raise DisconnectionError(f"pooled connection unusable: {exc}") from exc
        if hung_up:
            raise DisconnectionError("the server closed this pooled connection (a restart?)")
        idle = time.monotonic() - record.info[CHECKED_IN]
        if idle >= IDLE_PING_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except psycopg.Error as exc:
                raise DisconnectionError(f"pooled connection idle {idle:.0f} s did not answer: {exc}") from exc


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so that BEGIN is ours (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READONLY, False):
            connection.exec_driver_sql("BEGIN")
        else:
            begin_immediate(connection.connection.dbapi_connection)


def begin_immediate(dbapi_connection: Any, timeout: float = SQLITE_BUSY_TIMEOUT_MS / 1000) -> None:
    """``BEGIN IMMEDIATE``, retried every millisecond or so while another connection holds the write lock.

    SQLite's own busy handler sleeps longer and longer between tries (up to 100 ms), so under steady
    contention an unlucky writer waits seconds while later ones get in: the latency tail. Polling with
    short jittered sleeps (what Rails' SQLite adapter does for the same reason) keeps the wait close to
    the time the lock is actually held. Only BEGIN waits here: in WAL mode, once a transaction holds the
    write lock its statements and COMMIT do not wait for other connections.
    """
    deadline = time.monotonic() + timeout
    delay = 0.0005
    dbapi_connection.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not security
            delay = min(delay * 1.5, 0.005)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


class Database:
    """An engine, and transactions on it: ``with db.transaction() as c:`` (Core) or ``with db.session() as s:`` (ORM).

    The ORM (sqlalchemy.orm, some 6 MiB) is loaded by the first `session`, never by `transaction`: `feedsvc worker`
    sends through Core connections alone.
    """

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._readonly = self.engine.execution_options(**{READONLY: True})
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory (objects stay readable after commit)."""
        from sqlalchemy.orm import sessionmaker

        return sessionmaker(self.engine, expire_on_commit=False)

    @cached_property
    def _readonly_sessions(self) -> sessionmaker[Session]:
        from sqlalchemy.orm import sessionmaker

        return sessionmaker(self._readonly, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self, readonly: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back if it raises."""
        factory = self._readonly_sessions if readonly else self.sessions
        with factory() as session, session.begin():
            yield session

    @contextmanager
    def transaction(self, readonly: bool = False) -> Iterator[Connection]:
        """A Core connection in one transaction: committed when the block ends, rolled back if it raises. A
        read-only one (a plain ``BEGIN`` on SQLite) is rolled back at the end: it has nothing to commit."""
        if readonly:
            with self._readonly.connect() as connection:  # begun by its first statement, rolled back on close
                yield connection
        else:
            with self.engine.begin() as connection:
                yield connection

    @contextmanager
    def standalone(self) -> Iterator[Connection]:
        """A connection for a few statements that each stand alone (Core, no ORM).

        On PostgreSQL each statement commits by itself (autocommit): no BEGIN or COMMIT round trips, and the
        row locks a statement takes are held only inside the server, never while this thread waits for its
        turn to run. On SQLite, where a statement costs no round trip, they share one write transaction (one
        ``BEGIN IMMEDIATE``), rolled back if the block raises.
        """
        if self.dialect == "postgresql":
            with self._autocommit.connect() as connection:
                yield connection
        else:
            with self.engine.begin() as connection:
                yield connection

    def schema_problem(self) -> str | None:
        """None when the schema is at the migrations' head; else what is wrong, and what to run."""
        head = head_revision()
        current = current_revision(self.engine)
        if current == head:
            return None
        where = self.engine.url.render_as_string(hide_password=True)
        state = "has no feedsvc tables" if current is None else f"is at migration {current}, not {head}"
        return f"the database {where} {state}: run `feedsvc db upgrade`"

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema up to `revision` (Alembic, run in-process)."""
        upgrade(self.engine, revision)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(engine: Engine | None = None) -> Any:
    """An Alembic Config pointing at feedsvc/db/migrations (found in the installed package, no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("feedsvc.db") / "migrations"))
    if engine is not None:
        config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to `revision` on `engine`."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Run the migrations down to `revision` on `engine`."""
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None before the first upgrade), read as Alembic stores it, without
    loading Alembic (some 7 MB that a worker, which checks this at start, would keep)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        version = table(VERSION_TABLE, column("version_num"))
        stored = [str(v) for v in connection.execute(select(version.c.version_num)).scalars()]
    if len(stored) > 1:
        raise RuntimeError(f"the database has several migration heads: {', '.join(sorted(stored))}")
    return stored[0] if stored else None


def head_revision() -> str | None:
    """The newest revision the code knows: the one no migration names as its down_revision (read from the
    migration files' `revision` and `down_revision` assignments, as Alembic does, without loading Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (resources.files("feedsvc.db") / "migrations" / "versions").iterdir():
        if not path.name.endswith(".py") or path.name.startswith("_"):
            continue
        values = _assignments(path.read_text(encoding="utf-8"), ("revision", "down_revision"))
        revisions.add(values["revision"])
        down = values.get("down_revision")
        parents.update([down] if isinstance(down, str) else down or ())
    heads = sorted(revisions - parents)
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have several heads: {', '.join(heads)}")
    return heads[0] if heads else None


def _assignments(source: str, names: tuple[str, ...]) -> dict[str, Any]:
    """The literal values assigned to `names` at the top level of a module's source."""
    found: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in names and node.value is not None:
                    found[target.id] = ast.literal_eval(node.value)
    return found


def dialect_of(executor: Executor) -> str:
    """``sqlite`` or ``postgresql``: the dialect a session or connection runs on."""
    return (executor if isinstance(executor, Connection) else executor.get_bind()).dialect.name


def insert_for(executor: Executor, table: Any) -> Any:
    """The dialect's INSERT for `table`: with ``on_conflict_do_nothing``/``_do_update`` on SQLite and PostgreSQL."""
    return insert_for_dialect(dialect_of(executor), table)


def insert_for_dialect(dialect: str, table: Any) -> Any:
    """`insert_for` by dialect name (``sqlite``, ``postgresql``), for a statement built once and kept."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)
