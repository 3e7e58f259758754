"""Benchmark the suggestions on the sample projects: precision, recall and keystrokes saved.

Each sample project (`digits` with runs 1 and 2, `shapes`) is imported into a fresh SQLite
file of its own in a temp dir as `make run` does (`import_predictions` of each run in turn,
its categories.csv after the first), and `labeltool.signals.analyze` is run on each run (run
2 reuses run 1's image measures: the same images). Its stored signals are then judged against the
project's ground_truth.csv (what the build injected; the app never reads it):

    likely label error   against label_flipped
    blurry               against blurred
    dark                 against dark (shapes only: the digits ground truth has no column)

at each suggester's default threshold (confident learning's own; `flag_outliers`' share of
5%), over (a) every dev example and (b) the run's dev errors only, the ones a reviewer sees:
flagged, true, precision and recall. The other kinds (bright, low information, odd size, near
duplicate) have no ground truth; their counts are printed. Beside the label-error row,
cleanlab's own `cleanlab.filter.find_label_issues(labels, pred_probs)` (defaults) on the
probabilities `analyze` used (the run's dev rows, each normalised to sum to 1): its precision
and recall, and whether its set is labeltool's. cleanlab (AGPL) is a dev dependency imported
only here; labeltool never imports it. The label-error flags on labels that were not flipped
are broken down by the image fault they have (blurred, dark, neither). `analyze` sets aside
the likely label errors on images it flags degraded (blurry, dark, ...) when the model often
misreads such images, so the label-error row is what is suggested, and cleanlab's set is
compared with labeltool's confident learning before that step (labeltool.label_issues).

Keystrokes, simulated from the ground truth over the run's dev errors: the reviewer tags each
error with its true categories among the project's (blurry if blurred, the incorrect-label
category if flipped, dark if dark, the confusion-pair category, e.g. "7-as-9", if the error is
that pair and its label was not flipped, as sample_data/build_sample.py's reviewer does), then
presses `n`. Without suggestions: one key per true category, + 1. With them (`Enter` accepts
all of an example's suggested categories): the fewer of accepting (1, then one key per wrong
suggestion to toggle off and per missing category to toggle on) and ignoring them (one key
per true category), + 1; an example with no suggestion costs what it costs without.

    .venv/bin/python bench/bench_suggestions.py [--project digits|shapes|all]

Near duplicates have no ground truth in the samples, so they are planted: PLANTED dev images
of each sample are copied beside the originals (in a temp project holding the sample's images
and its first run's rows, plus one row per copy), each copy changed one way of PERTURBATIONS
(re-saved, 10% larger or smaller, 10% brighter or darker, re-encoded as JPEG at quality 75),
and `analyze` is run. Recall: the copies whose near-duplicate signal names their original.
False flags: near-duplicate flags on the untouched images (neither a copy nor an original of
one). Beside them, what the perceptual hash alone (`near_duplicates`, the candidates `analyze`
confirms on the pictures) would have flagged.

Prints figures; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance, ImageOps  # noqa: E402
from sqlalchemy import select  # noqa: E402

from labeltool.categories import list_categories, load_categories_file  # noqa: E402
from labeltool.config import DEFAULT_SPLIT  # noqa: E402
from labeltool.db import Database  # noqa: E402
from labeltool.image_measures import near_duplicates  # noqa: E402
from labeltool.importing import import_predictions  # noqa: E402
from labeltool.models import Example, ImageMeasure, Signal  # noqa: E402
from labeltool.projects import get_project  # noqa: E402
from labeltool.runs import get_run  # noqa: E402
from labeltool.signals import (  # noqa: E402
    KINDS,
    LABEL_ERROR,
    NEAR_DUPLICATE,
    analyze,
    category_for_kind,
    suggestions,
)

SAMPLE = REPO / "sample_data"


@dataclass(frozen=True)
class SampleProject:
    folder: Path
    #: (run name, predictions file in `folder`), imported in this order.
    runs: tuple[tuple[str, str], ...]


PROJECTS = {
    "digits": SampleProject(SAMPLE, (("1", "predictions.csv"), ("2", "predictions_run2.csv"))),
    "shapes": SampleProject(SAMPLE / "shapes", (("1", "predictions.csv"),)),
}
#: Suggester kind -> the ground-truth column that says whether it should fire.
TRUTH_COLUMN = {LABEL_ERROR: "label_flipped", "blurry": "blurred", "dark": "dark"}
CLEANLAB = "cleanlab"
#: How many dev images of each sample the near-duplicate check copies, spread over the split.
PLANTED = 30
#: How each copy differs from its original (taken upright), in turn.
PERTURBATIONS = (
    "re-saved",
    "10% larger",
    "10% smaller",
    "10% brighter",
    "10% darker",
    "JPEG q75",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--project", choices=[*PROJECTS, "all"], default="all", help="sample project(s)"
    )
    args = parser.parse_args()
    chosen = list(PROJECTS) if args.project == "all" else [args.project]

    started = time.perf_counter()
    summaries, planted = [], []
    for name in chosen:
        summaries += _bench_project(name, PROJECTS[name])
        planted.append(_bench_near_duplicates(name, PROJECTS[name]))
    _print_summary(summaries)
    _print_planted(planted)
    print(f"\nwhole bench: {time.perf_counter() - started:.1f}s")


# --- one project -----------------------------------------------------------------------


def _bench_project(name: str, sample: SampleProject) -> list[dict]:
    truth = _ground_truth(sample.folder / "ground_truth.csv")
    found = []
    with tempfile.TemporaryDirectory(prefix="labeltool-bench-suggestions-") as tmp:
        db = Database.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            for position, (run, file) in enumerate(sample.runs):
                with db.begin() as session:
                    import_predictions(session, sample.folder / file, project=name, run=run)
                    project_id = get_project(session, name).id
                    if position == 0:
                        load_categories_file(
                            session, sample.folder / "categories.csv", project_id=project_id
                        )
                took = time.perf_counter()
                with db.begin() as session:
                    summary = analyze(session, project_id=project_id, run=run)
                took = time.perf_counter() - took
                print(f"{name} run {run}: analyze {took:.1f}s: {summary}")
                with db.begin() as session:
                    found.append(_bench_run(session, f"{name} run {run}", project_id, run, truth))
                print(flush=True)
        finally:
            db.dispose()
    return found


def _bench_run(session, case: str, project_id: int, run: str, truth: dict) -> dict:
    project = get_project(session, case.split()[0])
    run_id = get_run(session, project_id=project_id, name=run).id
    rows = session.execute(
        select(
            Example.id,
            Example.example_id,
            Example.label,
            Example.prediction,
            Example.probabilities,
            Example.is_error,
        )
        .where(Example.run_id == run_id, Example.split == DEFAULT_SPLIT)
        .order_by(Example.id)
    ).all()
    missing = [r.example_id for r in rows if r.example_id not in truth]
    if missing:
        raise SystemExit(f"{case}: {len(missing)} dev examples not in ground_truth.csv")
    signals: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for example_id, kind in session.execute(
        select(Example.example_id, Signal.kind)
        .join(Signal, Signal.example_pk == Example.id)
        .where(Example.run_id == run_id, Example.split == DEFAULT_SPLIT)
    ):
        signals.setdefault(kind, set()).add(example_id)
    dev = {r.example_id for r in rows}
    errors = {r.example_id for r in rows if r.is_error}
    columns = next(iter(truth.values())).keys()
    judged = [kind for kind, column in TRUTH_COLUMN.items() if column in columns]
    actual = {kind: {e for e in dev if truth[e][TRUTH_COLUMN[kind]] == "true"} for kind in judged}

    cleanlab_set, cleanlab_version = _cleanlab_issues(rows, list(project.class_names))
    print(f"  {len(dev):,} dev examples, {len(errors):,} of them errors")
    header = (
        f"  {'suggester':<20}{'':>2}{'flagged':>8}{'true':>6}{'precision':>10}{'recall':>8}"
        f"{'':>4}{'flagged':>8}{'true':>6}{'precision':>10}{'recall':>8}"
    )
    print(f"  {'':<22}{'all dev examples':^32}{'':>4}{'dev errors (what a reviewer sees)':^32}")
    print(header)
    print("  " + "-" * (len(header) - 2))
    for kind in judged:
        _quality_row(kind, signals[kind], actual[kind], dev, errors)
        if kind == LABEL_ERROR:
            _quality_row(
                f"  {CLEANLAB} {cleanlab_version}", cleanlab_set, actual[kind], dev, errors
            )
    core = _core_issues(rows, list(project.class_names))
    same = cleanlab_set == core
    only_ours = len(core - cleanlab_set)
    only_theirs = len(cleanlab_set - core)
    print(
        f"  cleanlab's set equals labeltool's confident learning (before setting aside those "
        f"on degraded images: {len(core - signals[LABEL_ERROR])}): {'yes' if same else 'NO'}"
        + ("" if same else f" ({only_ours} only labeltool's, {only_theirs} only cleanlab's)")
    )
    wrong = signals[LABEL_ERROR] - actual[LABEL_ERROR]
    causes = [c for c in ("blurred", "dark") if c in columns]
    neither = sum(1 for e in wrong if not any(truth[e][c] == "true" for c in causes))
    print(
        f"  label-error flags on labels not flipped: {len(wrong)}; of them "
        + ", ".join(f"{sum(truth[e][c] == 'true' for e in wrong)} {c}" for c in causes)
        + f", {neither} neither"
    )
    unjudged = [kind for kind in KINDS if kind not in judged]
    print(
        "  no ground truth, flagged (dev / errors): "
        + ", ".join(f"{k} {len(signals[k])}/{len(signals[k] & errors)}" for k in unjudged)
    )

    keys = _keystrokes(session, project_id, run, rows, truth)
    _print_keys(keys)
    label = signals[LABEL_ERROR]
    return {
        "case": case,
        "errors": len(errors),
        "label error recall": _ratio(len(label & actual[LABEL_ERROR]), len(actual[LABEL_ERROR])),
        "blurry recall": _ratio(len(signals["blurry"] & actual["blurry"]), len(actual["blurry"])),
        "cleanlab same": same,
        **keys,
    }


def _quality_row(name: str, flagged: set, actual: set, dev: set, errors: set) -> None:
    cells = []
    for scope in (dev, errors):
        mine, true = flagged & scope, actual & scope
        hit = len(mine & true)
        cells.append(
            f"{len(mine):>8}{len(true):>6}{_pct(_ratio(hit, len(mine))):>10}"
            f"{_pct(_ratio(hit, len(true))):>8}"
        )
    print(f"  {name:<22}{cells[0]}{'':>4}{cells[1]}")


def _core_issues(rows, classes: list[str]) -> set[str]:
    """The example ids labeltool.label_issues flags on the same probabilities as cleanlab's,
    before analyze sets aside those on degraded images."""
    from labeltool import label_issues

    usable, labels, probs = _usable(rows, classes)
    flagged = label_issues.find_label_issues(labels, probs, rank_by="self_confidence")
    return {usable[int(i)].example_id for i in flagged}


def _cleanlab_issues(rows, classes: list[str]) -> tuple[set[str], str]:
    """The example ids cleanlab flags, on the probabilities analyze gives confident learning:
    the rows with a probability for every class and a known label, each normalised to sum 1."""
    import cleanlab
    from cleanlab.filter import find_label_issues

    usable, labels, probs = _usable(rows, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mask = find_label_issues(labels, probs)
    return {usable[i].example_id for i in np.flatnonzero(mask)}, cleanlab.__version__


def _usable(rows, classes: list[str]) -> tuple[list, np.ndarray, np.ndarray]:
    index = {c: i for i, c in enumerate(classes)}
    usable = [
        r
        for r in rows
        if r.probabilities and r.label in index and all(c in r.probabilities for c in classes)
    ]
    labels = np.array([index[r.label] for r in usable])
    probs = np.array([[r.probabilities[c] for c in classes] for r in usable], dtype=float)
    totals = probs.sum(axis=1, keepdims=True)
    probs = np.divide(probs, totals, out=np.full_like(probs, 1 / len(classes)), where=totals > 0)
    return usable, labels, probs


# --- planted near duplicates ------------------------------------------------------------


def _bench_near_duplicates(name: str, sample: SampleProject) -> dict:
    """Recall on planted copies and false flags on the untouched images, for `analyze`'s
    near-duplicate signal and for the perceptual hash alone (see the module doc)."""
    run, file = sample.runs[0]
    with (sample.folder / file).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    dev = [row for row in rows if row.get("split", DEFAULT_SPLIT) == DEFAULT_SPLIT]
    originals = dev[:: len(dev) // PLANTED][:PLANTED]
    with tempfile.TemporaryDirectory(prefix="labeltool-bench-near-duplicates-") as tmp:
        folder = Path(tmp)
        shutil.copytree(sample.folder / "images", folder / "images")
        copies: dict[str, tuple[str, str]] = {}  # copy image -> (original image, change)
        for number, row in enumerate(originals):
            change = PERTURBATIONS[number % len(PERTURBATIONS)]
            copy = f"images/copy-{number:02d}.{'jpg' if change == 'JPEG q75' else 'png'}"
            with Image.open(sample.folder / row["image"]) as original:
                _perturbed(ImageOps.exif_transpose(original), change).save(
                    folder / copy, quality=75
                )
            copies[copy] = (row["image"], change)
            rows.append(row | {"example_id": f"copy-{number:02d}", "image": copy})
        with (folder / file).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        db = Database.open(f"sqlite:///{folder / 'bench.db'}")
        try:
            with db.begin() as session:
                import_predictions(session, folder / file, project=name, run=run)
                project_id = get_project(session, name).id
            took = time.perf_counter()
            with db.begin() as session:
                analyze(session, project_id=project_id, run=run)
            took = time.perf_counter() - took
            with db.begin() as session:
                flagged = dict(
                    session.execute(
                        select(Example.image, Signal.reason)
                        .join(Signal, Signal.example_pk == Example.id)
                        .where(Signal.kind == NEAR_DUPLICATE)
                    ).all()
                )
                hashes = dict(
                    session.execute(
                        select(ImageMeasure.image, ImageMeasure.phash).where(
                            ImageMeasure.project_id == project_id, ImageMeasure.phash.is_not(None)
                        )
                    ).all()
                )
        finally:
            db.dispose()
    planted = {original for original, _ in copies.values()} | set(copies)
    hash_pairs = {frozenset(pair[:2]) for pair in near_duplicates(hashes)}
    hash_flagged = {image for pair in hash_pairs for image in pair}
    found = {c for c, (original, _) in copies.items() if f"'{original}'" in flagged.get(c, "")}
    by_hash = {c for c, (original, _) in copies.items() if frozenset((c, original)) in hash_pairs}
    missed = sorted({change for c, (_, change) in copies.items() if c not in found})
    most = max((_difference(flagged[c]) for c in found), default=None)
    print(
        f"{name}: {len(copies)} planted copies among {len(dev):,} dev images, analyze "
        f"{took:.1f}s: found {len(found)} ({_pct(_ratio(len(found), len(copies)))}), "
        f"{len(set(flagged) - planted)} untouched images flagged"
        + (f"; missed: {', '.join(missed)}" if missed else "")
        + (f"; most different found {most:.3f}" if most is not None else "")
        + f". Hash alone: found {len(by_hash)}, {len(hash_flagged - planted)} untouched flagged"
    )
    return {
        "case": name,
        "planted": len(copies),
        "untouched": len(dev) - len(originals),
        "found": len(found),
        "false": len(set(flagged) - planted),
        "hash found": len(by_hash),
        "hash false": len(hash_flagged - planted),
    }


def _difference(reason: str) -> float:
    """The difference a near-duplicate reason gives ("... (difference 0.004 of ...")."""
    return float(re.search(r"difference ([0-9.]+)", reason).group(1))


def _perturbed(picture: Image.Image, change: str) -> Image.Image:
    """A copy of `picture` changed as PERTURBATIONS names ("JPEG q75" is encoded on saving as
    .jpg with quality 75; PNG ignores the quality)."""
    width, height = picture.size
    if change == "10% larger":
        return picture.resize((round(width * 1.1), round(height * 1.1)), Image.Resampling.LANCZOS)
    if change == "10% smaller":
        return picture.resize((round(width * 0.9), round(height * 0.9)), Image.Resampling.LANCZOS)
    if change in ("10% brighter", "10% darker"):
        return ImageEnhance.Brightness(picture).enhance(1.1 if change == "10% brighter" else 0.9)
    if change == "JPEG q75":
        return picture.convert("RGB")
    return picture.copy()


def _print_planted(planted: list[dict]) -> None:
    print("\nNear duplicates, planted copies (recall) and untouched images flagged (false flags)")
    header = (
        f"  {'case':<14}{'planted':>8}{'found':>7}{'recall':>8}{'untouched':>11}{'false':>7}"
        f"{'':>4}{'hash alone: found':>18}{'false':>7}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for p in planted:
        print(
            f"  {p['case']:<14}{p['planted']:>8}{p['found']:>7}"
            f"{_pct(_ratio(p['found'], p['planted'])):>8}{p['untouched']:>11,}{p['false']:>7}"
            f"{'':>4}{p['hash found']:>18}{p['hash false']:>7}"
        )


# --- keystrokes ------------------------------------------------------------------------


def _keystrokes(session, project_id: int, run: str, rows, truth: dict) -> dict:
    """Mean keys per reviewed error without and with suggestions, and how each went."""
    categories = list_categories(session, project_id=project_id)
    names = {c.name for c in categories}
    by_kind = category_for_kind(categories)
    incorrect = by_kind.get(LABEL_ERROR)
    pairs = {
        c.name: tuple(c.name.split("-as-", 1))
        for c in categories
        if "-as-" in c.name and c.name not in by_kind.values()
    }
    suggested: dict[str, set[str]] = {}
    for suggestion in suggestions(session, project_id=project_id, run=run):
        suggested.setdefault(suggestion.example_id, set()).add(suggestion.category)

    without, with_ = [], []
    outcome = {"exact": 0, "exact multi": 0, "accepted": 0, "ignored": 0, "none": 0}
    sizes: dict[int, int] = {}
    for row in rows:
        if not row.is_error:
            continue
        fault = truth[row.example_id]
        flipped = fault.get("label_flipped") == "true"
        true = set()
        if fault.get("blurred") == "true" and "blurry" in names:
            true.add("blurry")
        if fault.get("dark") == "true" and "dark" in names:
            true.add("dark")
        if flipped and incorrect:
            true.add(incorrect)
        for name, pair in pairs.items():
            if (row.label, row.prediction) == pair and not flipped:
                true.add(name)
        offered = suggested.get(row.example_id, set())
        sizes[len(true)] = sizes.get(len(true), 0) + 1
        without.append(len(true) + 1)
        if not offered:
            with_.append(len(true) + 1)
            outcome["none"] += 1
            continue
        accept = 1 + len(offered - true) + len(true - offered)
        if offered == true:
            outcome["exact"] += 1
            outcome["exact multi"] += len(true) > 1
        elif accept < len(true):
            outcome["accepted"] += 1
        else:
            outcome["ignored"] += 1
        with_.append(min(accept, len(true)) + 1)
    before = statistics.fmean(without) if without else 0.0
    after = statistics.fmean(with_) if with_ else 0.0
    return {
        "reviewed": len(without),
        "keys without": before,
        "keys with": after,
        "total without": sum(without),
        "total with": sum(with_),
        **outcome,
        "sizes": dict(sorted(sizes.items())),
    }


def _print_keys(keys: dict) -> None:
    saving = keys["keys without"] - keys["keys with"]
    share = saving / keys["keys without"] if keys["keys without"] else 0.0
    print(
        f"  keystrokes per reviewed error ({keys['reviewed']} errors): without suggestions "
        f"{keys['keys without']:.2f}, with {keys['keys with']:.2f}; saving {saving:.2f} "
        f"({share:.0%}; {keys['total without']} -> {keys['total with']} keys)"
    )
    print(
        f"    suggested set = true set {keys['exact']} ({keys['exact multi']} of them with 2+ "
        f"categories), accepted and corrected {keys['accepted']}, ignored (accepting costs as "
        f"much or more) {keys['ignored']}, no suggestion {keys['none']}"
    )
    sizes = ", ".join(f"{size}: {count}" for size, count in keys["sizes"].items())
    print(f"    errors by number of true categories: {sizes}")


def _print_summary(summaries: list[dict]) -> None:
    print("Summary")
    header = (
        f"  {'case':<14}{'errors':>7}{'label-error recall':>20}{'blurry recall':>15}"
        f"{'= cleanlab':>12}{'keys without':>14}{'keys with':>11}{'saving':>9}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for s in summaries:
        saving = s["keys without"] - s["keys with"]
        print(
            f"  {s['case']:<14}{s['errors']:>7}{_pct(s['label error recall']):>20}"
            f"{_pct(s['blurry recall']):>15}{'yes' if s['cleanlab same'] else 'NO':>12}"
            f"{s['keys without']:>14.2f}{s['keys with']:>11.2f}{saving:>9.2f}"
        )
    print("  recall over all dev examples; keys: mean per reviewed dev error, `n` included.")


# --- small helpers ---------------------------------------------------------------------


def _ground_truth(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["example_id"]: row for row in csv.DictReader(handle)}


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


if __name__ == "__main__":
    main()
