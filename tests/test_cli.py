"""The `labeltool` command: help everywhere, import end to end on a real database, and user
errors as one line on stderr with exit status 1 and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from labeltool.categories import list_categories
from labeltool.cli import cli
from labeltool.config import DB_ENV_VAR, REPO_ROOT
from labeltool.db import Database
from labeltool.models import Example, Project
from tests.conftest import make_rows


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path under `group`, subgroups included."""
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run `labeltool ARGS` in-process, stdout and stderr kept apart."""
    return CliRunner(env=env).invoke(cli, list(args), prog_name="labeltool", catch_exceptions=False)


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", list(_commands(cli)), ids=" ".join)
def test_every_command_has_help_text(path: tuple[str, ...]) -> None:
    """`labeltool CMD --help` exits 0 and shows the command's docstring summary."""
    command = _command(path)
    assert command.help, f"`labeltool {' '.join(path)}` has no docstring"
    summary = " ".join(command.help.split("\n\n")[0].split())

    result = run(*path, "--help")

    assert result.exit_code == 0, result.output
    assert summary in " ".join(result.stdout.split())
    assert f"Usage: labeltool {' '.join(path)}" in result.stdout


def test_the_group_has_help_text_listing_every_command() -> None:
    """`labeltool --help` describes the tool and lists each command."""
    result = run("--help")

    assert result.exit_code == 0
    assert "Error analysis for image classifiers" in result.stdout
    for name in cli.commands:
        assert name in result.stdout


def test_python_dash_m_labeltool_runs_the_same_command() -> None:
    """`python -m labeltool --help` works in a fresh process and shows the import command."""
    completed = subprocess.run(
        [sys.executable, "-m", "labeltool", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    assert "Usage: labeltool" in completed.stdout
    assert "import" in completed.stdout


def test_serve_help_does_not_touch_the_database(tmp_path: Path) -> None:
    """`labeltool serve --help` lists the port and host options without opening the database."""
    db_file = tmp_path / "never.db"

    result = run("--db", f"sqlite:///{db_file}", "serve", "--help")

    assert result.exit_code == 0
    assert "--port" in result.stdout and "--host" in result.stdout
    assert not db_file.exists()


def test_version_option_prints_the_version() -> None:
    """`labeltool --version` prints the package version."""
    from labeltool import __version__

    result = run("--version")

    assert result.exit_code == 0
    assert result.stdout.strip() == f"labeltool, version {__version__}"


def test_import_end_to_end_then_again_is_idempotent(db_url: str, write_predictions) -> None:
    """`labeltool import` stores the file, prints a summary, and a second run changes nothing."""
    path = write_predictions(make_rows(6, errors=2))

    first = run("--db", db_url, "import", str(path), "--project", "run1")
    second = run("--db", db_url, "import", str(path), "--project", "run1")

    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == (
        "project 'run1', new run '1': 6 rows read, 6 added, 0 updated, 0 unchanged; "
        "6 dev examples, 2 misclassified (dev error 33.3%)"
    )
    assert first.stderr == ""
    assert second.exit_code == 0, second.output
    assert "project 'run1', run '1': 6 rows read, 0 added, 0 updated, 6 unchanged" in second.stdout
    assert _example_ids(db_url, "run1") == [f"ex{i:04d}" for i in range(6)]


def test_import_uses_the_labeltool_db_environment_variable(
    tmp_path: Path, write_predictions
) -> None:
    """Without --db, the database comes from $LABELTOOL_DB; --db wins over it."""
    path = write_predictions(make_rows(3, errors=1))
    from_env = f"sqlite:///{tmp_path / 'from_env.db'}"
    from_option = f"sqlite:///{tmp_path / 'from_option.db'}"

    by_env = run("import", str(path), "--project", "env", env={DB_ENV_VAR: from_env})
    by_option = run(
        "--db", from_option, "import", str(path), "--project", "opt", env={DB_ENV_VAR: from_env}
    )

    assert by_env.exit_code == 0 and by_option.exit_code == 0
    assert _project_names(from_env) == ["env"]
    assert _project_names(from_option) == ["opt"]


def test_import_options_classes_images_root_and_missing_images(
    tmp_path: Path, write_predictions
) -> None:
    """--classes sets the class order, --images-root the folder, --allow-missing-images lets
    rows without an image file in."""
    url = f"sqlite:///{tmp_path / 'labeltool.db'}"
    rows = make_rows(3, errors=1)
    path = write_predictions(rows, images=False)
    root = tmp_path / "no-images-here"
    root.mkdir()

    refused = run("--db", url, "import", str(path), "--project", "p", "--images-root", str(root))
    accepted = run(
        "--db", url, "import", str(path), "--project", "p",
        "--images-root", str(root), "--classes", "fox, dog,cat", "--allow-missing-images",
    )  # fmt: skip

    assert refused.exit_code == 1
    assert "image file not found" in refused.stderr
    assert accepted.exit_code == 0, accepted.output
    database = Database.open(url)
    try:
        with database.begin() as session:
            project = session.scalars(select(Project)).one()
            assert project.class_names == ["fox", "dog", "cat"]
            assert project.images_root == str(root.resolve())
    finally:
        database.dispose()


def test_import_with_a_categories_file(tmp_path: Path, write_predictions) -> None:
    """--categories creates the listed categories once and says which were added."""
    url = f"sqlite:///{tmp_path / 'labeltool.db'}"
    path = write_predictions(make_rows(3, errors=1))
    categories = tmp_path / "categories.csv"
    categories.write_text("name,shortcut\nblurry,b\nincorrectly labeled,\n", encoding="utf-8")
    args = ("--db", url, "import", str(path), "--project", "run1", "--categories", str(categories))

    first = run(*args)
    second = run(*args)

    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[-1] == "categories added: blurry, incorrectly labeled"
    assert second.exit_code == 0
    assert "categories added" not in second.stdout
    database = Database.open(url)
    try:
        with database.begin() as session:
            project = session.scalars(select(Project)).one()
            names = [c.name for c in list_categories(session, project_id=project.id)]
        assert names == ["blurry", "incorrectly labeled"]
    finally:
        database.dispose()


def test_bad_file_exits_1_with_one_line_naming_row_and_column(
    db_url: str, write_predictions
) -> None:
    """A bad predictions file gives exit status 1, one stderr line naming row and column, no
    traceback, and imports nothing."""
    rows = make_rows(4, errors=1)
    rows[2]["label"] = ""
    path = write_predictions(rows)

    result = run("--db", db_url, "import", str(path), "--project", "run1")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr == "Error: predictions.csv, row 4, column 'label': is empty\n"
    assert "Traceback" not in result.output
    assert _project_names(db_url) == []


def test_real_process_reports_a_bad_file_in_one_line(tmp_path: Path, write_predictions) -> None:
    """Run as a real process, a bad file still gives exit 1 and a single stderr line."""
    rows = make_rows(3, errors=1)
    rows[1]["confidence"] = "very"
    path = write_predictions(rows)

    completed = subprocess.run(
        [sys.executable, "-m", "labeltool", "import", str(path), "--project", "run1"],
        cwd=tmp_path,
        env={**os.environ, DB_ENV_VAR: f"sqlite:///{tmp_path / 'labeltool.db'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 1
    assert completed.stdout == ""
    assert completed.stderr == (
        "Error: predictions.csv, row 3, column 'confidence': "
        "'very' is not a probability between 0 and 1\n"
    )


def test_bad_categories_file_rolls_the_whole_import_back(tmp_path: Path, write_predictions) -> None:
    """When the categories file is bad, the predictions in the same command are not kept either."""
    url = f"sqlite:///{tmp_path / 'labeltool.db'}"
    path = write_predictions(make_rows(3, errors=1))
    categories = tmp_path / "categories.csv"
    categories.write_text("name,colour\nblurry,red\n", encoding="utf-8")

    result = run(
        "--db", url, "import", str(path), "--project", "run1", "--categories", str(categories)
    )

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: categories.csv, row 2, column 'colour': ")
    assert result.stderr.count("\n") == 1
    assert _project_names(url) == []


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql+psycopg://labeltool:s3cret@127.0.0.1:1/nowhere", "port 1 failed"),
        ("sqlite:////no/such/folder/labeltool.db", "unable to open database file"),
        ("not a database url", "Could not parse"),
        ("nosuchdialect://localhost/db", "nosuchdialect"),
    ],
    ids=["closed port", "missing folder", "malformed url", "unknown backend"],
)
def test_unusable_database_gives_one_line_without_traceback(url: str, words: str) -> None:
    """A database that cannot be reached or named gives exit 1, one line, no traceback, and
    never prints the password."""
    result = run("--db", url, "projects")

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot use the database ")
    assert result.stderr.count("\n") == 1
    assert words in result.stderr
    assert "Traceback" not in result.output
    assert "s3cret" not in result.output


def test_projects_lists_each_project_with_its_dev_error(db_url: str, write_predictions) -> None:
    """`labeltool projects` says when there are none, then lists each with its dev error."""
    empty = run("--db", db_url, "projects")
    run("--db", db_url, "import", str(write_predictions(make_rows(4, errors=1))), "--project", "a")
    listed = run("--db", db_url, "projects")

    assert empty.exit_code == 0
    assert empty.stdout.startswith("no projects yet")
    assert listed.exit_code == 0
    assert listed.stdout == "a\t4 dev examples\t1 misclassified\tdev error 25.0%\n"


# --- helpers ----------------------------------------------------------------------------


def _project_names(url: str) -> list[str]:
    database = Database.open(url)
    try:
        with database.begin() as session:
            return list(session.scalars(select(Project.name).order_by(Project.name)))
    finally:
        database.dispose()


def _example_ids(url: str, project: str) -> list[str]:
    database = Database.open(url)
    try:
        with database.begin() as session:
            return list(
                session.scalars(
                    select(Example.example_id)
                    .join(Project)
                    .where(Project.name == project)
                    .order_by(Example.example_id)
                )
            )
    finally:
        database.dispose()


def test_import_with_embeddings_then_the_embeddings_command(
    db_url: str, write_predictions, tmp_path: Path
) -> None:
    """`import --embeddings FILE` stores a side file's vectors with the import, and
    `labeltool embeddings` replaces them on the run later, saying how many examples have one."""
    import numpy as np
    import pandas as pd

    from labeltool import embeddings

    path = write_predictions(make_rows(4, errors=1))
    side = tmp_path / "emb.parquet"
    pd.DataFrame({"example_id": ["ex0000", "ex0001"], "emb_0": [1.0, 2.0]}).to_parquet(side)
    later = tmp_path / "emb.npz"
    np.savez(later, example_id=np.array(["ex0002"]), embeddings=np.ones((1, 3)))

    first = run("--db", db_url, "import", str(path), "--project", "e", "--embeddings", str(side))
    second = run("--db", db_url, "embeddings", "--project", "e", "--run", "1", str(later))
    unknown = run("--db", db_url, "embeddings", "--project", "e", str(path))

    assert first.exit_code == 0, first.output
    assert first.stdout.strip().endswith("; embeddings for 2 of 4 examples (from emb.parquet)")
    assert second.exit_code == 0, second.output
    assert second.stdout.strip() == (
        "project 'e', run '1': emb.npz: embeddings for 1 of 4 examples (3 dimensions)"
    )
    assert unknown.exit_code == 1
    assert "has no embedding columns" in unknown.stderr
    database = Database.open(db_url)
    try:
        with database.begin() as session:
            pks = session.scalars(select(Example.id).order_by(Example.example_id)).all()
            found, matrix, source = embeddings.load(session, pks=pks)
    finally:
        database.dispose()
    assert (len(found), matrix.shape, source) == (1, (1, 3), "model")
