"""Settings: where the database lives and where the project's files are.

The database URL comes from, in order: the `--db` option, the LABELTOOL_DB environment
variable, then a SQLite file `labeltool.db` in the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

DB_ENV_VAR = "LABELTOOL_DB"
DEFAULT_DB_URL = "sqlite:///labeltool.db"

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
