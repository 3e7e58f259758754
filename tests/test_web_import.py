"""The Projects page reads no file of the server outside the operator's import folder: without
LABELTOOL_IMPORT_ROOT it offers no import at all, and with it a system file, a `..` path, an
absolute path outside, a link leading out and the app's own database are refused before they
are read, with a message that shows nothing of them; files inside the folder import."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from labeltool.config import IMPORT_ROOT_ENV_VAR
from labeltool.db import Database
from labeltool.import_folder import images_folder, predictions_file
from labeltool.models import Project
from tests.conftest import make_rows

PROJECTS = "app_pages/projects.py"
#: A file beside the import folder that the page must never read.
SECRET = "SECRET_HEADER,token\nhunter2,42\n"
#: Words of files the page must never show: the secret file, /etc/passwd, a SQLite file.
NEVER_SHOWN = ["SECRET_HEADER", "hunter2", "root:", "SQLite format"]


@pytest.fixture
def imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The import folder (tmp_path/project, where write_predictions writes), set as
    LABELTOOL_IMPORT_ROOT, with tmp_path/secret.csv beside it."""
    folder = tmp_path / "project"
    folder.mkdir()
    (tmp_path / "secret.csv").write_text(SECRET, encoding="utf-8")
    monkeypatch.setenv(IMPORT_ROOT_ENV_VAR, str(folder))
    return folder


@pytest.fixture
def app_db(imports: Path) -> Iterator[Database]:
    """The app's SQLite database, kept inside the import folder."""
    database = Database.open(f"sqlite:///{imports / 'labeltool.db'}")
    yield database
    database.dispose()


def submit(at: AppTest, *, path: str = "", images: str = "") -> AppTest:
    at.text_input(key="import_project").input("run2")
    at.text_input(key="import_path").input(path)
    at.text_input(key="import_root").input(images)
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception, at.exception
    return at


def project_names(database: Database) -> list[str]:
    with database.begin() as session:
        return list(session.scalars(select(Project.name)))


def test_without_an_import_folder_the_page_reads_no_server_file(
    sqlite_db: Database, run_app, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With LABELTOOL_IMPORT_ROOT unset there is no path box (and no upload, whose images would
    be server files); the page says the command line imports."""
    monkeypatch.delenv(IMPORT_ROOT_ENV_VAR, raising=False)
    at = run_app(sqlite_db, PROJECTS)

    assert "import_path" not in [t.key for t in at.text_input]
    assert "import_root" not in [t.key for t in at.text_input]
    assert len(at.get("file_uploader")) == 0
    (note,) = [i.value for i in at.info if IMPORT_ROOT_ENV_VAR in i.value]
    assert "labeltool import" in note


#: What is typed in the path box, from the import folder's parent (tmp_path) -> its reason.
REFUSED: dict[str, tuple[Callable[[Path], str], str]] = {
    "a system file": (lambda _tmp: "/etc/passwd", "outside the import folder"),
    "a .. path": (lambda _tmp: "../secret.csv", "outside the import folder"),
    "an absolute path outside": (lambda tmp: str(tmp / "secret.csv"), "outside the import folder"),
    "an absolute path with ..": (
        lambda tmp: str(tmp / "project" / ".." / "secret.csv"),
        "outside the import folder",
    ),
    "a link leading out": (lambda _tmp: "link.csv", "a link that leads outside"),
    "the database": (lambda _tmp: "labeltool.db", "the app's own database"),
    "the database by its absolute path": (
        lambda tmp: str(tmp / "project" / "labeltool.db"),
        "the app's own database",
    ),
    "the database's -wal file": (lambda _tmp: "labeltool.db-wal", "the app's own database"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_paths_outside_the_import_folder_or_to_the_database_are_refused_unread(
    app_db: Database, imports: Path, run_app, case: str
) -> None:
    """Each path is refused with one error naming the reason, the error shows nothing the file
    holds, and no project is created."""
    (imports / "link.csv").symlink_to(imports.parent / "secret.csv")
    typed, reason = REFUSED[case]
    at = submit(run_app(app_db, PROJECTS), path=typed(imports.parent))

    (error,) = [e.value for e in at.error]
    assert reason in error
    assert [word for word in NEVER_SHOWN if word in error] == []
    assert project_names(app_db) == []


def test_a_file_inside_the_import_folder_imports(
    app_db: Database, imports: Path, run_app, write_predictions
) -> None:
    """A path relative to the import folder imports; its images root defaults to its folder."""
    write_predictions(make_rows(6, errors=2), name="run2.csv")
    at = submit(run_app(app_db, PROJECTS), path="run2.csv")

    assert [e.value for e in at.error] == []
    assert any("project 'run2'" in s.value and "2 misclassified" in s.value for s in at.success)
    with app_db.begin() as session:
        project = session.scalars(select(Project)).one()
    assert Path(project.images_root) == imports.resolve()


@pytest.mark.parametrize("images", ["..", "/etc", "../../.."])
def test_an_upload_cannot_name_an_images_root_outside_the_import_folder(
    app_db: Database, imports: Path, run_app, write_predictions, images: str
) -> None:
    """An uploaded file whose images root is outside the import folder is refused, unread."""
    path = write_predictions(make_rows(6, errors=2), name="run2.csv")
    at = run_app(app_db, PROJECTS)
    at.get("file_uploader")[0].set_value(("run2.csv", path.read_bytes(), "text/csv"))
    submit(at, images=images)

    (error,) = [e.value for e in at.error]
    assert f"images root '{images}' is outside the import folder" in error
    assert project_names(app_db) == []


def test_an_upload_takes_its_images_from_the_import_folder(
    app_db: Database, imports: Path, run_app, write_predictions
) -> None:
    """An uploaded file with no images root given finds its images in the import folder."""
    path = write_predictions(make_rows(6, errors=2), name="run2.csv")
    at = run_app(app_db, PROJECTS)
    at.get("file_uploader")[0].set_value(("run2.csv", path.read_bytes(), "text/csv"))
    submit(at)

    assert [e.value for e in at.error] == []
    assert project_names(app_db) == ["run2"]


def test_the_core_refuses_before_reading(tmp_path: Path) -> None:
    """predictions_file and images_folder refuse paths that leave the folder, without reading."""
    root = tmp_path / "imports"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "run.csv").write_text("x\n", encoding="utf-8")

    assert predictions_file("sub/run.csv", root=root) == (root / "sub" / "run.csv").resolve()
    assert predictions_file(str(root / "sub" / "run.csv"), root=root).name == "run.csv"
    assert images_folder("", root=root) == root.resolve()
    assert images_folder("sub", root=root) == (root / "sub").resolve()
    for typed in ("../x.csv", "sub/../../x.csv", "/etc/passwd", "C:/x.csv"):
        with pytest.raises(Exception, match="outside the import folder"):
            predictions_file(typed, root=root)


def test_the_page_checks_images_as_deep_as_the_reviewer_chooses(
    imports: Path, app_db: Database, run_app, write_predictions
) -> None:
    """A file naming a missing image is refused by the default check (file exists), naming
    the row and the image column; with "Don't check" chosen the same file imports."""
    write_predictions(make_rows(4, errors=2), images=False)
    write_predictions(make_rows(4, errors=2)[:3], name="partial.csv")  # images of rows 0-2

    at = run_app(app_db, PROJECTS)
    submit(at, path="predictions.csv")
    (error,) = [e.value for e in at.error]
    assert "row 5, column 'image': image file not found" in error
    assert project_names(app_db) == []

    at = run_app(app_db, PROJECTS)
    at.segmented_control(key="import_check").set_value("none")
    submit(at, path="predictions.csv")
    assert not at.error, [e.value for e in at.error]
    assert project_names(app_db) == ["run2"]
