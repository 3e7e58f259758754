"""The chunked importer's promises, shown with tiny files cut into many chunks.

A predictions file is read, checked and written a chunk at a time (`chunk_rows`), so a user
with a million rows gets the same result as one with ten: every row lands exactly as in the
file, nothing lands when any row is bad (whichever chunk it is in, bulk mode or not), the
message names the earliest bad row and counts its like across chunks, each image is looked
at once, and re-imports change only what changed. The tests read 1 to 5 rows a chunk, so chunk
boundaries fall all over small files with real PNGs beside them (and compare with one chunk).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

import labeltool.importing as importing
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.errors import InvalidInput, UnsafePath
from labeltool.importing import ImportSummary, import_predictions, shuffle_key, shuffle_keys
from labeltool.models import Example, Project, ReviewState, Run
from labeltool.storage import LocalRoot
from labeltool.tables import Problems, Table
from tests.conftest import make_rows, table_contents

PROJECT = "chunked"
CLASSES = ("cat", "dog", "fox")
#: A cycle of split cells: an empty one means "dev".
SPLIT_CELLS = ("dev", "train", "", "test", "dev", "train-dev")
#: The examples table's indexes and the trigger a bulk import drops and makes again.
REBUILT = {
    "ix_examples_queue",
    "ix_examples_state",
    "ix_examples_errors_by_pair",
    "ix_examples_project_id_example_id",
    "lt_version_examples_insert",
}


# --- a file of many chunks lands exactly --------------------------------------------------


def test_a_file_of_many_chunks_lands_row_for_row(db: Database, write_predictions) -> None:
    """Every row of a file read 4 rows at a time is stored with its own id, image, label,
    prediction, confidence, probabilities and split, in file order, and the summary counts
    the rows, the dev examples and the dev errors of the whole file."""
    rows = varied_rows(37)
    path = write_predictions(rows)

    summary = import_file(db, path, chunk_rows=4)

    dev = [r for r in rows if r["split"] in ("", "dev")]
    misclassified = sum(r["label"] != r["prediction"] for r in dev)
    assert (summary.rows, summary.inserted, summary.updated, summary.unchanged) == (37, 37, 0, 0)
    assert (summary.dev_examples, summary.misclassified) == (len(dev), misclassified)
    assert (len(dev), misclassified) == (19, 12)  # the file is what the numbers above say
    assert summary.class_names == list(CLASSES)
    assert stored_values(db) == [expected_values(r) for r in rows]


def test_many_chunks_store_the_same_as_one_chunk(db: Database, write_predictions) -> None:
    """Cutting the file into chunks changes nothing stored: the same file imported 3 rows at
    a time and all at once gives the same examples (shuffle keys, errors, states included)
    and the same project settings, ids and timestamps aside."""
    path = write_predictions(varied_rows(29))

    many = import_file(db, path, project="many", chunk_rows=3)
    one = import_file(db, path, project="one", chunk_rows=10_000)

    assert (many.rows, many.dev_examples, many.misclassified) == (
        one.rows,
        one.dev_examples,
        one.misclassified,
    )
    assert len(stored_rows(db, "many")) == 29
    assert stored_rows(db, "many") == stored_rows(db, "one")
    with db.begin() as session:
        settings = {
            p.name: (p.class_names, p.images_root) for p in session.scalars(select(Project))
        }
    assert settings["many"] == settings["one"] == (list(CLASSES), str(path.parent.resolve()))


# --- all or nothing -----------------------------------------------------------------------

#: Where the bad row sits in a 40-row file read 5 rows at a time (8 chunks): its position.
BAD_ROW_AT = {"first chunk": 1, "middle chunk": 22, "last chunk": 39}


@pytest.mark.parametrize("bulk", [False, True], ids=["row by row", "bulk"])
@pytest.mark.parametrize("where", list(BAD_ROW_AT))
def test_a_bad_row_in_any_chunk_leaves_the_database_as_it_was(
    db: Database,
    write_predictions,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    bulk: bool,
) -> None:
    """A bad value in the first, a middle or the last chunk is refused naming file, row and
    column, and although earlier chunks were already written, nothing stays, even when the
    caller swallows the error and commits; in bulk mode SQLite gets back the indexes and the
    trigger it dropped."""
    import_file(db, write_predictions(make_rows(3, errors=1), name="base.csv"), project="base")
    inserted = spy_on_inserts(monkeypatch)
    bulk_started = spy_on_bulk_start(monkeypatch)
    if bulk:
        monkeypatch.setattr(importing, "BULK_ROWS", 1)
    rows = varied_rows(40)
    position = BAD_ROW_AT[where]
    rows[position]["confidence"] = "high"
    path = write_predictions(rows)
    before, schema_before = table_contents(db), examples_schema(db)

    error = refuse(db, path, chunk_rows=5)

    assert str(error) == (
        f"predictions.csv, row {position + 2}, column 'confidence': "
        "'high' is not a probability between 0 and 1"
    )
    assert (error.file, error.row, error.column, error.more) == (
        "predictions.csv",
        position + 2,
        "confidence",
        0,
    )
    # The reader runs at most two chunks ahead of the writer: chunks 1-2 were written before
    # the bad row in chunk 5 or 8 was seen; a bad first chunk stops every write.
    if where == "first chunk":
        assert sum(inserted) == 0
    else:
        assert sum(inserted) >= 10
    assert bulk_started == ([1] if bulk else [])
    assert table_contents(db) == before
    assert examples_schema(db) == schema_before
    if is_sqlite(db):
        assert REBUILT.issubset(name for _kind, name, _sql in schema_before)


def test_a_bulk_import_rebuilds_the_indexes_and_bumps_the_data_version_once(
    db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A successful bulk import (forced from 1 row) lands exactly; on SQLite the indexes and
    insert trigger it dropped while writing are back, identical, and the project's
    data_version has changed (the dropped trigger no longer bumps it, so `finish` must)."""
    monkeypatch.setattr(importing, "BULK_ROWS", 1)
    import_file(db, write_predictions(make_rows(3, errors=1), name="base.csv"), project=PROJECT)
    schema_before, version_before = examples_schema(db), data_version(db)
    while_writing: list[set] = []
    original_finish = importing._Writer.finish

    def finish(self) -> None:
        if self.dialect == "sqlite":
            while_writing.append(examples_schema(self.session.connection()))
        original_finish(self)

    monkeypatch.setattr(importing._Writer, "finish", finish)
    rows = varied_rows(30)
    path = write_predictions(rows)

    summary = import_file(db, path, run="2", allow_different_examples=True, chunk_rows=4)

    assert (summary.run, summary.new_run, summary.inserted) == ("2", True, 30)
    assert stored_values(db, run="2") == [expected_values(r) for r in rows]
    assert examples_schema(db) == schema_before
    if is_sqlite(db):
        dropped = {name for _kind, name, _sql in schema_before} - {
            name for _kind, name, _sql in while_writing[0]
        }
        assert dropped == REBUILT  # bulk mode really ran
        assert data_version(db) != version_before


# --- the earliest problem, counted across chunks --------------------------------------------


@pytest.mark.parametrize("chunk_rows", [1, 3, 5, 1_000])
def test_the_earliest_bad_row_is_named_and_its_like_counted_across_chunks(
    db: Database, write_predictions, chunk_rows: int
) -> None:
    """The same unknown label in rows 4, 9 and 15 gives the same message however the file is
    cut: row 4, and 2 more rows like it (found in other chunks)."""
    rows = varied_rows(20)
    for position in (2, 7, 13):
        rows[position]["label"] = "cow"
    path = write_predictions(rows)

    error = refuse(db, path, chunk_rows=chunk_rows)

    assert str(error) == (
        "predictions.csv, row 4, column 'label': unknown label 'cow' "
        "(known classes: cat, dog, fox) (and 2 more rows like it)"
    )
    assert table_contents(db)["examples"] == []


@pytest.mark.parametrize("image_first", [True, False], ids=["image first", "value first"])
def test_of_two_problems_in_different_chunks_the_earlier_row_wins(
    db: Database, write_predictions, image_first: bool
) -> None:
    """A missing image (found by the image check after the whole file was read) and a bad
    confidence in another chunk: whichever row comes first in the file is the one named."""
    rows = varied_rows(16, shared_images=16)
    image_at, value_at = (3, 10) if image_first else (10, 3)
    rows[image_at]["image"] = "images/gone.png"
    rows[value_at]["confidence"] = "high"
    path = write_predictions(rows)
    (path.parent / "images" / "gone.png").unlink()

    error = refuse(db, path, chunk_rows=3)

    assert error.row == 5
    if image_first:
        assert (error.column, error.more) == ("image", 0)
        assert "image file not found" in str(error)
    else:
        assert str(error) == (
            "predictions.csv, row 5, column 'confidence': "
            "'high' is not a probability between 0 and 1"
        )


def test_over_long_cells_in_several_chunks_are_counted_together(
    db: Database, write_predictions
) -> None:
    """Cells over 100,000 characters in rows 4, 9 and 15 are counted like any other problem:
    row 4, and 2 more rows like it, whatever the chunking."""
    rows = varied_rows(20)
    for position in (2, 7, 13):
        rows[position]["label"] = "x" * 100_001
    path = write_predictions(rows)

    messages = {str(refuse(db, path, chunk_rows=n)) for n in (5, 1_000)}

    assert messages == {
        "predictions.csv, row 4, column 'label': a cell has at most 100,000 characters "
        "(and 2 more rows like it)"
    }


def test_the_earliest_over_long_cell_is_named_whatever_its_column(
    db: Database, write_predictions
) -> None:
    """An over-long label in row 3 and an over-long example_id in row 7 of one chunk: row 3,
    the earlier, is named (as it is when the two rows fall in different chunks)."""
    rows = varied_rows(10)
    rows[1]["label"] = "x" * 100_001
    rows[5]["example_id"] = "y" * 100_001
    path = write_predictions(rows)

    rows_named = [refuse(db, path, chunk_rows=n).row for n in (3, 1_000)]

    assert rows_named == [3, 3]


def test_an_id_repeated_in_a_later_chunk_is_refused_naming_its_first_row(
    db: Database, write_predictions
) -> None:
    """An example_id seen in row 5 again in rows 16 and 20 (other chunks) is refused at row
    16, naming row 5 as its first, and counts the other repeat."""
    rows = make_rows(22, errors=4)
    rows[14]["example_id"] = rows[18]["example_id"] = rows[3]["example_id"]
    path = write_predictions(rows)

    error = refuse(db, path, chunk_rows=4)

    assert str(error) == (
        "predictions.csv, row 16, column 'example_id': example_id 'ex0003' appears twice in "
        "the file (first in row 5) (and 1 more row like it)"
    )
    assert table_contents(db)["examples"] == []


# --- row numbers: short rows and blank lines ------------------------------------------------


@pytest.mark.parametrize("cut_at", [12, 7], ids=["cut at the end", "short row midway"])
def test_a_short_row_in_a_later_chunk_is_refused_with_its_row(
    db: Database, write_predictions, cut_at: int
) -> None:
    """A row with 3 of the header's 5 fields (a file cut mid-row, or a row missing its last
    cells) in a later chunk is refused at its row instead of importing with empty cells."""
    path = write_predictions(make_rows(12, errors=3))
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.append("ex0012,images/ex0000.png,cat,dog,0.9")
    lines[cut_at] = ",".join(lines[cut_at].split(",")[:3])
    path.write_text("\n".join(lines[:-1] if cut_at == 12 else lines), encoding="utf-8")

    error = refuse(db, path, chunk_rows=3)

    assert str(error) == (
        f"predictions.csv, row {cut_at + 1}, column 'prediction': is empty: the row stops "
        "after 3 of the header's 5 fields (was the file cut short?)"
    )
    assert table_contents(db)["examples"] == []


def test_blank_lines_keep_spreadsheet_row_numbers_across_chunks(
    db: Database, write_predictions
) -> None:
    """Blank lines (one, then a run of three that fills a whole chunk) are skipped, yet a bad
    row after them is named by its line in the file, as a spreadsheet shows it."""
    path = write_predictions(make_rows(12, errors=3))
    header, *body = path.read_text(encoding="utf-8").splitlines()
    lines = [header, *body[:2], "", *body[2:6], "", "", "", *body[6:10], "", *body[10:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    good = import_file(db, path, project="with-blank-lines", chunk_rows=3)
    bad_line = lines.index(body[10])
    lines[bad_line] = lines[bad_line].rsplit(",", 1)[0] + ",high"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    error = refuse(db, path, chunk_rows=3)

    assert (good.rows, good.inserted) == (12, 12)
    assert [values[0] for values in stored_rows(db, "with-blank-lines")] == [
        f"ex{i:04d}" for i in range(12)
    ]
    assert bad_line + 1 == 17
    assert str(error) == (
        "predictions.csv, row 17, column 'confidence': 'high' is not a probability between 0 and 1"
    )


# --- images -------------------------------------------------------------------------------


def test_each_image_is_checked_once_however_many_rows_and_chunks_share_it(
    db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 rows in 10 chunks share 4 images, written three ways chunk by chunk ("a.png",
    "./a.png", "images//a.png"): each image is looked at exactly once, and all are."""
    checked = spy_on_image_checks(monkeypatch)
    spellings = ("images/shared{}.png", "./images/shared{}.png", "images//shared{}.png")
    rows = make_rows(30, errors=5)
    for i, row in enumerate(rows):
        row["image"] = spellings[(i // 3) % 3].format(i % 4)
    path = write_predictions(rows)

    summary = import_file(db, path, chunk_rows=3, check_images="open")

    flat = [image for call in checked for image in call]
    assert summary.inserted == 30
    assert sorted(flat) == [f"images/shared{i}.png" for i in range(4)]
    assert {stored[1] for stored in stored_rows(db)} == set(flat)


def test_an_image_spelled_three_ways_in_one_chunk_is_checked_once(
    db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "images/a.png", "./images/a.png" and "images//a.png" in one chunk are one image: it is
    looked at once, not three times."""
    checked = spy_on_image_checks(monkeypatch)
    rows = make_rows(3, errors=1)
    for row, spelling in zip(
        rows, ("images/a.png", "./images/a.png", "images//a.png"), strict=True
    ):
        row["image"] = spelling
    path = write_predictions(rows)

    import_file(db, path, chunk_rows=5)

    assert [image for call in checked for image in call] == ["images/a.png"]


@pytest.fixture
def image_folder(db: Database, write_predictions) -> Path:
    """Project "base" imported; its folder holds images/ex0000.png to ex0015.png and a
    "broken.png" that is text, not an image."""
    path = write_predictions(make_rows(16, errors=3), name="base.csv")
    import_file(db, path, project="base")
    (path.parent / "images" / "broken.png").write_text("this is not a PNG", encoding="utf-8")
    return path.parent


def test_check_images_none_imports_a_row_whose_image_is_missing(
    db: Database, image_folder: Path
) -> None:
    """With the image check off, row 13's missing image (in the fourth chunk) imports."""
    path = with_image(image_folder, 11, "images/gone.png")

    summary = import_file(db, path, chunk_rows=4, check_images="none")

    assert summary.inserted == 16
    assert stored_rows(db)[11][:2] == ("ex0011", "images/gone.png")


def test_check_images_exists_refuses_a_missing_image_naming_its_full_path(
    db: Database, image_folder: Path
) -> None:
    """The default check refuses row 13's missing image, naming the row, the image column and
    the full path it looked for."""
    path = with_image(image_folder, 11, "images/gone.png")
    before = table_contents(db)

    error = refuse(db, path, chunk_rows=4, check_images="exists")

    full = image_folder.resolve() / "images" / "gone.png"
    assert str(error) == (
        f"predictions.csv, row 13, column 'image': image file not found: '{full}' "
        "(is --images-root right?)"
    )
    assert table_contents(db) == before


def test_a_corrupt_image_passes_the_exists_check_and_fails_the_open_check(
    db: Database, image_folder: Path
) -> None:
    """A text file saved as .png in row 13 exists, so "exists" imports it; "open" reads its
    header and refuses it at row 13, saying it cannot be read."""
    path = with_image(image_folder, 11, "images/broken.png")
    before = table_contents(db)

    error = refuse(db, path, project="opened", chunk_rows=4, check_images="open")
    assert table_contents(db) == before
    summary = import_file(db, path, project="existing", chunk_rows=4, check_images="exists")

    assert (error.row, error.column) == (13, "image")
    assert "image file cannot be read" in str(error) and "broken.png" in str(error)
    assert summary.inserted == 16
    assert stored_rows(db, "existing")[11][:2] == ("ex0011", "images/broken.png")


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("../x.png", "points outside the images root"),
        ("/etc/passwd", "is an absolute path; give it relative to the images root"),
    ],
)
def test_a_hostile_image_path_in_a_later_chunk_is_refused_even_unchecked(
    db: Database, image_folder: Path, image: str, words: str
) -> None:
    """A path leading out of the images root in row 13 is an UnsafePath naming that row,
    even with the image check off."""
    path = with_image(image_folder, 11, image)
    before = table_contents(db)

    error = refuse(db, path, error=UnsafePath, chunk_rows=4, check_images="none")

    assert type(error) is UnsafePath
    assert str(error) == f"predictions.csv, row 13, column 'image': image path '{image}' {words}"
    assert table_contents(db) == before


# --- re-imports -----------------------------------------------------------------------------


def test_reimporting_a_file_in_many_chunks_changes_nothing(db: Database, write_predictions) -> None:
    """The same file imported twice, 4 rows a chunk: the second time every row is unchanged
    and no table differs."""
    path = write_predictions(varied_rows(25))
    import_file(db, path, chunk_rows=4)
    before = table_contents(db)

    summary = import_file(db, path, chunk_rows=4)

    assert (summary.rows, summary.inserted, summary.updated, summary.unchanged) == (25, 0, 0, 25)
    assert summary.needs_rereview == 0
    assert table_contents(db) == before


def test_a_changed_prediction_in_a_later_chunk_marks_its_review_for_rereview(
    db: Database, write_predictions
) -> None:
    """A reviewed error whose prediction changes in the last chunk of a re-import is updated
    and marked "needs re-review"; the other 24 rows stay exactly as they were."""
    rows = make_rows(25, errors=25)
    import_file(db, write_predictions(rows), chunk_rows=4)
    with db.begin() as session:
        reviewed = session.scalars(select(Example).where(Example.example_id == "ex0022")).one()
        reviewed.review_state = ReviewState.REVIEWED.value
    before = stored_rows(db)
    assert (rows[22]["label"], rows[22]["prediction"]) == ("dog", "fox")
    rows[22]["prediction"] = "cat"

    summary = import_file(db, write_predictions(rows), chunk_rows=4)

    assert (summary.inserted, summary.updated, summary.unchanged) == (0, 1, 24)
    assert summary.needs_rereview == 1
    after = stored_rows(db)
    changed = [i for i, (old, new) in enumerate(zip(before, after, strict=True)) if old != new]
    assert changed == [22]
    example = examples_by_id(db)["ex0022"]
    assert (example.prediction, example.is_error) == ("cat", True)
    assert example.review_state == ReviewState.NEEDS_REREVIEW.value


# --- Parquet --------------------------------------------------------------------------------


def test_parquet_in_batches_lands_exactly_and_a_bad_last_batch_is_refused(
    db: Database, write_predictions
) -> None:
    """A Parquet file read 4 rows a batch imports row for row like its CSV; with a bad
    confidence in its last row (last batch) it is refused at that row and nothing lands."""
    rows = varied_rows(22)
    folder = write_predictions(rows).parent
    frame = parquet_frame(rows)
    good, bad = folder / "good.parquet", folder / "bad.parquet"
    frame.to_parquet(good, row_group_size=5)
    frame.loc[21, "confidence"] = 1.5
    frame.to_parquet(bad, row_group_size=5)

    summary = import_file(db, good, chunk_rows=4)
    before = table_contents(db)
    error = refuse(db, bad, project="bad", chunk_rows=4)

    assert (summary.rows, summary.inserted) == (22, 22)
    assert stored_values(db) == [expected_values(r) for r in rows]
    assert str(error) == (
        "bad.parquet, row 23, column 'confidence': '1.5' is not a probability between 0 and 1"
    )
    assert table_contents(db) == before


# --- progress -------------------------------------------------------------------------------


def test_progress_counts_up_by_chunk_to_the_row_count(db: Database, write_predictions) -> None:
    """The progress callback hears after each chunk of 4: rows done rise to all 23, and the
    expected total is never below the rows done."""
    calls: list[tuple[int, int]] = []
    path = write_predictions(make_rows(23, errors=5))

    import_file(db, path, chunk_rows=4, progress=lambda done, total: calls.append((done, total)))

    assert [done for done, _total in calls] == [4, 8, 12, 16, 20, 23]
    assert all(total >= done for done, total in calls)
    assert calls[-1] == (23, 23)


# --- shuffle keys and Problems ----------------------------------------------------------------


def test_shuffle_keys_are_the_shuffle_key_of_each_id() -> None:
    """The bulk `shuffle_keys` gives exactly `shuffle_key` of each id, unicode and odd ids
    included, so bulk and row-by-row imports order the queue the same."""
    ids = ["ex0001", "", "007", "7", "例え-ü", "😀 emoji", 'a,b"c', " spaced ", "x" * 255]

    keys = shuffle_keys(ids)

    assert keys == [shuffle_key(i) for i in ids]
    assert keys[0] == 2757112604467841000
    assert len(set(keys)) == len(ids)


def test_problems_name_the_earliest_row_whatever_order_they_were_found_in() -> None:
    """Rows noted out of order (10, 3, 7) report row 3 and its message, with 2 more rows."""
    problems = Problems("f.csv")
    for row in (10, 3, 7):
        problems.add(f"bad in {row}", row=row, column="label", check="bad")

    error = problems.first()

    assert isinstance(error, InvalidInput)
    assert str(error) == "f.csv, row 3, column 'label': bad in 3 (and 2 more rows like it)"
    with pytest.raises(InvalidInput, match="row 3"):
        problems.raise_first()


def test_problems_are_counted_per_check_and_column() -> None:
    """The same check in two columns, or two checks in one column, are separate problems with
    their own counts; the earliest row of all is named, with its own count."""
    problems = Problems("f.csv")
    problems.add("empty label", row=9, column="label", check="empty", count=3)
    problems.add("empty prediction", row=6, column="prediction", check="empty")
    problems.add("unsafe", row=8, column="prediction", check="unsafe", error=UnsafePath, count=4)
    problems.add("empty prediction", row=12, column="prediction", check="empty")

    error = problems.first()

    assert type(error) is InvalidInput
    assert (error.row, error.column, error.more) == (6, "prediction", 1)
    problems.add("unsafe earlier", row=2, column="prediction", check="unsafe", error=UnsafePath)
    error = problems.first()
    assert type(error) is UnsafePath
    assert (
        str(error) == "f.csv, row 2, column 'prediction': unsafe earlier (and 4 more rows like it)"
    )


def test_a_file_wide_problem_is_reported_before_any_row() -> None:
    """A problem of the whole file (no row), noted last, is reported before row 2's."""
    problems = Problems("f.csv")
    assert problems.first() is None and not problems
    problems.add("bad cell", row=2, column="label", check="bad")
    problems.add("has no rows", row=None)

    assert str(problems.first()) == "f.csv: has no rows"


# --- the command line -----------------------------------------------------------------------


def test_the_cli_check_images_option_chooses_how_closely_images_are_checked(
    db_url: str, write_predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`labeltool import` (its reader cut to 3 rows a chunk) refuses a missing image in row 9
    with exit 1 and one stderr line; `--check-images none` imports it; an unknown depth is
    a usage error."""
    monkeypatch.setattr(
        importing, "Table", lambda path, chunk_rows, **kw: Table(path, chunk_rows=3, **kw)
    )
    rows = make_rows(10, errors=2)
    rows[7]["image"] = "images/gone.png"
    path = write_predictions(rows)
    (path.parent / "images" / "gone.png").unlink()

    def run(*options: str):
        args = ["--db", db_url, "import", str(path), "--project", PROJECT, *options]
        return CliRunner().invoke(cli, args, prog_name="labeltool", catch_exceptions=False)

    refused = run()
    bogus = run("--check-images", "bogus")
    accepted = run("--check-images", "none")

    full = path.parent.resolve() / "images" / "gone.png"
    assert (refused.exit_code, refused.stdout) == (1, "")
    assert refused.stderr == (
        f"Error: predictions.csv, row 9, column 'image': image file not found: '{full}' "
        "(is --images-root right?)\n"
    )
    assert bogus.exit_code == 2
    assert "Invalid value for '--check-images': 'bogus'" in bogus.stderr
    assert accepted.exit_code == 0, accepted.output
    assert accepted.stdout.startswith(f"project '{PROJECT}', new run '1': 10 rows read, 10 added")
    database = Database.open(db_url)
    try:
        assert [(e, i) for e, i, *_ in stored_rows(database)][7] == ("ex0007", "images/gone.png")
    finally:
        database.dispose()


# --- helpers --------------------------------------------------------------------------------


def varied_rows(n: int, *, shared_images: int = 5) -> list[dict]:
    """`n` rows with every optional column, varied: unicode ids, three probabilities a row
    (some written ".70", not JSON; some empty), empty confidences that fall back to the
    predicted class's probability, every split and an empty one, images shared by rows."""
    rows = []
    for i in range(n):
        prediction = CLASSES[(i // 2) % 3]
        top = 0.5 + (i % 5) / 10
        second, third = (c for c in CLASSES if c != prediction)
        cells = {
            prediction: f"{top:.2f}".lstrip("0") if i % 7 == 6 else f"{top:.2f}",
            second: f"{(1 - top) * 0.75:.3f}",
            third: "" if i % 10 == 9 else f"{(1 - top) * 0.25:.3f}",
        }
        rows.append(
            {
                "example_id": f"ex{i:03d}" if i % 6 else f"例-{i}-ü",
                "image": f"images/shared{i % shared_images}.png",
                "label": CLASSES[i % 3],
                "prediction": prediction,
                "confidence": "" if i % 4 == 3 else f"{0.3 + (i % 7) / 10:.2f}",
                **{f"prob_{c}": cells[c] for c in CLASSES},
                "split": SPLIT_CELLS[i % len(SPLIT_CELLS)],
            }
        )
    return rows


def expected_values(row: dict) -> tuple:
    """What the importer should store for `row`: (example_id, image, label, prediction,
    confidence, probabilities, split, is_error)."""
    probabilities = {c: float(row[f"prob_{c}"]) for c in CLASSES if row[f"prob_{c}"]}
    confidence = (
        float(row["confidence"]) if row["confidence"] else probabilities.get(row["prediction"])
    )
    return (
        row["example_id"],
        row["image"],
        row["label"],
        row["prediction"],
        confidence,
        probabilities,
        row["split"] or "dev",
        row["label"] != row["prediction"],
    )


def parquet_frame(rows: list[dict]) -> pd.DataFrame:
    """`rows` as Parquet would hold them: numbers as floats, empty numbers as nulls."""
    frame = pd.DataFrame(rows)
    for column in ["confidence", *(f"prob_{c}" for c in CLASSES)]:
        frame[column] = pd.to_numeric(frame[column].replace("", None), errors="coerce")
    return frame


def import_file(db: Database, path: Path, *, project: str = PROJECT, **options) -> ImportSummary:
    """Import `path` in one transaction, as the CLI and the import page do."""
    with db.begin() as session:
        return import_predictions(session, path, project=project, **options)


def refuse(
    db: Database,
    path: Path,
    *,
    project: str = PROJECT,
    error: type[InvalidInput] = InvalidInput,
    **options,
) -> InvalidInput:
    """The error importing `path` raises; the caller's transaction swallows it and commits,
    so anything the import left behind would be kept."""
    with db.begin() as session, pytest.raises(error) as caught:
        import_predictions(session, path, project=project, **options)
    assert "\n" not in str(caught.value)
    return caught.value


def stored_rows(db: Database, project: str = PROJECT) -> list[tuple]:
    """The project's examples in the order written, every column but ids and timestamps."""
    skipped = {"id", "project_id", "run_id", "updated_at"}
    columns = [c for c in Example.__table__.columns if c.name not in skipped]
    with db.begin() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(*columns)
                .join(Project, Project.id == Example.project_id)
                .where(Project.name == project)
                .order_by(Example.id)
            )
        ]


def stored_values(db: Database, project: str = PROJECT, run: str | None = None) -> list[tuple]:
    """`expected_values`' fields of the project's examples (of `run` when given), in order."""
    query = (
        select(
            Example.example_id,
            Example.image,
            Example.label,
            Example.prediction,
            Example.confidence,
            Example.probabilities,
            Example.split,
            Example.is_error,
        )
        .join(Project, Project.id == Example.project_id)
        .join(Run, Run.id == Example.run_id)
        .where(Project.name == project)
        .order_by(Example.id)
    )
    if run is not None:
        query = query.where(Run.name == run)
    with db.begin() as session:
        return [tuple(row) for row in session.execute(query)]


def examples_by_id(db: Database, project: str = PROJECT) -> dict[str, Example]:
    with db.begin() as session:
        found = session.scalars(
            select(Example).join(Project).where(Project.name == project).order_by(Example.id)
        )
        return {example.example_id: example for example in found}


def with_image(folder: Path, position: int, image: str) -> Path:
    """A copy of the folder's base.csv with the image of row `position` (from 0) replaced."""
    rows = make_rows(16, errors=3)
    rows[position]["image"] = image
    path = folder / "predictions.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def is_sqlite(db: Database) -> bool:
    return db.engine.dialect.name == "sqlite"


def examples_schema(target) -> set[tuple]:
    """SQLite's (type, name, sql) of the examples table's indexes and triggers; empty on
    PostgreSQL. `target`: a Database, or a connection inside a transaction."""
    query = text("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'examples'")
    if isinstance(target, Database):
        if not is_sqlite(target):
            return set()
        with target.engine.connect() as connection:
            return {tuple(row) for row in connection.execute(query)}
    return {tuple(row) for row in target.execute(query)}


def data_version(db: Database, project: str = PROJECT) -> int:
    with db.begin() as session:
        return session.scalar(select(Project.data_version).where(Project.name == project))


def spy_on_inserts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets the number of rows of each insert the importer's writer makes."""
    counts: list[int] = []
    original = importing._Writer.insert

    def insert(self, chunk, positions=None) -> None:
        counts.append(len(chunk.example_id) if positions is None else len(positions))
        original(self, chunk, positions)

    monkeypatch.setattr(importing._Writer, "insert", insert)
    return counts


def spy_on_bulk_start(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets a 1 each time the writer switches to bulk mode."""
    started: list[int] = []
    original = importing._Writer.start_bulk

    def start_bulk(self) -> None:
        started.append(1)
        original(self)

    monkeypatch.setattr(importing._Writer, "start_bulk", start_bulk)
    return started


def spy_on_image_checks(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """A list that gets the images of each call of the local images root's check."""
    calls: list[list[str]] = []
    original = LocalRoot.check

    def check(self, images, **options):
        calls.append(list(images))
        return original(self, images, **options)

    monkeypatch.setattr(LocalRoot, "check", check)
    return calls
