"""Alembic environment: runs on a connection handed in by labeltool.db, or on $LABELTOOL_DB."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from labeltool.config import database_url
from labeltool.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=True,
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or database_url()
    engine = create_engine(url)
    with engine.begin() as conn:
        _configure(conn)
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("labeltool migrations run online only (labeltool.db.upgrade)")
run_migrations_online()
