"""The one place that knows how to talk to the database: engine, pragmas, sessions, migrations.

SQLite (the default, one file) gets WAL so reviewers can read while someone writes, foreign
keys, and a busy timeout. PostgreSQL (the team backend) needs nothing special. Either way the
schema is brought to the newest migration when a `Database` is opened, which is safe to repeat.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from labeltool.config import MIGRATIONS_DIR, database_url
from labeltool.errors import LabeltoolError

#: Any constant works; it only has to be the same in every labeltool process.
_PG_MIGRATION_LOCK = 0x1AB3_7001


@dataclass
class Database:
    """An engine and its session factory. Callers own transactions via `begin()`."""

    engine: Engine
    sessionmaker: sessionmaker[Session]

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> Database:
        """Connect to `url` (default: see `config.database_url`) and apply pending migrations."""
        engine = make_engine(database_url(url))
        if migrate:
            upgrade(engine)
        return cls(engine=engine, sessionmaker=sessionmaker(engine, expire_on_commit=False))

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """One transaction: commits when the block ends, rolls back if it raises."""
        with self.sessionmaker.begin() as session:
            yield session

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def make_engine(url: str) -> Engine:
    """Create an engine with the pragmas each backend needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    engine = create_engine(url, connect_args={"timeout": 30})
    in_memory = parsed.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no branch - tiny
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "savepoint")
    def _begin_before_savepoint(connection, _name):  # pragma: no branch - tiny
        # The driver sends BEGIN only before the first INSERT/UPDATE/DELETE; a SAVEPOINT
        # before one would open the transaction itself, and releasing it would commit the
        # caller's whole transaction, so a later rollback could not undo it.
        # IMMEDIATE: a savepoint is opened only to write (each review-screen action has one).
        # A deferred transaction would read first and then, if another reviewer wrote in
        # between, fail at its first write with "database is locked" at once; an immediate
        # one waits its turn for the write lock (the busy timeout) before reading anything.
        driver = connection.connection.driver_connection
        if not driver.in_transaction:
            driver.execute("BEGIN IMMEDIATE")

    return engine


def alembic_config(engine: Engine | None = None):
    """An Alembic Config pointing at our migrations/ (and at `engine`, when given)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.set_main_option(
            "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`. Safe to run on every start, from several processes."""
    from alembic import command

    with _migration_connection(engine) as connection:
        if engine.dialect.name == "postgresql":
            # Two processes starting at once must not both create the tables.
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision` (used by tests and by hand, never automatically)."""
    from alembic import command

    with _migration_connection(engine) as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


# --- private helpers -------------------------------------------------------------------


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction to run migrations on; on SQLite, foreign keys are off.

    SQLite's batch mode rebuilds a table by copying it and dropping the old one; with foreign
    keys on, that DROP fires ON DELETE CASCADE and empties every table referring to it (a
    downgrade of `projects` lost every example, tag and review). As Alembic documents, foreign
    keys go off for the migration (the pragma is ignored inside a transaction, so it is set
    before one begins), PRAGMA foreign_key_check must find nothing before the commit, and
    they go back on before the connection returns to the pool. The driver would leave DDL
    outside the transaction, so BEGIN is sent by hand: a refused migration leaves no trace.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            yield connection
        return
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        saved_isolation = driver.isolation_level
        driver.isolation_level = None  # the driver sends no BEGIN or COMMIT of its own
        try:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            # IMMEDIATE: two processes starting at once take turns, as on PostgreSQL.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield connection
                _refuse_foreign_key_violations(connection)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
            driver.isolation_level = saved_isolation


def _refuse_foreign_key_violations(connection: Connection) -> None:
    """Raise (rolling the migration back) when a row refers to a row that does not exist."""
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if violations:
        table, rowid, parent = violations[0][:3]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise LabeltoolError(
            f"migration refused: row {rowid} of table '{table}' refers to a missing row of "
            f"'{parent}'{more}; nothing was changed"
        )
