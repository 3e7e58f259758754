"""The import folder: the only files on this machine that the web pages may read.

The operator names it with $LABELTOOL_IMPORT_ROOT (`config.import_root`); unset, the pages
read no file of the server at all, and importing from a path belongs to `labeltool import`
on the machine itself. A path typed on a page is taken inside the folder through the same
safe join as every image path (`importing.safe_image_path`: no `..` above it, no absolute path
outside it), then resolved with its links followed and checked again, so a link cannot lead
out. The app's own SQLite database (and its -wal, -shm and -journal files) is refused even
inside the folder. Every refusal comes before a byte of the file is read, so no message can
show what a file holds: messages name the typed path and the reason only.
"""

from __future__ import annotations

import os
from pathlib import Path

from labeltool.config import IMPORT_ROOT_ENV_VAR
from labeltool.errors import InvalidInput, UnsafePath
from labeltool.storage import safe_image_path

#: The predictions files a page may read from the import folder.
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def predictions_file(typed: str, *, root: Path, database_file: Path | None = None) -> Path:
    """The predictions file `typed` names inside the import folder `root`, resolved.

    A relative path is taken from `root`; an absolute one must lie inside it. Raises
    UnsafePath for a path outside the folder or the app's database, InvalidInput for a file
    that is missing or not CSV or Parquet.
    """
    path = _inside(typed, root=root)
    if database_file is not None and _is_database(path, database_file):
        raise UnsafePath("is the app's own database; it cannot be imported", file=typed.strip())
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise InvalidInput(
            "is not a predictions file (.csv or .parquet) in the import folder", file=typed.strip()
        )
    if not path.is_file():
        raise InvalidInput("file not found in the import folder", file=typed.strip())
    return path


def images_folder(typed: str, *, root: Path) -> Path:
    """The images folder `typed` names inside the import folder `root` (blank: `root`)."""
    path = _inside(typed.strip() or ".", root=root, what="images root")
    if not path.is_dir():
        raise InvalidInput(f"images root '{typed.strip()}' is not a folder in the import folder")
    return path


# --- private helpers -------------------------------------------------------------------


def _inside(typed: str, *, root: Path, what: str | None = None) -> Path:
    """`typed` joined safely onto `root` and resolved; UnsafePath if it is not inside."""
    base = Path(root).resolve()
    if not base.is_dir():
        raise InvalidInput(f"the import folder '{root}' ({IMPORT_ROOT_ENV_VAR}) is not a folder")
    text = typed.strip()
    if not text:
        raise InvalidInput("give a path inside the import folder")

    def refuse(reason: str) -> UnsafePath:
        if what:
            return UnsafePath(f"{what} '{text}' {reason}")
        return UnsafePath(reason, file=text)

    outside = f"is outside the import folder '{base}'"
    if os.path.isabs(text):
        absolute = Path(os.path.normpath(text))
        for start in (Path(os.path.normpath(root)).absolute(), base):
            if absolute.is_relative_to(start):
                text = absolute.relative_to(start).as_posix()
                break
        else:
            raise refuse(outside)
    try:
        relative = safe_image_path(text)
    except ValueError:
        raise refuse(outside) from None
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise refuse(f"is a link that leads outside the import folder '{base}'")
    return path


def _is_database(path: Path, database_file: Path) -> bool:
    """Whether `path` is the SQLite file `database_file` or one of its companion files."""
    database = Path(database_file).resolve()
    for guarded in (database, *(Path(f"{database}{end}") for end in ("-wal", "-shm", "-journal"))):
        if path == guarded:
            return True
        try:
            if path.exists() and guarded.exists() and os.path.samefile(path, guarded):
                return True
        except OSError:
            continue
    return False
