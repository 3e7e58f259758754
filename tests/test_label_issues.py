"""Confident learning's label issues: worked by hand on tiny arrays, and checked against cleanlab
(the reference implementation, AGPL, used here only as an oracle) on seeded noisy data."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeltool import label_issues as module
from labeltool.errors import LabeltoolError
from labeltool.label_issues import (
    InvalidPredictions,
    confident_joint,
    describe_label_issues,
    find_label_issues,
    label_quality,
    per_class_thresholds,
)

RANKINGS = ["self_confidence", "normalized_margin"]


def confident(label: int, k: int = 3, p: float = 0.9) -> list[float]:
    """A row that puts `p` on `label` and spreads the rest evenly."""
    row = [(1 - p) / (k - 1)] * k
    row[label] = p
    return row


def noisy_dataset(
    seed: int, n: int, k: int, *, noise: float = 0.2, dtype: type = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax outputs of a fair-to-good model, with `noise` of the labels redrawn at random."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), truth] += rng.uniform(0, 4, n)
    pred_probs = np.exp(logits)
    pred_probs /= pred_probs.sum(axis=1, keepdims=True)
    labels = truth.copy()
    flipped = rng.random(n) < noise
    labels[flipped] = rng.integers(0, k, flipped.sum())
    return labels, pred_probs.astype(dtype)


def oracle(labels: np.ndarray, pred_probs: np.ndarray, **kwargs) -> np.ndarray:
    """cleanlab's answer; skipped when cleanlab is not installed."""
    cleanlab_filter = pytest.importorskip("cleanlab.filter")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "may not flag all label issues in class ..."
        return cleanlab_filter.find_label_issues(labels, pred_probs, n_jobs=1, **kwargs)


def assert_same_ranking(
    ours: np.ndarray, theirs: np.ndarray, labels: np.ndarray, pred_probs: np.ndarray, rank_by: str
) -> None:
    """Same examples; same order, except that examples with exactly equal scores may swap."""
    assert sorted(ours.tolist()) == sorted(theirs.tolist())
    scores = label_quality(labels, pred_probs, rank_by)
    np.testing.assert_array_equal(scores[ours], scores[theirs])


# --- worked by hand -----------------------------------------------------------------------------


def test_a_flipped_label_ranks_first() -> None:
    """Nine confident, correct examples and one labeled 0 that the model gives 0.97 to class 2:
    only that one is flagged, and its reason says so in the method's words."""
    rows = [confident(c) for c in (0, 0, 0, 1, 1, 1, 2, 2, 2)] + [[0.01, 0.02, 0.97]]
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 0])
    pred_probs = np.array(rows)

    for rank_by in RANKINGS:
        assert find_label_issues(labels, pred_probs, rank_by=rank_by).tolist() == [9]
    [issue] = describe_label_issues(labels, pred_probs, [9], class_names=["cat", "dog", "fox"])
    assert (
        issue.reason == "likely label error: the model gives 0.97 to fox, the label cat only 0.01"
    )


def test_the_least_likely_label_comes_first() -> None:
    """Of two examples labeled 0 that the model puts in class 1, the one it gives less to
    label 0 (0.05 against 0.30) leads, whichever score ranks them."""
    rows = [confident(0, k=2)] * 4 + [confident(1, k=2, p=0.6)] * 4
    rows += [[0.30, 0.70], [0.05, 0.95]]
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    pred_probs = np.array(rows)

    for rank_by in RANKINGS:
        assert find_label_issues(labels, pred_probs, rank_by=rank_by).tolist() == [9, 8]


def test_a_clean_dataset_has_no_issues() -> None:
    """When every example's top class is its label, nothing is flagged by either filter."""
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    pred_probs = np.array([confident(c, p=0.5 + 0.05 * i) for i, c in enumerate(labels)])

    for filter_by in ("prune_by_noise_rate", "confident_learning"):
        assert find_label_issues(labels, pred_probs, filter_by=filter_by).size == 0


def test_a_class_with_no_examples() -> None:
    """Class 2 has a column but no examples: its threshold is unreachable, its calibrated row is
    empty and nothing divides by zero. Nobody is counted into it, so the last example, which the
    model gives 0.8 to class 2, is not flagged: the method has no evidence about class 2."""
    labels = np.array([0, 0, 0, 1, 1, 1, 0])
    pred_probs = np.array([confident(0)] * 3 + [confident(1)] * 3 + [[0.1, 0.1, 0.8]])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        thresholds = per_class_thresholds(labels, pred_probs)
        joint = confident_joint(labels, pred_probs)
        issues = find_label_issues(labels, pred_probs)
    assert thresholds[2] == np.inf
    assert joint[2].tolist() == [0, 0, 0] and joint[:, 2].tolist() == [0, 0, 0]
    assert joint.sum(axis=1).tolist() == [4, 3, 0]
    assert issues.size == 0


def test_thresholds_are_each_class_mean_self_confidence() -> None:
    """t_0 = mean(0.9, 0.7, 0.2) = 0.6 and t_1 = mean(0.8, 0.6) = 0.7: the examples labeled 0
    vote on class 0's column only."""
    labels = np.array([0, 0, 0, 1, 1])
    pred_probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.2, 0.8], [0.4, 0.6]])

    np.testing.assert_allclose(per_class_thresholds(labels, pred_probs), [0.6, 0.7])


def test_the_confident_joint_counted_by_hand() -> None:
    """With thresholds 0.6 and 0.7: rows 0, 1 clear class 0 only; row 2 (labeled 0) clears
    class 1 only; row 3 clears 1; row 4 clears nothing and is not counted. Calibrated, row 0
    keeps its three examples and row 1 its two."""
    labels = np.array([0, 0, 0, 1, 1])
    pred_probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.2, 0.8], [0.4, 0.6]])

    assert confident_joint(labels, pred_probs, calibrate=False).tolist() == [[2, 1], [0, 1]]
    assert confident_joint(labels, pred_probs).tolist() == [[2, 1], [0, 2]]


def test_several_classes_cleared_counts_in_the_top_class() -> None:
    """Row [0.5, 0.3, 0.2] labeled 0 clears classes 1 (t=0.25) and 2 (t=0.15) but not 0 (t=0.8);
    it is counted in its top class, 0, as the reference implementation does (the paper's text
    takes the top among the cleared classes, which would be 1)."""
    rows = [[0.95, 0.03, 0.02]] * 2 + [[0.5, 0.3, 0.2]]
    rows += [[0.7, 0.25, 0.05]] * 2 + [[0.7, 0.15, 0.15]] * 2
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    pred_probs = np.array(rows)

    joint = confident_joint(labels, pred_probs, calibrate=False)

    assert joint.tolist() == [[3, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_label_quality_scores() -> None:
    """Given label 0 of [0.2, 0.7, 0.1]: self-confidence 0.2, normalized margin
    (0.2 - 0.7 + 1) / 2 = 0.25; a confident correct label scores near 1 on both."""
    labels = np.array([0, 1])
    pred_probs = np.array([[0.2, 0.7, 0.1], [0.0, 1.0, 0.0]])

    np.testing.assert_allclose(label_quality(labels, pred_probs, "self_confidence"), [0.2, 1.0])
    np.testing.assert_allclose(label_quality(labels, pred_probs, "normalized_margin"), [0.25, 1.0])


def test_a_label_tied_with_the_top_class_is_not_an_issue() -> None:
    """[0.5, 0.5, 0] labeled 1 is counted as confidently 0 (it clears t_0 = 0.4, not t_1 = 0.8),
    yet the model does not prefer another class to its label, so it is never flagged."""
    rows = [[0.4, 0.3, 0.3]] * 3 + [[0.1, 0.9, 0.0]] * 3 + [[0.5, 0.5, 0.0]] + [[0.1, 0.1, 0.8]] * 3
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    pred_probs = np.array(rows)

    assert confident_joint(labels, pred_probs, calibrate=False)[1].tolist() == [1, 3, 0]
    for filter_by in ("prune_by_noise_rate", "confident_learning"):
        assert find_label_issues(labels, pred_probs, filter_by=filter_by).size == 0


def test_no_examples() -> None:
    """n = 0 gives empty answers, not errors."""
    labels, pred_probs = np.array([], dtype=int), np.empty((0, 3))

    assert find_label_issues(labels, pred_probs).shape == (0,)
    assert label_quality(labels, pred_probs, "normalized_margin").shape == (0,)
    assert confident_joint(labels, pred_probs).tolist() == [[0] * 3] * 3
    assert describe_label_issues(labels, pred_probs, []) == []


def test_inputs_are_not_changed() -> None:
    """The caller's arrays come back as they went in (no renormalising in place)."""
    labels, pred_probs = noisy_dataset(0, 200, 3)
    before = labels.copy(), pred_probs.copy()

    find_label_issues(labels, pred_probs, rank_by="normalized_margin")

    np.testing.assert_array_equal(labels, before[0])
    np.testing.assert_array_equal(pred_probs, before[1])


def test_rows_slightly_off_one_are_used_as_given() -> None:
    """Probabilities rounded to two decimals (a row summing to 0.99) are accepted, not
    renormalised."""
    labels = np.array([0, 1, 1])
    pred_probs = np.array([[0.66, 0.33], [0.5, 0.5], [0.2, 0.8]])

    assert find_label_issues(labels, pred_probs).size == 0
    assert label_quality(labels, pred_probs)[0] == 0.66


@pytest.mark.parametrize(
    ("labels", "pred_probs", "says"),
    [
        ([0, 1], [0.5, 0.5], "2-D"),
        ([0, 1], np.empty((2, 0)), "2-D"),
        ([0, 1, 0], [[0.5, 0.5]] * 2, "one label per row"),
        ([0, 1], [[2.0, -1.0], [0.5, 0.5]], "logits"),
        ([0, 1], [[0.5, 0.2], [0.5, 0.5]], "sum to 1"),
        ([0, 1], [[np.nan, 0.5], [0.5, 0.5]], "NaN"),
        ([0, 2], [[0.5, 0.5]] * 2, "not a class"),
        ([0, -1], [[0.5, 0.5]] * 2, "not a class"),
        (["cat", "dog"], [[0.5, 0.5]] * 2, "class indices"),
        ([0, 0.5], [[0.5, 0.5]] * 2, "class indices"),
    ],
)
def test_invalid_inputs_are_refused_clearly(labels, pred_probs, says) -> None:
    """Malformed labels or probabilities raise one error, a ValueError and a LabeltoolError,
    that says what is wrong."""
    with pytest.raises(InvalidPredictions, match=says) as raised:
        find_label_issues(np.asarray(labels), np.asarray(pred_probs))
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, LabeltoolError)


@pytest.mark.parametrize(
    "options",
    [
        {"filter_by": "prune_by_class"},
        {"rank_by": "confidence_weighted_entropy"},
        {"frac_noise": 1.5},
        {"min_examples_per_class": -1},
        {"filter_by": "confident_learning", "frac_noise": 0.5},
    ],
)
def test_unsupported_options_are_refused(options) -> None:
    """An option we do not implement is an error, not silently ignored."""
    labels, pred_probs = noisy_dataset(0, 20, 2)
    with pytest.raises(ValueError):
        find_label_issues(labels, pred_probs, **options)


# --- agreement with cleanlab --------------------------------------------------------------------


@pytest.mark.parametrize("rank_by", RANKINGS)
@pytest.mark.parametrize("n", [50, 500, 5000])
@pytest.mark.parametrize("k", [2, 3, 10])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_agrees_with_cleanlab(seed: int, k: int, n: int, rank_by: str) -> None:
    """prune_by_noise_rate flags the same examples as cleanlab's find_label_issues, ranked the
    same way."""
    labels, pred_probs = noisy_dataset(seed, n, k)

    ours = find_label_issues(labels, pred_probs, rank_by=rank_by)
    theirs = oracle(labels, pred_probs, return_indices_ranked_by=rank_by)

    assert ours.size > 0
    assert_same_ranking(ours, theirs, labels, pred_probs, rank_by)


@pytest.mark.parametrize("calibrate", [True, False])
@pytest.mark.parametrize("k", [2, 3, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confident_joint_agrees_with_cleanlab(seed: int, k: int, calibrate: bool) -> None:
    """The confident joint equals cleanlab's compute_confident_joint, calibrated (what
    find_label_issues prunes by) or not."""
    cleanlab_count = pytest.importorskip("cleanlab.count")
    labels, pred_probs = noisy_dataset(seed, 500, k)

    ours = confident_joint(labels, pred_probs, calibrate=calibrate)
    theirs = cleanlab_count.compute_confident_joint(labels, pred_probs, calibrate=calibrate)

    np.testing.assert_array_equal(ours, theirs)
    if calibrate:
        assert ours.sum(axis=1).tolist() == np.bincount(labels, minlength=k).tolist()


def test_thresholds_agree_with_cleanlab() -> None:
    """Per-class thresholds equal cleanlab's get_confident_thresholds (its 2 for an empty class
    is our inf: both are out of any probability's reach)."""
    cleanlab_count = pytest.importorskip("cleanlab.count")
    labels, pred_probs = noisy_dataset(0, 300, 4)
    labels[labels == 3] = 0

    ours = per_class_thresholds(labels, pred_probs)
    theirs = cleanlab_count.get_confident_thresholds(labels, pred_probs)

    np.testing.assert_array_equal(ours[:3], theirs[:3])
    assert ours[3] == np.inf and theirs[3] > 1


@pytest.mark.parametrize("k", [3, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_confident_learning_filter_agrees_with_cleanlab(seed: int, k: int) -> None:
    """filter_by='confident_learning' (the off-diagonals of the confident joint) matches too."""
    labels, pred_probs = noisy_dataset(seed, 1000, k)

    ours = find_label_issues(labels, pred_probs, filter_by="confident_learning")
    theirs = oracle(
        labels,
        pred_probs,
        filter_by="confident_learning",
        return_indices_ranked_by="self_confidence",
    )

    assert_same_ranking(ours, theirs, labels, pred_probs, "self_confidence")


@pytest.mark.parametrize(
    ("frac_noise", "min_examples_per_class"), [(0.5, 1), (0.1, 1), (1.0, 30), (0.7, 60)]
)
def test_pruning_options_agree_with_cleanlab(frac_noise: float, min_examples_per_class: int):
    """frac_noise and min_examples_per_class trim the flags exactly as cleanlab's do."""
    labels, pred_probs = noisy_dataset(4, 600, 10, noise=0.4)

    ours = find_label_issues(
        labels,
        pred_probs,
        frac_noise=frac_noise,
        min_examples_per_class=min_examples_per_class,
    )
    theirs = oracle(
        labels,
        pred_probs,
        frac_noise=frac_noise,
        min_examples_per_class=min_examples_per_class,
        return_indices_ranked_by="self_confidence",
    )

    assert_same_ranking(ours, theirs, labels, pred_probs, "self_confidence")


@pytest.mark.parametrize("rank_by", RANKINGS)
def test_float32_and_missing_classes_agree_with_cleanlab(rank_by: str) -> None:
    """float32 probabilities and a class nobody is labeled with give cleanlab's answer too."""
    labels, pred_probs = noisy_dataset(5, 2000, 10, dtype=np.float32)
    labels[labels == 7] = 3

    ours = find_label_issues(labels, pred_probs, rank_by=rank_by)
    theirs = oracle(labels, pred_probs, return_indices_ranked_by=rank_by)

    assert_same_ranking(ours, theirs, labels, pred_probs, rank_by)


@st.composite
def small_datasets(draw) -> tuple[np.ndarray, np.ndarray]:
    """2-60 examples over 2-5 classes, at least two classes labeled; rows often have exact
    zeros and ties, as rounded model outputs do."""
    k = draw(st.integers(2, 5))
    n = draw(st.integers(2, 60))
    weights = draw(
        st.lists(
            st.lists(
                st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 8.0]) | st.floats(0.0, 10.0),
                min_size=k,
                max_size=k,
            ).filter(lambda row: sum(row) > 0),
            min_size=n,
            max_size=n,
        )
    )
    labels = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    labels[:2] = [0, 1]
    pred_probs = np.array(weights) / np.sum(weights, axis=1, keepdims=True)
    return labels, pred_probs


@settings(max_examples=150, deadline=None, database=None)
@given(small_datasets(), st.sampled_from(["prune_by_noise_rate", "confident_learning"]))
def test_random_small_datasets(dataset, filter_by) -> None:
    """On any valid input: flags are unique, in range, only examples whose label is not the
    model's top class, ranked worst first, and exactly cleanlab's."""
    labels, pred_probs = dataset

    ours = find_label_issues(labels, pred_probs, filter_by=filter_by, rank_by="normalized_margin")

    assert len(set(ours.tolist())) == ours.size
    assert all(0 <= i < len(labels) for i in ours)
    assert (pred_probs[ours].argmax(axis=1) != labels[ours]).all()
    scores = label_quality(labels, pred_probs, "normalized_margin")[ours]
    assert (np.diff(scores) >= 0).all()
    theirs = oracle(
        labels, pred_probs, filter_by=filter_by, return_indices_ranked_by="normalized_margin"
    )
    assert_same_ranking(ours, theirs, labels, pred_probs, "normalized_margin")


# --- what the module is allowed to be -----------------------------------------------------------


def test_the_module_never_imports_cleanlab() -> None:
    """cleanlab is AGPL: importing labeltool.label_issues must not load it, and no import
    statement anywhere in the module names it."""
    check = "import sys, labeltool.label_issues; assert 'cleanlab' not in sys.modules"
    root = Path(module.__file__).parents[1]
    subprocess.run([sys.executable, "-c", check], cwd=root, check=True)

    tree = ast.parse(Path(module.__file__).read_text())
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.split(".")[0] == "cleanlab"]


def test_a_hundred_thousand_examples_in_well_under_a_second() -> None:
    """100,000 x 10 probabilities are checked, pruned and ranked in under a second."""
    labels, pred_probs = noisy_dataset(0, 100_000, 10)

    started = time.perf_counter()
    issues = find_label_issues(labels, pred_probs, rank_by="normalized_margin")
    elapsed = time.perf_counter() - started

    assert issues.size > 10_000
    assert elapsed < 1.0
