"""Fuzzing the three readers of user files: predictions, the wide tags table, categories.

Hypothesis writes malformed files (cut at a random byte, columns repeated or reordered,
latin-1 or UTF-16 bytes, NULs, huge cells, formula and path strings, very long ids). The
property: each file is either refused with one InvalidInput line and nothing written, or
imported exactly (reading the database back gives what the file holds). No other exception
may escape. Each case runs in a transaction that is rolled back, so one database serves all.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import event, func, select

from labeltool.categories import create_category, list_categories, load_categories_file
from labeltool.db import Database
from labeltool.errors import InvalidInput
from labeltool.importing import import_predictions
from labeltool.models import Category, Example, Project, Tag
from labeltool.tags_import import TRUE_CELLS, import_tags

#: Cases per test on SQLite (10,000 in all) and on PostgreSQL.
SQLITE_CASES = {"predictions": 3_500, "tags": 3_500, "categories": 3_000}
POSTGRES_CASES = 300

HOSTILE = [
    "=cmd|' /C calc'!A0",
    "@SUM(A1)",
    "+1",
    "-0.5",
    "../../etc/passwd",
    "/etc/passwd",
    "C:\\x.png",
    "images/../../x.png",
    "x" * 300,
    "a\x00b",
    "tab\there",
    "line\nfeed",
    "cr\rhere",
    "sep\u2028arator",
    "\\ud800",
    "'quoted'",
    '"',
    ",",
    ";",
    "",
    " ",
    "ünïcödé",
    "😀",
    "\ufeffbom",
    "nan",
    "1e308",
    "Unnamed: 3",
    "prob_",
]
CLASSES = ["cat", "dog", "fox"]
IDS = ["ex1", "ex2", "ex3", "ex4"]


def cases(db: Database, kind: str) -> int:
    """How many cases this run makes: many on SQLite, a few hundred on PostgreSQL."""
    return SQLITE_CASES[kind] if db.engine.dialect.name == "sqlite" else POSTGRES_CASES


def fuzz_settings(db: Database, kind: str) -> settings:
    return settings(
        max_examples=cases(db, kind),
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


# --- the malformed files ----------------------------------------------------------------

cell_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=6),
)


@st.composite
def malformed(draw, header: list[str], rows: list[list[str]]) -> bytes:
    """`header` and `rows` written as CSV, then damaged in one or a few ways."""
    header, rows = list(header), [list(r) for r in rows]
    if draw(st.integers(0, 9)) == 0 and header:  # a column twice
        at = draw(st.integers(0, len(header) - 1))
        header.append(header[at])
        for row in rows:
            row.append(row[at] if at < len(row) else "")
    if draw(st.booleans()):  # columns in another order
        order = draw(st.permutations(range(len(header))))
        header = [header[i] for i in order]
        rows = [[row[i] if i < len(row) else "" for i in order] for row in rows]
    if draw(st.integers(0, 49)) == 0 and rows:  # a huge cell
        row = draw(st.sampled_from(rows))
        if row:
            row[draw(st.integers(0, len(row) - 1))] = "h" * 140_000
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows(
        [header, *rows]
    )
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "latin-1", "utf-16"]))
    data = buffer.getvalue().encode(encoding, errors="backslashreplace")
    damage = draw(st.sampled_from(["none", "none", "cut", "nul", "line twice", "no last newline"]))
    if damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "nul":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\x00" + data[at:]
    elif damage == "line twice":
        lines = data.splitlines(keepends=True)
        if lines:
            at = draw(st.integers(0, len(lines) - 1))
            lines.insert(at, lines[at])
        data = b"".join(lines)
    elif damage == "no last newline":
        data = data.rstrip(b"\r\n")
    return data


@st.composite
def predictions_file(draw) -> bytes:
    probs = draw(st.lists(st.sampled_from([*CLASSES, *HOSTILE[:6]]), max_size=4, unique=True))
    optional = draw(st.lists(st.sampled_from(["confidence", "split"]), unique=True))
    header = ["example_id", "image", "label", "prediction", *optional]
    header += [f"prob_{c}" for c in probs]
    rows = []
    for number in range(draw(st.integers(1, 4))):
        good = draw(st.integers(0, 3)) > 0
        rows.append(
            [
                draw(st.sampled_from(IDS)) if good else draw(cell_text),
                f"images/{IDS[number]}.png" if good else draw(cell_text),
                draw(st.sampled_from(CLASSES)) if good else draw(cell_text),
                draw(st.sampled_from(CLASSES)) if good else draw(cell_text),
                *(
                    draw(st.sampled_from(["0.5", "", "dev", "train"])) if good else draw(cell_text)
                    for _ in optional
                ),
                *(draw(st.sampled_from(["0.2", "", "1", "0"])) for _ in probs),
            ]
        )
    return draw(malformed(header, rows))


@st.composite
def tags_file(draw) -> bytes:
    categories = draw(
        st.lists(st.sampled_from(["blurry", "dark", "Blurry", *HOSTILE[:12]]), max_size=3)
    )
    fixed = draw(st.lists(st.sampled_from(["comment", "reviewer", "corrected_label"]), unique=True))
    header = ["example_id", *categories, *fixed]
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        good = draw(st.integers(0, 3)) > 0
        row = [draw(st.sampled_from(IDS[:3])) if good else draw(cell_text)]
        row += [draw(st.sampled_from(["1", "0", "", "x", "yes"])) for _ in categories]
        for column in fixed:
            if column == "corrected_label":
                row.append(draw(st.sampled_from(["", *CLASSES])) if good else draw(cell_text))
            elif column == "reviewer":
                row.append(
                    draw(st.sampled_from(["alice", "", "bob;carol"])) if good else draw(cell_text)
                )
            else:
                row.append(draw(cell_text))
        rows.append(row)
    return draw(malformed(header, rows))


@st.composite
def categories_file(draw) -> bytes:
    optional = draw(st.lists(st.sampled_from(["description", "shortcut", "colour"]), unique=True))
    header = ["name", *optional]
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        row = [draw(st.one_of(st.sampled_from(["blurry", "dark", "Night"]), cell_text))]
        for column in optional:
            if column == "shortcut":
                row.append(draw(st.sampled_from(["", "b", "s", "7", *HOSTILE[:4]])))
            elif column == "colour":
                row.append(draw(st.sampled_from(["", "#112233", "red", "\x00"])))
            else:
                row.append(draw(cell_text))
        rows.append(row)
    return draw(malformed(header, rows))


# --- the shared setting ---------------------------------------------------------------------


@pytest.fixture
def fuzz_project(db: Database, tmp_path: Path) -> tuple[int, Path]:
    """Project "base" (classes cat, dog, fox; ex1-ex3 misclassified dev examples, ex4 right)
    with a "blurry" category, and the folder holding its images; returns (id, folder)."""
    folder = tmp_path / "project"
    (folder / "images").mkdir(parents=True)
    for example_id in IDS:
        Image.new("L", (4, 4)).save(folder / "images" / f"{example_id}.png")
    base = folder / "base.csv"
    base.write_text(
        "example_id,image,label,prediction\n"
        + "".join(f"{e},images/{e}.png,cat,{'cat' if e == 'ex4' else 'dog'}\n" for e in IDS),
        encoding="utf-8",
    )
    with db.begin() as session:
        import_predictions(session, base, project="base")
        project_id = session.scalar(select(Project.id).where(Project.name == "base"))
        create_category(session, project_id=project_id, name="blurry")
    return project_id, folder


@contextmanager
def rolled_back(db: Database, writes: list[str]) -> Iterator:
    """A session whose work is undone at the end; `writes` collects INSERT/UPDATE/DELETE."""
    writes.clear()
    session = db.sessionmaker()
    session.begin()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@contextmanager
def recording_writes(db: Database) -> Iterator[list[str]]:
    writes: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield writes
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def assert_refused_cleanly(error: InvalidInput, writes: list[str], file: str) -> None:
    """One line naming the file, and nothing written before the refusal."""
    message = str(error)
    assert "\n" not in message and "\r" not in message, message
    assert error.file == file or error.file is None, message
    assert writes == [], (message, writes)


def records(data: bytes) -> list[dict[str, str]]:
    """The file as the property's oracle reads it: header-keyed rows, blank rows skipped."""
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = [h.strip() for h in rows[0]]
    return [dict(zip(header, row, strict=False)) for row in rows[1:] if "".join(row)]


# --- the properties ---------------------------------------------------------------------


def test_predictions_importer_refuses_or_imports_exactly(
    db: Database, fuzz_project: tuple[int, Path]
) -> None:
    """Any predictions file is refused with one InvalidInput line and nothing written, or
    imported so that the project's examples are exactly the file's rows."""
    _, folder = fuzz_project
    path = folder / "fuzz.csv"

    @fuzz_settings(db, "predictions")
    @given(data=predictions_file())
    def case(data: bytes) -> None:
        path.write_bytes(data)
        with recording_writes(db) as writes, rolled_back(db, writes) as session:
            examples = session.scalar(select(func.count()).select_from(Example))
            try:
                import_predictions(session, path, project="fuzz")
            except InvalidInput as error:
                # The importer writes chunks as it reads them, inside a savepoint: a refusal
                # must leave nothing of the file behind in the caller's still-open session.
                assert_refused_cleanly(error, [], path.name)
                assert session.scalar(select(Project).where(Project.name == "fuzz")) is None
                assert session.scalar(select(func.count()).select_from(Example)) == examples
                return
            stored = {
                e.example_id: e
                for e in session.scalars(
                    select(Example).join(Project).where(Project.name == "fuzz")
                )
            }
            expected = records(data)
            assert sorted(stored) == sorted(r["example_id"].strip() for r in expected)
            for row in expected:
                example = stored[row["example_id"].strip()]
                assert (example.label, example.prediction) == (
                    row["label"].strip(),
                    row["prediction"].strip(),
                )
                assert example.image == row["image"].strip()
                probs = {
                    name[len("prob_") :]: float(value)
                    for name, value in row.items()
                    if name.startswith("prob_") and len(name) > 5 and value.strip()
                }
                assert (example.probabilities or {}) == probs

    case()


def test_tags_import_refuses_or_imports_exactly(
    db: Database, fuzz_project: tuple[int, Path]
) -> None:
    """Any wide table is refused with one InvalidInput line and nothing written, or imported
    so that the reviewer's tags on each row are exactly its ticked categories."""
    project_id, folder = fuzz_project
    path = folder / "fuzz.csv"

    @fuzz_settings(db, "tags")
    @given(data=tags_file(), explicit=st.booleans())
    def case(data: bytes, explicit: bool) -> None:
        path.write_bytes(data)
        reviewer = "fuzzer" if explicit else None
        with recording_writes(db) as writes, rolled_back(db, writes) as session:
            try:
                summary = import_tags(session, path, project_id=project_id, reviewer=reviewer)
            except InvalidInput as error:
                assert_refused_cleanly(error, writes, path.name)
                return
            expected = records(data)
            assert summary.rows == len(expected)
            if not explicit:
                return
            names = {
                c.id: c.name.casefold()
                for c in list_categories(session, project_id=project_id, include_archived=True)
            }
            fixed = {"example_id", "image", "label", "prediction", "confidence", "comment"}
            fixed |= {"corrected_label", "reviewer"}
            for row in expected:
                ticked = {
                    " ".join(name.split()).casefold()
                    for name, value in row.items()
                    if name.casefold() not in fixed and value.strip().casefold() in TRUE_CELLS
                }
                tagged = session.scalars(
                    select(Tag.category_id)
                    .join(Example, Example.id == Tag.example_pk)
                    .where(
                        Example.project_id == project_id,
                        Example.example_id == row["example_id"].strip(),
                        Tag.reviewer == "fuzzer",
                    )
                )
                assert {names[c] for c in tagged} == ticked

    case()


def test_categories_reader_refuses_or_imports_exactly(
    db: Database, fuzz_project: tuple[int, Path]
) -> None:
    """Any categories file is refused with one InvalidInput line and nothing written, or
    creates exactly the names it lists that the project did not have."""
    project_id, folder = fuzz_project
    path = folder / "fuzz.csv"

    @fuzz_settings(db, "categories")
    @given(data=categories_file())
    def case(data: bytes) -> None:
        path.write_bytes(data)
        with recording_writes(db) as writes, rolled_back(db, writes) as session:
            try:
                created = load_categories_file(session, path, project_id=project_id)
            except InvalidInput as error:
                assert_refused_cleanly(error, writes, path.name)
                return
            wanted: list[str] = []
            for row in records(data):
                name = " ".join(row["name"].split())
                if name.casefold() not in {"blurry", *(w.casefold() for w in wanted)}:
                    wanted.append(name)
            assert [c.name for c in created] == wanted
            stored = session.scalars(select(Category.name).where(Category.project_id == project_id))
            assert sorted(stored) == sorted(["blurry", *wanted])

    case()
