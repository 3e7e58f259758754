"""`labeltool analyze` and `labeltool suggest`: signals computed from a real project (real
images on disk, a real database on both backends) and the categories they suggest."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFilter
from sqlalchemy import func, select

from labeltool.categories import create_category
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.importing import import_predictions
from labeltool.models import Example, ImageMeasure, Project, Signal
from labeltool.projects import get_project
from labeltool.signals import LABEL_ERROR, analyze, suggestions

CLASSES = ("cat", "dog", "fox")
N = 60
#: The example whose label is wrong: the model is sure (0.97) it is a fox.
FLIPPED = "ex0007"
#: Examples whose images are heavily blurred copies.
BLURRED = ("ex0003", "ex0011")


def _texture(seed: int) -> Image.Image:
    """A sharp 64x64 picture: random blocks, so its edges are crisp."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
    return Image.fromarray(np.kron(blocks, np.ones((8, 8), dtype=np.uint8))).convert("RGB")


def _seven(*, stem_end: int) -> Image.Image:
    """A 28x28 white seven on black, blurred hard (radius 2.5), its stem ending `stem_end`
    pixels from the left."""
    picture = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(picture).line([(7, 6), (21, 6), (stem_end, 23)], fill=255, width=3)
    return picture.filter(ImageFilter.GaussianBlur(2.5))


def _project_files(folder: Path, *, misread: tuple[str, ...] = ()) -> Path:
    """A predictions file of N examples (a third misclassified), with probabilities and
    real images; FLIPPED's label disagrees with a confident model, BLURRED are blurred, and so
    are `misread`, which the model confidently gets wrong as it gets FLIPPED."""
    (folder / "images").mkdir(parents=True)
    rows = []
    for i in range(N):
        example_id = f"ex{i:04d}"
        label = CLASSES[i % 3]
        confidently_wrong = example_id == FLIPPED or example_id in misread
        prediction = CLASSES[(i + 1) % 3] if i % 3 == 0 or confidently_wrong else label
        probs = {c: 0.05 for c in CLASSES}
        probs[prediction] = 0.9
        if confidently_wrong:
            probs = {c: 0.015 for c in CLASSES}
            probs[prediction] = 0.97
        elif prediction != label:
            probs[label] = 0.35
            probs[prediction] = 0.6
            probs[next(c for c in CLASSES if c not in (label, prediction))] = 0.05
        image = _texture(i)
        if example_id in BLURRED or example_id in misread:
            image = image.filter(ImageFilter.GaussianBlur(6))
        image.save(folder / "images" / f"{example_id}.png")
        rows.append(
            {
                "example_id": example_id,
                "image": f"images/{example_id}.png",
                "label": label,
                "prediction": prediction,
                **{f"prob_{c}": f"{p:.3f}" for c, p in probs.items()},
            }
        )
    path = folder / "predictions.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def project(db: Database, tmp_path: Path) -> int:
    path = _project_files(tmp_path / "project")
    with db.begin() as session:
        import_predictions(session, path, project="pets")
        project_id = get_project(session, "pets").id
        create_category(
            session, project_id=project_id, name="incorrectly labeled", marks_incorrect_label=True
        )
        create_category(session, project_id=project_id, name="Blurry")
    return project_id


def _add_label_error_category(db_url: str) -> None:
    """Give project "pets" the category that marks incorrect labels."""
    database = Database.open(db_url)
    try:
        with database.begin() as session:
            create_category(
                session,
                project_id=get_project(session, "pets").id,
                name="incorrectly labeled",
                marks_incorrect_label=True,
            )
    finally:
        database.dispose()


def test_a_confidently_contradicted_label_is_suggested_as_incorrectly_labeled(
    db: Database, project: int
) -> None:
    """Confident learning flags the example the model gives 0.97 to another class, and the
    suggestion names the category that marks incorrect labels, with the numbers why."""
    with db.begin() as session:
        summary = analyze(session, project_id=project, images=False)
    assert summary.found[LABEL_ERROR] >= 1

    with db.begin() as session:
        found = [s for s in suggestions(session, project_id=project) if s.kind == LABEL_ERROR]
    assert found[0].example_id == FLIPPED
    assert found[0].category == "incorrectly labeled"
    assert "0.97 to 'fox'" in found[0].reason and "'dog' only 0.01" in found[0].reason
    assert found[0].score == pytest.approx(1 - 0.015 / 1.0, abs=0.01)


def test_a_label_error_on_an_image_the_model_misreads_is_set_aside(
    db: Database, tmp_path: Path
) -> None:
    """When the model errs on blurred images far more often than on sharp ones, its confident
    disagreement on a blurred image is put down to the blur: not suggested as an incorrect
    label (but as blurry), and counted as set aside; on a sharp image it still is."""
    misread = ("ex0004", "ex0005", "ex0010", "ex0013", "ex0016")
    path = _project_files(tmp_path / "project", misread=misread)
    with db.begin() as session:
        import_predictions(session, path, project="pets")
        project_id = get_project(session, "pets").id
        create_category(
            session, project_id=project_id, name="incorrectly labeled", marks_incorrect_label=True
        )
        create_category(session, project_id=project_id, name="Blurry")
    with db.begin() as session:
        without_images = analyze(session, project_id=project_id, images=False)
    assert without_images.found[LABEL_ERROR] >= len(misread) + 1

    with db.begin() as session:
        summary = analyze(session, project_id=project_id)
        found = suggestions(session, project_id=project_id)

    label_errors = {s.example_id for s in found if s.kind == LABEL_ERROR}
    assert FLIPPED in label_errors
    assert not label_errors & set(misread)
    assert set(misread) <= {s.example_id for s in found if s.kind == "blurry"}
    assert summary.set_aside == {"blurry": len(misread)}
    assert f"{len(misread)} more likely label error set aside" in str(summary)


def test_blurred_images_are_suggested_as_the_projects_blurry_category(
    db: Database, project: int
) -> None:
    """The two blurred copies are flagged against the project's own images and suggested as
    its category named 'Blurry' (case aside) where they are errors; sharp ones are not."""
    with db.begin() as session:
        analyze(session, project_id=project)
    with db.begin() as session:
        flagged = set(session.scalars(select(Signal.example_pk).where(Signal.kind == "blurry")))
        ids = {s.example_id for s in suggestions(session, project_id=project) if s.kind == "blurry"}
    assert len(flagged) == len(BLURRED)
    errors = {e for e in BLURRED if int(e[2:]) % 3 == 0}
    assert ids == errors
    assert all(s for s in ids)


def test_a_copy_is_a_near_duplicate_and_a_second_drawing_of_the_digit_is_not(
    db: Database, tmp_path: Path
) -> None:
    """Of three dev images, a blurred seven, its copy shrunk by 10% through JPEG and the seven
    drawn again with its stem one pixel over (a hash within 4 bits of the first), only the
    copy pair is flagged near duplicate, each naming the other; the hash alone is no flag."""
    path = _project_files(tmp_path / "project")
    images = tmp_path / "project" / "images"
    seven = _seven(stem_end=12)
    seven.save(images / "ex0020.png")
    shrunk = io.BytesIO()
    seven.resize((25, 25), Image.Resampling.LANCZOS).save(shrunk, "JPEG", quality=75)
    Image.open(shrunk).save(images / "ex0021.png")
    _seven(stem_end=13).save(images / "ex0022.png")
    with db.begin() as session:
        import_predictions(session, path, project="pets")
        analyze(session, project_id=get_project(session, "pets").id)
    with db.begin() as session:
        found = dict(
            session.execute(
                select(Example.example_id, Signal.reason)
                .join(Signal, Signal.example_pk == Example.id)
                .where(Signal.kind == "near duplicate")
            ).all()
        )
    assert set(found) == {"ex0020", "ex0021"}
    assert found["ex0021"].startswith("looks like 'images/ex0020.png' in the dev set")


def test_a_second_analysis_measures_only_new_images_and_replaces_the_signals(
    db: Database, project: int
) -> None:
    """Measures are kept per image: analysing again reads no image, and leaves one signal per
    example and kind (replaced, not added)."""
    with db.begin() as session:
        first = analyze(session, project_id=project)
    with db.begin() as session:
        signals_before = session.scalar(select(func.count()).select_from(Signal))
        second = analyze(session, project_id=project)
        signals_after = session.scalar(select(func.count()).select_from(Signal))
        measured = session.scalar(select(func.count()).select_from(ImageMeasure))
    assert (first.measured, second.measured) == (N, 0)
    assert measured == N
    assert signals_before == signals_after > 0


def test_deleting_the_project_deletes_its_signals_and_measures(db: Database, project: int) -> None:
    with db.begin() as session:
        analyze(session, project_id=project)
    with db.begin() as session:
        session.delete(session.get(Project, project))
    with db.begin() as session:
        assert session.scalar(select(func.count()).select_from(Signal)) == 0
        assert session.scalar(select(func.count()).select_from(ImageMeasure)) == 0


def test_the_cli_analyses_and_lists_suggestions_as_csv_and_json(db_url: str, tmp_path: Path):
    """`labeltool analyze` then `labeltool suggest --format csv|json`: the columns the issue
    names, the flipped label first among the likely label errors."""
    path = _project_files(tmp_path / "project")
    runner = CliRunner()
    base = ["--db", db_url]
    result = runner.invoke(
        cli,
        [
            *base,
            "import",
            str(path),
            "--project",
            "pets",
        ],
    )
    assert result.exit_code == 0, result.output
    _add_label_error_category(db_url)

    result = runner.invoke(cli, [*base, "analyze", "--project", "pets"])
    assert result.exit_code == 0, result.output
    assert "likely label error" in result.output

    result = runner.invoke(cli, [*base, "suggest", "--project", "pets", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert list(rows[0]) == ["example_id", "category", "score", "reason"]
    assert rows[0]["example_id"] == FLIPPED and rows[0]["category"] == "incorrectly labeled"

    result = runner.invoke(cli, [*base, "suggest", "--project", "pets", "--format", "json"])
    assert json.loads(result.output)[0]["example_id"] == FLIPPED


def test_each_suggesters_precision_is_judged_by_the_reviewers_own_tags(
    db: Database, project: int
) -> None:
    """Of the reviewed errors a suggester spoke about, the share the reviewers tagged with its
    category (precision), and of those they tagged, the share it had suggested (recall)."""
    from labeltool.labeling import mark_reviewed, set_tag
    from labeltool.models import Category, Example
    from labeltool.signals import suggester_quality

    with db.begin() as session:
        analyze(session, project_id=project)
    with db.begin() as session:
        pk = {e.example_id: e.id for e in session.scalars(select(Example))}
        category = {c.name: c.id for c in session.scalars(select(Category))}
        # The flipped label: suggested and confirmed. ex0003 (blurred, an error): suggested
        # blurry, reviewed without it. ex0000 (sharp, an error): tagged blurry unsuggested.
        set_tag(
            session,
            example_pks=[pk[FLIPPED]],
            category_id=category["incorrectly labeled"],
            reviewer="ana",
        )
        set_tag(session, example_pks=[pk["ex0000"]], category_id=category["Blurry"], reviewer="ana")
        mark_reviewed(
            session, example_pks=[pk[i] for i in (FLIPPED, "ex0003", "ex0000")], reviewer="ana"
        )

    with db.begin() as session:
        quality = {q.kind: q for q in suggester_quality(session, project_id=project)}
    label = quality[LABEL_ERROR]
    assert (label.category, label.suggested, label.confirmed, label.tagged) == (
        "incorrectly labeled",
        1,
        1,
        1,
    )
    assert label.precision == 1.0
    blurry = quality["blurry"]
    assert (blurry.category, blurry.suggested, blurry.confirmed, blurry.tagged) == (
        "Blurry",
        1,
        0,
        1,
    )
    assert (blurry.precision, blurry.recall) == (0.0, 0.0)


def test_the_cli_prints_each_suggesters_quality(db_url: str, tmp_path: Path) -> None:
    """`labeltool suggest --quality --format csv`: one row a suggester with its counts; before
    any review its precision is empty (not 0), since nothing has been judged."""
    path = _project_files(tmp_path / "project")
    runner = CliRunner()
    base = ["--db", db_url]
    assert runner.invoke(cli, [*base, "import", str(path), "--project", "pets"]).exit_code == 0
    _add_label_error_category(db_url)
    assert runner.invoke(cli, [*base, "analyze", "--project", "pets", "--no-images"]).exit_code == 0

    result = runner.invoke(
        cli, [*base, "suggest", "--project", "pets", "--quality", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["suggester"], r["category"], r["suggested"], r["precision"]) for r in rows] == [
        (LABEL_ERROR, "incorrectly labeled", "0", "")
    ]


def test_the_report_page_shows_how_good_the_suggestions_are(
    db: Database, project: int, run_app
) -> None:
    """The ceiling report has a table of each suggester's precision and recall on the reviewed
    errors; before any analysis, it says how to get suggestions."""
    at = run_app(db, "app_pages/report.py", query_params={"project": "pets"})
    assert not at.exception, at.exception
    assert any("labeltool analyze" in c.value for c in at.caption)

    from labeltool.labeling import mark_reviewed, set_tag
    from labeltool.models import Category, Example

    with db.begin() as session:
        analyze(session, project_id=project)
        pk = {e.example_id: e.id for e in session.scalars(select(Example))}
        wrong = session.scalar(select(Category.id).where(Category.name == "incorrectly labeled"))
        set_tag(session, example_pks=[pk[FLIPPED]], category_id=wrong, reviewer="ana")
        mark_reviewed(session, example_pks=[pk[FLIPPED]], reviewer="ana")

    at = run_app(db, "app_pages/report.py", query_params={"project": "pets"})
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "suggester" in d.value.columns)
    row = table.set_index("suggester").loc[LABEL_ERROR]
    assert (row["category"], row["suggested"], row["confirmed"], row["precision"]) == (
        "incorrectly labeled",
        1,
        1,
        1.0,
    )


def test_import_with_analyze_stores_the_signals_in_one_command(db_url: str, tmp_path: Path):
    """`labeltool import --analyze` imports, then analyses the run it imported: the likely
    label error and the blurred images are stored without a second command."""
    path = _project_files(tmp_path / "project")
    result = CliRunner().invoke(
        cli, ["--db", db_url, "import", str(path), "--project", "pets", "--analyze"]
    )
    assert result.exit_code == 0, result.output
    assert f"{N} dev examples analysed, {N} images measured" in result.output

    database = Database.open(db_url)
    try:
        with database.begin() as session:
            kinds = {
                kind: n
                for kind, n in session.execute(
                    select(Signal.kind, func.count()).group_by(Signal.kind)
                )
            }
    finally:
        database.dispose()
    assert kinds[LABEL_ERROR] >= 1 and kinds["blurry"] == len(BLURRED)
