"""Error categories: keys handed out and guarded, names unique, "incorrectly labeled" recognised,
reviewed examples sent back for re-review when a category is added, and the categories file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from labeltool.categories import (
    PALETTE,
    create_category,
    get_category,
    list_categories,
    load_categories_file,
    update_category,
)
from labeltool.db import Database
from labeltool.errors import DuplicateCategory, InvalidInput, UnknownCategory
from labeltool.importing import shuffle_key
from labeltool.models import Category, Example, Project, ReviewState, Run


@pytest.fixture
def project_id(db: Database) -> int:
    """An empty project "run1"."""
    with db.begin() as session:
        return _add_project(session, "run1")


def test_new_categories_get_keys_1_2_3_colours_and_positions_in_order(
    db: Database, project_id: int
) -> None:
    """Categories created without a key get 1, 2, 3..., palette colours and increasing positions."""
    with db.begin() as session:
        for name in ("blurry", "dog-as-cat", "too dark"):
            create_category(session, project_id=project_id, name=name)

    with db.begin() as session:
        categories = list_categories(session, project_id=project_id)
        assert [(c.name, c.shortcut) for c in categories] == [
            ("blurry", "1"),
            ("dog-as-cat", "2"),
            ("too dark", "3"),
        ]
        assert [c.colour for c in categories] == list(PALETTE[:3])
        assert [c.position for c in categories] == [0, 1, 2]


def test_auto_key_skips_a_key_given_by_hand(db: Database, project_id: int) -> None:
    """A category created without a key gets the first free one, never a taken one."""
    with db.begin() as session:
        create_category(session, project_id=project_id, name="blurry", shortcut="1")
        create_category(session, project_id=project_id, name="dark", shortcut="B")
        second = create_category(session, project_id=project_id, name="occluded")

        assert second.shortcut == "2"
        assert get_category(session, project_id=project_id, name="DARK").shortcut == "b"


@pytest.mark.parametrize("name", ["blurry", "BLURRY", "  Blurry  ", "bLuRrY"])
def test_duplicate_names_are_refused_whatever_the_case(
    db: Database, project_id: int, name: str
) -> None:
    """A second category whose name differs only in case or spacing is refused."""
    with db.begin() as session:
        create_category(session, project_id=project_id, name="Blurry")

    with db.begin() as session, pytest.raises(DuplicateCategory, match="already exists"):
        create_category(session, project_id=project_id, name=name)
    with db.begin() as session:
        assert [c.name for c in list_categories(session, project_id=project_id)] == ["Blurry"]


def test_an_archived_category_still_holds_its_name(db: Database, project_id: int) -> None:
    """Archiving hides a category but its name cannot be reused (its tags still count)."""
    with db.begin() as session:
        blurry = create_category(session, project_id=project_id, name="blurry")
        update_category(session, category_id=blurry.id, archived=True)

    with db.begin() as session, pytest.raises(DuplicateCategory):
        create_category(session, project_id=project_id, name="Blurry")


def test_the_same_name_is_fine_in_another_project(db: Database, project_id: int) -> None:
    """Category names are unique per project, not across projects."""
    with db.begin() as session:
        other = _add_project(session, "run2")
        create_category(session, project_id=project_id, name="blurry")
        create_category(session, project_id=other, name="blurry")

        assert [c.name for c in list_categories(session, project_id=other)] == ["blurry"]


@pytest.mark.parametrize("key", ["c", "r", "n", "p", "s", "N"])
def test_keys_the_review_screen_uses_are_refused(db: Database, project_id: int, key: str) -> None:
    """c, r (Streamlit's), n, p and s (next, previous, skip) cannot toggle a category."""
    with db.begin() as session, pytest.raises(InvalidInput, match="kept by the review screen"):
        create_category(session, project_id=project_id, name="blurry", shortcut=key)

    with db.begin() as session:
        assert list_categories(session, project_id=project_id) == []


@pytest.mark.parametrize("key", ["ab", "!", "é"])
def test_keys_that_are_not_one_letter_or_digit_are_refused(
    db: Database, project_id: int, key: str
) -> None:
    """A key must be a single ASCII letter or digit."""
    with db.begin() as session, pytest.raises(InvalidInput, match="one letter or digit"):
        create_category(session, project_id=project_id, name="blurry", shortcut=key)


def test_a_taken_key_is_refused(db: Database, project_id: int) -> None:
    """Two live categories cannot share a key."""
    with db.begin() as session:
        create_category(session, project_id=project_id, name="blurry", shortcut="b")

    with db.begin() as session, pytest.raises(DuplicateCategory, match="key 'b'"):
        create_category(session, project_id=project_id, name="dark", shortcut="b")


@pytest.mark.parametrize(
    ("name", "marks"),
    [
        ("incorrectly labeled", True),
        ("Incorrectly Labelled", True),
        ("mislabeled", True),
        ("wrong label", True),
        ("blurry", False),
        ("labeled by intern", False),
    ],
)
def test_incorrectly_labeled_is_recognised_by_name(
    db: Database, project_id: int, name: str, marks: bool
) -> None:
    """The usual names for "the dataset's label was wrong" flag marks_incorrect_label."""
    with db.begin() as session:
        category = create_category(session, project_id=project_id, name=name)

        assert category.marks_incorrect_label is marks


def test_marks_incorrect_label_can_be_set_explicitly(db: Database, project_id: int) -> None:
    """An explicit marks_incorrect_label overrides the name-based guess either way."""
    with db.begin() as session:
        bad_y = create_category(
            session, project_id=project_id, name="bad y", marks_incorrect_label=True
        )
        not_it = create_category(
            session, project_id=project_id, name="mislabeled", marks_incorrect_label=False
        )

        assert (bad_y.marks_incorrect_label, not_it.marks_incorrect_label) == (True, False)


def test_new_category_mid_review_sends_reviewed_examples_back_for_re_review(
    db: Database, project_id: int
) -> None:
    """Adding a category moves this project's reviewed examples to "needs re-review" and leaves
    unreviewed, skipped and other projects' examples alone."""
    with db.begin() as session:
        other = _add_project(session, "run2")
        for state in ReviewState:
            _add_example(session, project_id, f"ex-{state.value}", state)
        _add_example(session, other, "other-reviewed", ReviewState.REVIEWED)

    with db.begin() as session:
        create_category(session, project_id=project_id, name="instagram filter")

    assert _states(db) == {
        "ex-unreviewed": "unreviewed",
        "ex-reviewed": "needs re-review",
        "ex-skipped": "skipped",
        "ex-needs re-review": "needs re-review",
        "other-reviewed": "reviewed",
    }


def test_new_category_without_re_review_leaves_reviewed_examples(
    db: Database, project_id: int
) -> None:
    """mark_rereview=False (used when setting a project up) keeps reviewed examples reviewed."""
    with db.begin() as session:
        _add_example(session, project_id, "done", ReviewState.REVIEWED)
        create_category(session, project_id=project_id, name="blurry", mark_rereview=False)

    assert _states(db) == {"done": "reviewed"}


def test_update_renames_recolours_and_describes(db: Database, project_id: int) -> None:
    """update_category changes only the settings it is given."""
    with db.begin() as session:
        category = create_category(session, project_id=project_id, name="blury", shortcut="b")

    with db.begin() as session:
        update_category(session, category_id=category.id, name="Blurry", colour="#112233")
        update_category(session, category_id=category.id, description=" out of focus ")

    with db.begin() as session:
        stored = session.get(Category, category.id)
        assert (stored.name, stored.colour, stored.description, stored.shortcut) == (
            "Blurry",
            "#112233",
            "out of focus",
            "b",
        )


def test_rename_to_another_categorys_name_is_refused(db: Database, project_id: int) -> None:
    """Renaming cannot create two categories with the same name."""
    with db.begin() as session:
        create_category(session, project_id=project_id, name="blurry")
        dark = create_category(session, project_id=project_id, name="dark")

    with db.begin() as session, pytest.raises(DuplicateCategory):
        update_category(session, category_id=dark.id, name="BLURRY")


def test_archiving_hides_the_category_and_frees_its_key(db: Database, project_id: int) -> None:
    """An archived category leaves the list and its key can go to a new category."""
    with db.begin() as session:
        blurry = create_category(session, project_id=project_id, name="blurry", shortcut="b")
        update_category(session, category_id=blurry.id, archived=True)

    with db.begin() as session:
        assert list_categories(session, project_id=project_id) == []
        archived = list_categories(session, project_id=project_id, include_archived=True)
        assert [(c.name, c.archived, c.shortcut) for c in archived] == [("blurry", True, None)]
        dark = create_category(session, project_id=project_id, name="dark", shortcut="b")
        assert dark.shortcut == "b"


def test_update_refuses_a_taken_key(db: Database, project_id: int) -> None:
    """Giving a category another live category's key is refused."""
    with db.begin() as session:
        create_category(session, project_id=project_id, name="blurry", shortcut="b")
        dark = create_category(session, project_id=project_id, name="dark", shortcut="d")

    with db.begin() as session, pytest.raises(DuplicateCategory):
        update_category(session, category_id=dark.id, shortcut="b")


@pytest.mark.parametrize("colour", ["red", "#fff", "#12345g", "112233", "#1122334"])
def test_bad_colour_is_refused_on_create_and_update(
    db: Database, project_id: int, colour: str
) -> None:
    """Colours must be #rrggbb; a bad one is refused and nothing changes."""
    with db.begin() as session:
        blurry = create_category(session, project_id=project_id, name="blurry", colour="#aabbcc")

    with db.begin() as session, pytest.raises(InvalidInput, match="#rrggbb"):
        create_category(session, project_id=project_id, name="dark", colour=colour)
    with db.begin() as session, pytest.raises(InvalidInput, match="#rrggbb"):
        update_category(session, category_id=blurry.id, colour=colour)

    with db.begin() as session:
        categories = list_categories(session, project_id=project_id)
        assert [(c.name, c.colour) for c in categories] == [("blurry", "#aabbcc")]


def test_effort_must_be_positive(db: Database, project_id: int) -> None:
    """The lead's effort estimate is a positive number, and can be cleared again."""
    with db.begin() as session:
        blurry = create_category(session, project_id=project_id, name="blurry")
        with pytest.raises(InvalidInput, match="positive"):
            update_category(session, category_id=blurry.id, effort=0)
        assert update_category(session, category_id=blurry.id, effort=3).effort == 3.0
        assert update_category(session, category_id=blurry.id, clear_effort=True).effort is None


def test_unknown_category_is_named_in_the_error(db: Database, project_id: int) -> None:
    """Looking up a missing category names it and lists the ones that exist."""
    with db.begin() as session:
        create_category(session, project_id=project_id, name="blurry")
        with pytest.raises(UnknownCategory, match="'dark'.*blurry"):
            get_category(session, project_id=project_id, name="dark")
        with pytest.raises(UnknownCategory):
            update_category(session, category_id=999_999, name="x")


def test_categories_file_loads_once_and_reloading_adds_nothing(
    db: Database, project_id: int, tmp_path: Path
) -> None:
    """Loading the same categories file twice creates each category once."""
    path = tmp_path / "categories.csv"
    path.write_text(
        "name,description,shortcut,colour\n"
        "blurry,out of focus,b,#112233\n"
        "Incorrectly  labeled,the dataset's y is wrong,,\n"
        "dog-as-cat,,,\n",
        encoding="utf-8",
    )

    with db.begin() as session:
        created = load_categories_file(session, path, project_id=project_id)
    with db.begin() as session:
        again = load_categories_file(session, path, project_id=project_id)

    assert [c.name for c in created] == ["blurry", "Incorrectly labeled", "dog-as-cat"]
    assert again == []
    with db.begin() as session:
        categories = list_categories(session, project_id=project_id)
        assert [
            (c.name, c.description, c.shortcut, c.colour, c.marks_incorrect_label)
            for c in categories
        ] == [
            ("blurry", "out of focus", "b", "#112233", False),
            ("Incorrectly labeled", "the dataset's y is wrong", "1", PALETTE[1], True),
            ("dog-as-cat", "", "2", PALETTE[2], False),
        ]


def test_categories_file_with_only_names_works(
    db: Database, project_id: int, tmp_path: Path
) -> None:
    """A one-column file of names is enough."""
    path = tmp_path / "categories.csv"
    path.write_text("name\nblurry\ndark\n", encoding="utf-8")

    with db.begin() as session:
        created = load_categories_file(session, path, project_id=project_id)

    assert [(c.name, c.shortcut) for c in created] == [("blurry", "1"), ("dark", "2")]


@pytest.mark.parametrize(
    ("content", "where", "words"),
    [
        ("title\nblurry\n", "row 1, column 'name'", "missing"),
        ("name,shortcut\nblurry,b\n  ,\n", "row 3, column 'name'", "is empty"),
        ("name,colour\nblurry,#112233\ndark,red\n", "row 3, column 'colour'", "#rrggbb"),
        (
            "name,shortcut\nblurry,b\ndark,s\n",
            "row 3, column 'shortcut'",
            "kept by the review screen",
        ),
        ("name,shortcut\nblurry,b\ndark,b\n", "row 3, column 'shortcut'", "already toggles"),
        ("name,scope\nblurry,image\ndark,photo\n", "row 3, column 'scope'", "unknown scope"),
    ],
    ids=["no name column", "empty name", "bad colour", "reserved key", "taken key", "bad scope"],
)
def test_categories_file_errors_name_the_row(
    db: Database, project_id: int, tmp_path: Path, content: str, where: str, words: str
) -> None:
    """A bad categories file is refused with its file and row named; the caller's transaction
    then adds none of its categories."""
    path = tmp_path / "categories.csv"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(InvalidInput) as caught, db.begin() as session:
        load_categories_file(session, path, project_id=project_id)

    message = str(caught.value)
    assert message.startswith(f"categories.csv, {where}: "), message
    assert words in message
    with db.begin() as session:
        assert list_categories(session, project_id=project_id, include_archived=True) == []


def test_categories_file_names_its_earliest_problem_and_counts_the_rows_like_it(
    db: Database, project_id: int, tmp_path: Path
) -> None:
    """Every row is checked before a category is created: the earliest problem is reported
    with how many more rows share it (same check, same column); a different problem in the
    same column, or the same problem in another column, is not counted with it."""
    path = tmp_path / "categories.csv"
    path.write_text(
        "name,shortcut,colour\n"
        "blurry,b,#112233\n"
        "dark,s,\n"  # row 3: the earliest problem, a key the review screen keeps
        "glare,!,red\n"  # not one letter or digit: another check in the same column
        "noise,r,\n"
        "grain,n,blue\n",
        encoding="utf-8",
    )

    with pytest.raises(InvalidInput) as caught, db.begin() as session:
        load_categories_file(session, path, project_id=project_id)

    error = caught.value
    assert (error.file, error.row, error.column, error.more) == (
        "categories.csv",
        3,
        "shortcut",
        2,
    )
    assert str(error).startswith("categories.csv, row 3, column 'shortcut': key 's' is kept")
    assert str(error).endswith("(and 2 more rows like it)")
    with db.begin() as session:
        assert list_categories(session, project_id=project_id, include_archived=True) == []


# --- helpers ----------------------------------------------------------------------------


def _add_project(session: Session, name: str) -> int:
    project = Project(name=name, class_names=["cat", "dog"], images_root="/data")
    session.add(project)
    session.flush()
    session.add(Run(project_id=project.id, name="1"))
    session.flush()
    return project.id


def _add_example(session: Session, project_id: int, example_id: str, state: ReviewState) -> None:
    session.add(
        Example(
            project_id=project_id,
            run_id=session.scalar(select(Run.id).where(Run.project_id == project_id)),
            example_id=example_id,
            image=f"{example_id}.png",
            label="cat",
            prediction="dog",
            is_error=True,
            shuffle_key=shuffle_key(example_id),
            review_state=state.value,
        )
    )


def _states(db: Database) -> dict[str, str]:
    with db.begin() as session:
        return dict(session.execute(select(Example.example_id, Example.review_state)).all())
