"""Runs on the pages, driven with AppTest over a real SQLite project of two runs: the sidebar's
run picker and its ?run= link, the caption naming the run, the queue against the previous
run, the Compare runs page, a category's scope, and what a rerun with an earlier run picked
asks of the database.

The scenario, worked by hand. Ten dev examples, e1-e5 and c1-c5. Run "1" ("baseline") gets
e1-e5 wrong: 5/10 = 50.0% dev error. Run "2" ("blur augmentation", target "blurry") fixes e4
and e5, still gets e1, e2, e3 wrong and newly gets c1 wrong: 4/10 = 40.0%, a change of -10.0
points; errors fixed 2 (e4, e5), new 1 (c1), wrong in both 3 (e1, e2, e3).

Before run 2 is imported, ann reviews run 1's e1, e3, e4 and e5 (not e2) and tags e1, e4 and
e5 "blurry" (an image category). Run 1: 4 reviewed, 3 blurry, share 3/4, ceiling
3/4 x 50% = 37.5 points. Run 2 starts with what run 1 knew of the errors wrong in both: e1
(reviewed, blurry) and e3 (reviewed, no tag); e2 stays unreviewed and c1 is new. Run 2: 2
reviewed, 1 blurry, share 1/2, ceiling 1/2 x 40% = 20.0 points; recovered 37.5 - 20.0 = 17.5.

The queue (errors of the shown run) with the default review state "unreviewed": run 2 holds
e2 and c1 (2), run 1 holds e2 (1). With every review state: run 2 holds 4, run 1 holds 5;
against run 1, run 2's "new" errors are c1 (1), "still wrong" e1, e2, e3 (3), and "fixed" run
1's rows of e4 and e5 (2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from labeltool import labeling
from labeltool.categories import create_category
from labeltool.config import APP_PATH, DB_ENV_VAR
from labeltool.db import Database
from labeltool.importing import import_predictions
from labeltool.models import Category, Example, Project, Run
from labeltool.review_queue import QueueFilter, queue_ids
from tests.app_scenario import rerun_cost
from tests.conftest import make_rows

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")

REVIEW = "app_pages/review.py"
GALLERY = "app_pages/gallery.py"
CATEGORIES = "app_pages/categories.py"
REPORT = "app_pages/report.py"
COMPARE = "app_pages/compare.py"

RUN1 = {
    "e1": ("cat", "dog"),
    "e2": ("cat", "dog"),
    "e3": ("dog", "cat"),
    "e4": ("fox", "cat"),
    "e5": ("dog", "fox"),
    "c1": ("cat", "cat"),
    "c2": ("dog", "dog"),
    "c3": ("fox", "fox"),
    "c4": ("cat", "cat"),
    "c5": ("dog", "dog"),
}
RUN2 = RUN1 | {"e4": ("fox", "fox"), "e5": ("dog", "dog"), "c1": ("cat", "dog")}

#: The run caption on each page that shows one, for run 2 and for run 1 (worked by hand).
LATEST_CAPTION = "🧪 Run 2 · blur augmentation: the latest run of 2."
EARLIER_CAPTION = "🧪 Run 1 · baseline: an earlier run, not the latest of 2."


def _rows(predictions: dict[str, tuple[str, str]]) -> list[dict]:
    return [
        {
            "example_id": example_id,
            "image": f"images/{example_id}.png",
            "label": label,
            "prediction": prediction,
            "confidence": "0.9",
        }
        for example_id, (label, prediction) in predictions.items()
    ]


def _import(db: Database, write_predictions, predictions: dict, **options) -> None:
    path = write_predictions(_rows(predictions), name=f"run-{options['run']}.csv")
    with db.begin() as session:
        import_predictions(session, path, project="p", **options)


def _pk(session, run: str, example_id: str) -> int:
    return session.scalar(
        select(Example.id)
        .join(Run, Run.id == Example.run_id)
        .where(Run.name == run, Example.example_id == example_id)
    )


@pytest.fixture
def one_run(sqlite_db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch) -> Database:
    """Project "p" with run "1" only (RUN1, "baseline"), in the database the app opens."""
    _import(sqlite_db, write_predictions, RUN1, run="1", note="baseline")
    monkeypatch.setenv(DB_ENV_VAR, sqlite_db.url)
    return sqlite_db


@pytest.fixture
def two_runs(one_run: Database, write_predictions) -> Database:
    """The module's scenario: run 1 reviewed by ann, then run 2 imported (see the doc)."""
    with one_run.begin() as session:
        project_id = session.scalar(select(Project.id))
        blurry = create_category(session, project_id=project_id, name="blurry").id
        pk = {i: _pk(session, "1", i) for i in RUN1}
        labeling.set_tag(
            session, example_pks=[pk["e1"], pk["e4"], pk["e5"]], category_id=blurry, reviewer="ann"
        )
        labeling.mark_reviewed(
            session, example_pks=[pk[i] for i in ("e1", "e3", "e4", "e5")], reviewer="ann"
        )
    _import(
        one_run,
        write_predictions,
        RUN2,
        run="2",
        note="blur augmentation",
        target_category="blurry",
    )
    return one_run


# --- 1. the run picker and the caption ---------------------------------------------------------


def test_the_run_picker_lists_runs_newest_first_and_defaults_to_the_latest(two_runs) -> None:
    """The sidebar's Run select offers run 2 then run 1, each with its note, the latest
    marked, and shows run 2; the URL names no run while the latest is shown."""
    at = _app(REVIEW)

    picker = at.sidebar.selectbox(key="run_name")
    assert picker.options == ["2 · blur augmentation (latest)", "1 · baseline"]
    assert picker.value == "2"
    assert not picker.disabled
    assert "run" not in at.query_params


def test_a_one_run_project_shows_the_run_picker_disabled(one_run) -> None:
    """With one run there is nothing to pick: the select shows it, disabled."""
    at = _app(REVIEW)

    picker = at.sidebar.selectbox(key="run_name")
    assert picker.options == ["1 · baseline (latest)"]
    assert picker.value == "1"
    assert picker.disabled


@pytest.mark.parametrize("page", [REVIEW, GALLERY, REPORT])
def test_pages_name_the_run_shown_when_there_are_several(two_runs, page: str) -> None:
    """The review, gallery and report pages say which run they show, and of how many."""
    at = _app(page)

    assert LATEST_CAPTION in _captions(at)


@pytest.mark.parametrize("page", [REVIEW, GALLERY, REPORT])
def test_pages_name_no_run_when_there_is_one(one_run, page: str) -> None:
    """With one run there is no run caption (and the page still runs)."""
    at = _app(page)

    assert not [c for c in _captions(at) if c.startswith("🧪 Run")]
    assert at.sidebar.selectbox(key="run_name").value == "1"


# --- 2. picking a run -------------------------------------------------------------------------


def test_picking_run_1_reports_its_dev_error_and_the_latest_again_run_2s(two_runs) -> None:
    """The report shows run 2's numbers (4/10 errors, 2 reviewed), run 1's once it is picked
    (5/10, 4 reviewed), and run 2's again when the latest is picked back."""
    at = _app(REPORT)
    assert _metrics(at) == {
        "Dev examples": "10",
        "Misclassified": "4",
        "Dev error": "40.0%",
        "Reviewed errors": "2",
    }

    _pick_run(at, "1")
    assert _metrics(at) == {
        "Dev examples": "10",
        "Misclassified": "5",
        "Dev error": "50.0%",
        "Reviewed errors": "4",
    }
    assert EARLIER_CAPTION in _captions(at)

    _pick_run(at, "2")
    assert _metrics(at)["Dev error"] == "40.0%"
    assert LATEST_CAPTION in _captions(at)


def test_picking_run_1_changes_the_gallerys_count(two_runs) -> None:
    """The gallery counts the shown run's unreviewed errors: run 2's e2 and c1, run 1's e2."""
    at = _app(GALLERY)
    assert _gallery_count(at) == 2

    _pick_run(at, "1")
    assert _gallery_count(at) == 1

    at.sidebar.multiselect(key="q_states").set_value([]).run()
    assert _gallery_count(at) == 5  # every error of run 1


def test_picking_run_1_changes_the_review_queues_count(two_runs) -> None:
    """The review page's guide line ends with the queue's size: 2 in run 2, 1 in run 1; its
    progress bar counts the shown run's reviews (2 of 4, then 4 of 5)."""
    at = _app(REVIEW)
    assert _queue_caption(at).endswith(" · 2 in this queue")
    assert at.get("progress")[0].proto.text.startswith("**2 of 4** misclassified")

    _pick_run(at, "1")
    assert _queue_caption(at).endswith(" · 1 in this queue")
    assert at.get("progress")[0].proto.text.startswith("**4 of 5** misclassified")


def test_picking_a_run_names_it_in_the_url_and_the_latest_removes_it(two_runs) -> None:
    """?run=1 while run 1 is shown (the link can be shared); no run= once the latest is
    picked again."""
    at = _app(REVIEW)

    _pick_run(at, "1")
    assert at.query_params.get("run") == "1"
    assert at.query_params.get("project") == "p"

    _pick_run(at, "2")
    assert "run" not in at.query_params


def test_a_link_naming_run_1_opens_run_1(two_runs) -> None:
    """Opening the app with ?run=1 picks run 1: the select, the caption and the numbers."""
    at = _app(REPORT, query={"project": "p", "run": "1"})

    assert at.sidebar.selectbox(key="run_name").value == "1"
    assert _metrics(at)["Dev error"] == "50.0%"
    assert EARLIER_CAPTION in _captions(at)
    assert at.query_params.get("run") == "1"


# --- 3. the queue against the previous run -------------------------------------------------


def test_the_queue_against_the_previous_run(two_runs) -> None:
    """With every review state, run 2's queue holds 4 errors; "new" 1 (c1), "still wrong" 3
    (e1, e2, e3), "fixed" 2 (run 1's e4 and e5), and the caption says what the queue holds."""
    at = _app(GALLERY)
    at.sidebar.multiselect(key="q_states").set_value([]).run()
    change = at.sidebar.selectbox(key="q_change")
    assert change.label == "Against the previous run"
    assert change.options == [
        "all errors",
        "new: right in run 1",
        "still wrong: wrong in run 1 too",
        "fixed: run 1's errors this run gets right",
    ]
    assert change.value == "all"  # shown as "all errors", not as an empty choice
    assert _gallery_count(at) == 4

    at.sidebar.selectbox(key="q_change").set_value("new").run()
    assert _gallery_count(at) == 1
    assert f"{LATEST_CAPTION} Queue: its errors that run 1 got right." in _captions(at)

    at.sidebar.selectbox(key="q_change").set_value("still wrong").run()
    assert _gallery_count(at) == 3

    at.sidebar.selectbox(key="q_change").set_value("fixed").run()
    assert _gallery_count(at) == 2
    assert (
        f"{LATEST_CAPTION} Queue: run 1's errors that this run gets right, shown with run 1's "
        "prediction." in _captions(at)
    )


def test_the_fixed_queue_shows_the_previous_runs_rows(two_runs) -> None:
    """The "fixed" tiles are run 1's rows of e4 and e5 (with run 1's prediction)."""
    at = _app(GALLERY)
    at.sidebar.multiselect(key="q_states").set_value([]).run()
    at.sidebar.selectbox(key="q_change").set_value("fixed").run()

    with two_runs.begin() as session:
        run1 = {_pk(session, "1", i) for i in ("e4", "e5")}
    tiles = _grid(at)["tiles"]
    assert {t["pk"] for t in tiles} == run1
    assert sorted(t["pair"] for t in tiles) == ["dog-as-fox", "fox-as-cat"]


def test_the_previous_run_select_is_absent_for_the_first_run(two_runs) -> None:
    """Run 1 has no run before it: no "Against the previous run" select, and a choice made
    on run 2 does not filter run 1's queue."""
    at = _app(GALLERY)
    at.sidebar.multiselect(key="q_states").set_value([]).run()
    at.sidebar.selectbox(key="q_change").set_value("new").run()
    assert _gallery_count(at) == 1

    _pick_run(at, "1")

    assert "q_change" not in {s.key for s in at.sidebar.selectbox}
    assert _gallery_count(at) == 5
    assert EARLIER_CAPTION in _captions(at)

    # Back on run 2 the queue starts again from all its errors: 4.
    _pick_run(at, "2")
    assert at.sidebar.selectbox(key="q_change").value == "all"
    assert _gallery_count(at) == 4


# --- 4. the Compare runs page ----------------------------------------------------------------


def test_compare_with_one_run_says_how_to_import_another(one_run) -> None:
    """With one run the page says to import a second run, naming the command."""
    at = _app(COMPARE)

    (info,) = at.info
    assert "This project has one run" in info.value
    (code,) = at.code
    assert code.value == 'labeltool import PREDICTIONS --project p --run NAME --note "what changed"'
    assert not at.metric


def test_compare_with_one_run_names_the_project_in_the_command_as_written(
    sqlite_db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suggested command is code to copy: a project called cats_v2 is named cats_v2 in
    it, shell-quoted when it needs to be (no Markdown escapes in code)."""
    path = write_predictions(_rows(RUN1), name="cats.csv")
    with sqlite_db.begin() as session:
        import_predictions(session, path, project="cats_v2")
    monkeypatch.setenv(DB_ENV_VAR, sqlite_db.url)

    at = _app(COMPARE)

    (code,) = at.code
    assert code.value.startswith("labeltool import PREDICTIONS --project cats_v2 --run NAME")


def test_compare_with_one_run_quotes_a_project_name_for_the_shell(
    sqlite_db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name with a space and a quote is one shell word in the command: 'my '"'"'cats'."""
    path = write_predictions(_rows(RUN1), name="cats.csv")
    with sqlite_db.begin() as session:
        import_predictions(session, path, project="my 'cats")
    monkeypatch.setenv(DB_ENV_VAR, sqlite_db.url)

    (code,) = _app(COMPARE).code
    assert "--project 'my '\"'\"'cats' --run NAME" in code.value


def test_compare_shows_both_dev_errors_and_the_errors_that_moved(two_runs) -> None:
    """Run 1 50.0%, run 2 40.0% (-10.0 points); fixed 2, new 1, wrong in both 3."""
    at = _app(COMPARE)

    assert at.selectbox(key=f"compare_before_{_project_id(two_runs)}").value == "1"
    assert at.selectbox(key=f"compare_after_{_project_id(two_runs)}").value == "2"
    assert [m.label for m in at.metric] == [  # the earlier run on the left
        "Dev error, run 1",
        "Dev error, run 2",
        "Errors fixed",
        "New errors",
        "Wrong in both",
    ]
    assert _metrics(at) == {
        "Dev error, run 1": "50.0%",
        "Dev error, run 2": "40.0%",
        "Errors fixed": "2",
        "New errors": "1",
        "Wrong in both": "3",
    }
    deltas = {m.label: m.delta for m in at.metric}
    assert deltas["Dev error, run 2"] == "-10.0 points"
    # Both runs hold the same ten examples: none is left out of the counts.
    assert not [w.value for w in at.warning if "only in run" in w.value]
    assert "Choose two different runs." not in [w.value for w in at.warning]


def test_compare_says_what_the_run_recovered_of_its_target(two_runs) -> None:
    """Run 2's recorded target is blurry: ceiling 37.5 points in run 1, 20.0 in run 2, so it
    recovered 17.5; choosing "none" as the target removes the sentence."""
    at = _app(COMPARE)
    target = at.selectbox(key=f"compare_target_{_project_id(two_runs)}_2")
    assert target.value == "blurry"
    (info,) = at.info
    assert info.value == "blurry: ceiling was 37.5 points, the new run recovered 17.5."
    assert info.proto.icon == "🎯"
    table = at.dataframe[0].value.set_index("category")
    assert table.loc["blurry", ["errors_before", "errors_after"]].tolist() == [3, 1]
    assert table.loc["blurry", "ceiling_before"] == pytest.approx(0.375)
    assert table.loc["blurry", "ceiling_after"] == pytest.approx(0.2)

    target.select_index(0).run()  # "none" (AppTest's set_value(None) clears the select)

    assert not at.exception
    assert not at.info
    assert _metrics(at)["Dev error, run 2"] == "40.0%"


def test_compare_the_same_run_twice_is_refused(two_runs) -> None:
    """Choosing run 2 as the earlier run too shows a warning and no numbers."""
    at = _app(COMPARE)

    at.selectbox(key=f"compare_before_{_project_id(two_runs)}").set_value("2").run()

    assert [w.value for w in at.warning] == ["Choose two different runs."]
    assert not at.metric


def test_compare_opens_the_errors_fixed_in_the_gallery(two_runs) -> None:
    """Comparing run 1 with run 2 while run 2 is shown, "See the errors fixed in the Gallery"
    opens the gallery on run 1's errors run 2 gets right, in every review state: 2 of them."""
    at = _app(COMPARE)
    button = at.button(key="gallery_fixed")
    assert button.label == "See the errors fixed in the Gallery"
    assert not button.disabled

    button.click().run()

    assert not at.exception, at.exception
    assert at.session_state["q_change"] == "fixed"
    assert at.session_state["q_states"] == []
    assert _gallery_count(at) == 2
    assert at.sidebar.selectbox(key="q_change").value == "fixed"


def test_compare_from_run_1_offers_no_gallery_links(two_runs) -> None:
    """With run 1 shown the page compares it with run 2, but the Gallery shows run 1's queue,
    so instead of the links it says to pick run 2."""
    at = _app(COMPARE, query={"project": "p", "run": "1"})

    project_id = _project_id(two_runs)
    assert at.selectbox(key=f"compare_before_{project_id}").value == "1"
    assert at.selectbox(key=f"compare_after_{project_id}").value == "2"
    assert _metrics(at)["Errors fixed"] == "2"
    assert not [b for b in at.button if b.key and b.key.startswith("gallery_")]
    assert any("To look at these errors, pick run 2 in the sidebar" in c for c in _captions(at))


# --- 5. a category's scope ---------------------------------------------------------------------


def test_the_add_form_creates_an_error_category_when_chosen(two_runs) -> None:
    """By its name "look-alike" would be an image category; choosing "error: this run's
    mistake only" makes it an error category, and the table's scope column says so."""
    at = _app(CATEGORIES)
    assert at.selectbox(key="new_scope").value == "by its name"

    at.text_input(key="new_name").input("look-alike")
    at.selectbox(key="new_scope").set_value("error: this run's mistake only")
    _button(at, "Add category").click().run()

    assert not at.exception
    with two_runs.begin() as session:
        scopes = dict(session.execute(select(Category.name, Category.scope)).all())
    assert scopes == {"blurry": "image", "look-alike": "error"}
    table = at.data_editor(key="category_table").value
    assert "scope" in table.columns
    assert dict(zip(table["name"], table["scope"], strict=True)) == scopes


def test_the_add_form_by_its_name_makes_a_confusion_pair_an_error_category(two_runs) -> None:
    """Left at "by its name", "cat-as-fox" becomes an error category and "instagram filter"
    an image one."""
    at = _app(CATEGORIES)

    at.text_input(key="new_name").input("cat-as-fox")
    _button(at, "Add category").click().run()
    at.text_input(key="new_name").input("instagram filter")
    _button(at, "Add category").click().run()

    assert not at.exception
    table = at.data_editor(key="category_table").value
    assert dict(zip(table["name"], table["scope"], strict=True)) == {
        "blurry": "image",
        "cat-as-fox": "error",
        "instagram filter": "image",
    }


# --- 6. what a rerun with an earlier run picked costs --------------------------------------


def test_a_review_rerun_on_an_earlier_run_runs_as_many_statements_on_a_large_project(
    tmp_path: Path, write_predictions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With run 1 of two picked, one rerun of the review page runs the same number of SQL
    statements on a 20- and a 400-example project and loads only the screen's window of
    examples: it never reads the examples table."""
    counts, loaded = [], []
    for n in (20, 400):
        database = _large_two_runs(tmp_path, write_predictions, examples=n)
        monkeypatch.setenv(DB_ENV_VAR, database.url)
        at = _app(REVIEW)
        _pick_run(at, "1")
        assert EARLIER_CAPTION.replace(" · baseline", "") in _captions(at)
        statements, examples = rerun_cost(at)
        counts.append(statements)
        loaded.append(examples)
        database.dispose()

    assert counts[0] == counts[1]
    assert 0 < counts[0] <= 20, counts  # the one-run review page's budget (test_app_pages)
    # Run 1 has 4/5 of the examples wrong and 5 reviewed: 16 - 5 = 11 left in the small
    # queue; the large one loads its anchor and the 20 after it.
    assert loaded == [11, 21]


# --- 7. user text stays text -------------------------------------------------------------------


def test_a_runs_name_and_note_show_as_written(one_run, write_predictions) -> None:
    """A run named **bold** with a link for a note is named in the caption escaped: no bold,
    no link."""
    _import(one_run, write_predictions, RUN2, run="**bold**", note="[x](https://evil.example)")

    at = _app(GALLERY)

    expected = "🧪 Run \\*\\*bold\\*\\* · \\[x\\](https:\u2060//evil.example): the latest run of 2."
    assert expected in _captions(at)
    assert not [c for c in _captions(at) if "](https://" in c or "**bold**" in c]
    assert at.sidebar.selectbox(key="run_name").options == [
        "**bold** · [x](https://evil.example) (latest)",
        "1 · baseline",
    ]


# --- helpers -------------------------------------------------------------------------------


def _app(page: str, *, query: dict | None = None) -> AppTest:
    """The app on `page`, run once with ann as the reviewer (and the URL's `query`)."""
    at = AppTest.from_file(str(APP_PATH), default_timeout=60)
    at.session_state["reviewer"] = "ann"
    for name, value in (query or {}).items():
        at.query_params[name] = value
    if page != REVIEW:
        at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def _pick_run(at: AppTest, name: str) -> AppTest:
    at.sidebar.selectbox(key="run_name").set_value(name).run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="run_name").value == name
    return at


def _captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _gallery_count(at: AppTest) -> int:
    """The gallery's "**N** errors match the filter"."""
    (line,) = [m.value for m in at.markdown if "errors match the filter" in m.value]
    return int(line.split("**")[1])


def _grid(at: AppTest) -> dict:
    (grid,) = [e for e in at.get("bidi_component") if e.key == "gallery_grid"]
    return json.loads(grid.proto.json)


def _queue_caption(at: AppTest) -> str:
    (line,) = [c for c in _captions(at) if c.startswith("The method's guide:")]
    return line


def _button(at: AppTest, label: str):
    (button,) = [b for b in at.button if b.label == label]
    return button


def _project_id(db: Database) -> int:
    with db.begin() as session:
        return session.scalar(select(Project.id).where(Project.name == "p"))


def _large_two_runs(tmp_path: Path, write_predictions, *, examples: int) -> Database:
    """Project "p" of `examples` rows (no image files): run "1" gets four fifths wrong, 5 of
    them reviewed, every error tagged blurry; run "2" gets three fifths wrong."""
    st.cache_resource.clear()
    database = Database.open(f"sqlite:///{tmp_path / f'runs{examples}.db'}")
    for run, errors in (("1", examples * 4 // 5), ("2", examples * 3 // 5)):
        path = write_predictions(
            make_rows(examples, errors=errors), name=f"runs{examples}-{run}.csv", images=False
        )
        with database.begin() as session:
            import_predictions(session, path, project="p", run=run, check_images=False)
            if run == "1":
                project_id = session.scalar(select(Project.id))
                blurry = create_category(session, project_id=project_id, name="blurry").id
                run_id = session.scalar(select(Run.id).where(Run.name == "1"))
                pks = queue_ids(
                    session,
                    project_id=project_id,
                    queue=QueueFilter(run_id=run_id),
                    limit=examples,
                )
                labeling.set_tag(session, example_pks=pks, category_id=blurry, reviewer="bob")
                labeling.mark_reviewed(session, example_pks=pks[:5], reviewer="bob")
    return database
