"""Settings: where the database lives and where the project's files are.

The database URL comes from, in order: the `--db` option, the LABELTOOL_DB environment
variable, then a SQLite file `labeltool.db` in the working directory.

The web pages read files on this machine only inside the import folder that the operator
names with LABELTOOL_IMPORT_ROOT (see labeltool.import_folder); unset, they read none.
"""

from __future__ import annotations

import os
from pathlib import Path

DB_ENV_VAR = "LABELTOOL_DB"
DEFAULT_DB_URL = "sqlite:///labeltool.db"
#: The folder the web pages may import predictions and images from (unset: none).
IMPORT_ROOT_ENV_VAR = "LABELTOOL_IMPORT_ROOT"

#: The repository root (app.py, migrations/, sample_data/ live here).
REPO_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = REPO_ROOT / "migrations"
APP_PATH = REPO_ROOT / "app.py"
SAMPLE_DIR = REPO_ROOT / "sample_data"

#: Splits an example may belong to. Only `dev` errors are reviewed; the others feed
#: the bias / variance / data-mismatch comparison.
SPLITS = ("dev", "train", "train-dev", "test")
DEFAULT_SPLIT = "dev"


def database_url(explicit: str | None = None) -> str:
    """Return the database URL to use: explicit value, then $LABELTOOL_DB, then the default."""
    return explicit or os.environ.get(DB_ENV_VAR) or DEFAULT_DB_URL


def import_root() -> Path | None:
    """The operator's import folder from $LABELTOOL_IMPORT_ROOT, or None when it is unset."""
    value = os.environ.get(IMPORT_ROOT_ENV_VAR, "").strip()
    return Path(value) if value else None


def database_file(url: str) -> Path | None:
    """The SQLite file behind `url`, or None for a database server or SQLite in memory."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)
