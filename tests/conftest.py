"""Shared fixtures: real databases (a SQLite file, and PostgreSQL when configured), real images.

`db_url` is the one factory: every test that takes it runs once on a fresh SQLite file and,
when LABELTOOL_TEST_DATABASE_URL is set, once more on the PostgreSQL server in a schema of
its own that is dropped afterwards. Other fixtures are one-line variants of it.
"""

from __future__ import annotations

import csv
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, text

from labeltool.config import SAMPLE_DIR
from labeltool.db import Database
from labeltool.models import Base
from labeltool.renditions import CACHE_ENV_VAR

# The tests' renditions (and those of the servers they start) go to a folder of their own, not
# the user's cache directory.
os.environ.setdefault(CACHE_ENV_VAR, tempfile.mkdtemp(prefix="labeltool-test-renditions-"))

PG_ENV = "LABELTOOL_TEST_DATABASE_URL"

#: Shared scenarios whose fixtures every test may use.
pytest_plugins = ["tests.review_scenario", "tests.app_scenario"]


def _postgres_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@contextmanager
def postgres_schema(base: str, *, prefix: str = "t") -> Iterator[str]:
    """A URL to a fresh, empty schema on the PostgreSQL server at `base`, dropped afterwards.

    Tests and benchmarks get a database of their own without creating databases.
    """
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'labeltool.db'}"
        return
    base = _postgres_url()
    if base is None:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    with postgres_schema(base) as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """An opened, migrated database."""
    database = Database.open(db_url)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database only (for tests that are about SQLite itself or the UI)."""
    database = Database.open(f"sqlite:///{tmp_path / 'labeltool.db'}")
    yield database
    database.dispose()


@pytest.fixture
def run_app(monkeypatch: pytest.MonkeyPatch):
    """The one factory for the app under test: run_app(database, page=None) runs the real
    app.py through AppTest on `database`, switched to `page` (e.g. "app_pages/report.py"),
    opened with the URL's `query_params` when given (e.g. {"project": "run2"}).

    Streamlit's caches are process-wide, so they are cleared before and after each test: each
    test gets its own cached Database.
    """
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from labeltool.config import APP_PATH, DB_ENV_VAR

    st.cache_resource.clear()
    st.cache_data.clear()

    def run(
        database: Database, page: str | None = None, *, query_params: dict | None = None
    ) -> AppTest:
        url = database.engine.url.render_as_string(hide_password=False)
        monkeypatch.setenv(DB_ENV_VAR, url)
        app = AppTest.from_file(str(APP_PATH), default_timeout=60)
        if page is not None:
            app.switch_page(page)
        for name, value in (query_params or {}).items():
            app.query_params[name] = value
        app.run()
        assert not app.exception, app.exception
        return app

    yield run
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def sample_dir() -> Path:
    """The bundled sample project (built by sample_data/build_sample.py)."""
    if not (SAMPLE_DIR / "predictions.csv").exists():
        pytest.fail("sample_data/predictions.csv is missing: run `make sample`")
    return SAMPLE_DIR


@pytest.fixture
def shapes_dir(sample_dir: Path) -> Path:
    """The bundled photo-like sample project `shapes` (sample_data/shapes/)."""
    return sample_dir / "shapes"


@pytest.fixture
def write_predictions(tmp_path: Path):
    """Write a predictions CSV and a real PNG for every row; return the CSV's path.

    rows: dicts with example_id, image, label, prediction and any optional columns.
    """

    def write(rows: list[dict], *, name: str = "predictions.csv", images: bool = True) -> Path:
        folder = tmp_path / "project"
        folder.mkdir(exist_ok=True)
        columns: list[str] = []
        for row in rows:
            columns += [c for c in row if c not in columns]
        path = folder / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        if images:
            for number, row in enumerate(rows):
                image = folder / str(row["image"])
                if image.resolve().is_relative_to(folder.resolve()) and not image.exists():
                    image.parent.mkdir(parents=True, exist_ok=True)
                    Image.new("L", (8, 8), color=(number * 37) % 256).save(image)
        return path

    return write


def make_rows(
    n: int, *, errors: int, classes: tuple[str, ...] = ("cat", "dog", "fox")
) -> list[dict]:
    """`n` prediction rows of which the first `errors` are misclassified."""
    rows = []
    for i in range(n):
        label = classes[i % len(classes)]
        prediction = classes[(i + 1) % len(classes)] if i < errors else label
        rows.append(
            {
                "example_id": f"ex{i:04d}",
                "image": f"images/ex{i:04d}.png",
                "label": label,
                "prediction": prediction,
                "confidence": f"{0.5 + (i % 50) / 100:.2f}",
            }
        )
    return rows


def table_contents(db: Database) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order: the database's full state."""
    with db.engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(table.select().order_by(*table.primary_key))
            ]
            for table in Base.metadata.sorted_tables
        }


@contextmanager
def recorded_statements(target=None) -> Iterator[list[str]]:
    """Every SQL statement run inside the block, on `target` (an engine; default: any)."""
    from sqlalchemy import Engine, event

    target = Engine if target is None else target
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(target, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(target, "before_cursor_execute", record)


@contextmanager
def loaded_examples() -> Iterator[list]:
    """Every Example the ORM builds from a row inside the block (none: nothing loaded whole)."""
    from sqlalchemy import event

    from labeltool.models import Example

    seen: list = []

    def record(target, _context) -> None:
        seen.append(target)

    event.listen(Example, "load", record)
    try:
        yield seen
    finally:
        event.remove(Example, "load", record)
