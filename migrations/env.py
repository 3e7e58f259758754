"""Alembic environment: runs on a connection handed in by labeltool.db, or on $LABELTOOL_DB."""

from __future__ import annotations

import warnings

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.exc import SAWarning

from labeltool.config import database_url
from labeltool.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    _configure(connection)
    with warnings.catch_warnings():
        # SQLite cannot reflect an expression index (uq_categories_project_id_lower_name), so
        # the drift check skips that one index on SQLite; PostgreSQL compares it.
        warnings.filterwarnings(
            "ignore", "Skipped unsupported reflection of expression-based index", SAWarning
        )
        warnings.filterwarnings(
            "ignore", "autogenerate skipping metadata-specified expression-based index"
        )
        context.run_migrations()


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
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or database_url()
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("labeltool migrations run online only (labeltool.db.upgrade)")
run_migrations_online()
