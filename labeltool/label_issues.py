"""Which examples are likely incorrectly labeled: confident learning over predicted probabilities.

The method is Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in Dataset
Labels" (JAIR 2021). Given out-of-sample predicted probabilities (one row per example):

1. **Per-class threshold** t_c: the model's mean self-confidence on the examples labeled c, so a
   class the model is timid about is not held to a bar it never reaches (Sec. 3.1).
2. **Confident joint** C[given label, likely true label]: an example is counted when at least
   one class clears its threshold; it goes to that class, or to the top class when several do.
   C is then calibrated so each row holds its label's count and the whole sums to n (Sec. 3.1).
3. **Prune by noise rate**: for each off-diagonal cell C[i, j], flag the C[i, j] examples given
   label i whose margin p_j - p_i is largest (Sec. 3.2). Alternatively, **confident learning**
   flags exactly the examples counted off the diagonal.
4. Drop any flagged example whose given label is (within 1e-6) the model's top class, and rank
   the rest by a label-quality score, lowest first: the most likely label errors lead.

The small conventions (the 1e-6 slack on thresholds, the top class over all classes when several
clear their thresholds, the floor of one example on C's diagonal, rounding that keeps row totals)
are those of the cleanlab 2.x reference implementation, so these flags are the ones a reader of
the paper's code would get. This module is our own numpy and never imports cleanlab (AGPL);
the tests use it only as an oracle. No database, no streamlit; loops run over classes, never
over examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from labeltool.errors import LabeltoolError

FilterBy = Literal["prune_by_noise_rate", "confident_learning"]
RankBy = Literal["self_confidence", "normalized_margin"]

#: An example clears class c's threshold when p_c >= t_c - THRESHOLD_SLACK: float error in the
#: mean must not push out the examples that sit exactly at it.
THRESHOLD_SLACK = 1e-6
#: Thresholds are at least this: a class the model never believes in (t = 0) would otherwise
#: count every example as confidently in it.
THRESHOLD_FLOOR = 2 * THRESHOLD_SLACK
#: A given label within this much of the top probability is a tie, and a tie is no disagreement.
TIE_MARGIN = 1e-6
#: Probabilities may stray this far outside [0, 1] (float error) before we refuse them.
PROBABILITY_SLACK = 1e-6
#: A row may sum this far from 1 (rounded CSV values) and is used as given; further off, the
#: numbers are not probabilities (logits, scores) and we refuse rather than guess a softmax.
ROW_SUM_TOLERANCE = 1e-2


class InvalidPredictions(LabeltoolError, ValueError):
    """Labels or predicted probabilities that the method cannot read; says what and where."""


@dataclass(frozen=True)
class LabelIssue:
    """One flagged example, in the method's words: what it is labeled and what the model says."""

    index: int
    given_label: str
    likely_label: str
    given_probability: float
    likely_probability: float

    @property
    def reason(self) -> str:
        """One line a reviewer can read next to the image."""
        return (
            f"likely label error: the model gives {self.likely_probability:.2f} to "
            f"{self.likely_label}, the label {self.given_label} only {self.given_probability:.2f}"
        )


def per_class_thresholds(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Each class's threshold t_c: the mean of p_c over the examples labeled c.

    A class with no examples gets `inf`: nothing can be confidently counted into a class we know
    nothing about. Thresholds are floored at THRESHOLD_FLOOR.
    """
    labels, pred_probs = _checked(labels, pred_probs)
    return _thresholds(pred_probs, _rows_by_class(labels, pred_probs.shape[1]))


def confident_joint(
    labels: np.ndarray, pred_probs: np.ndarray, *, calibrate: bool = True
) -> np.ndarray:
    """The k x k confident joint: C[i, j] counts examples given label i that are confidently j.

    The diagonal is at least 1, so every row has somewhere to put its label's count. Calibrated
    (the default, and what `find_label_issues` prunes by), row i sums to the number of examples
    labeled i and the whole to n, in whole examples.
    """
    labels, pred_probs = _checked(labels, pred_probs)
    rows_by_class = _rows_by_class(labels, pred_probs.shape[1])
    return _confident_joint(labels, pred_probs, rows_by_class, calibrate=calibrate)


def label_quality(
    labels: np.ndarray, pred_probs: np.ndarray, rank_by: RankBy = "self_confidence"
) -> np.ndarray:
    """Each example's label-quality score in [0, 1]; lower means more likely mislabeled.

    `self_confidence` is p of the given label. `normalized_margin` is (p_label - max of the other
    classes' p + 1) / 2: it also asks whether another class is clearly preferred.
    """
    _check_choice("rank_by", rank_by, RankBy)
    labels, pred_probs = _checked(labels, pred_probs)
    return _quality(labels, pred_probs, rank_by)


def find_label_issues(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    filter_by: FilterBy = "prune_by_noise_rate",
    rank_by: RankBy = "self_confidence",
    frac_noise: float = 1.0,
    min_examples_per_class: int = 1,
) -> np.ndarray:
    """Indices of the examples likely incorrectly labeled, the most likely first.

    `frac_noise` < 1 flags only that fraction of each noise cell (the most confident ones);
    a class with `min_examples_per_class` examples or fewer is never pruned (and pruning stops
    short of taking a class below that many). Both apply to `prune_by_noise_rate` only.
    """
    _check_choice("filter_by", filter_by, FilterBy)
    _check_choice("rank_by", rank_by, RankBy)
    if not 0.0 <= frac_noise <= 1.0:
        raise ValueError(f"frac_noise is a fraction in [0, 1], not {frac_noise!r}")
    if min_examples_per_class < 0 or int(min_examples_per_class) != min_examples_per_class:
        raise ValueError(f"min_examples_per_class is a count >= 0, not {min_examples_per_class!r}")
    if filter_by == "confident_learning" and (frac_noise != 1.0 or min_examples_per_class != 1):
        raise ValueError("frac_noise and min_examples_per_class apply to prune_by_noise_rate only")

    labels, pred_probs = _checked(labels, pred_probs)
    rows_by_class = _rows_by_class(labels, pred_probs.shape[1])
    if filter_by == "confident_learning":
        thresholds = _thresholds(pred_probs, rows_by_class)
        counted, likely = _confident_classes(pred_probs, thresholds)
        flagged = counted & (likely != labels)
    else:
        joint = _confident_joint(labels, pred_probs, rows_by_class, calibrate=True)
        prune_counts = _prune_counts(
            joint, keep_at_least=int(min_examples_per_class), frac_noise=frac_noise
        )
        # A class of one example is never pruned: there is nothing to weigh it against.
        too_few = max(int(min_examples_per_class), 1)
        flagged = _prune_by_noise_rate(pred_probs, rows_by_class, prune_counts, too_few=too_few)

    candidates = np.flatnonzero(flagged)
    candidates = candidates[~_model_agrees(labels[candidates], pred_probs[candidates])]
    scores = _quality(labels[candidates], pred_probs[candidates], rank_by)
    # numpy's default sort, as the reference's: even exactly tied scores come out in its order.
    return candidates[np.argsort(scores)]


def describe_label_issues(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    issues: Sequence[int] | np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
) -> list[LabelIssue]:
    """A `LabelIssue` for each index in `issues`, in the same order (worst first, as found)."""
    labels, pred_probs = _checked(labels, pred_probs)
    n, k = pred_probs.shape
    issues = np.asarray(issues, dtype=np.intp).reshape(-1)
    if issues.size and (issues.min() < 0 or issues.max() >= n):
        raise InvalidPredictions(f"issue indices must be in 0..{n - 1}")
    if class_names is not None and len(class_names) != k:
        raise InvalidPredictions(f"{len(class_names)} class names for {k} classes")
    names = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    likely = pred_probs[issues].argmax(axis=1)
    return [
        LabelIssue(
            index=int(i),
            given_label=names[labels[i]],
            likely_label=names[top],
            given_probability=float(pred_probs[i, labels[i]]),
            likely_probability=float(pred_probs[i, top]),
        )
        for i, top in zip(issues, likely, strict=True)
    ]


# Private helpers. Inputs are already checked; `rows_by_class[c]` holds, in ascending order,
# the indices of the examples labeled c.


def _checked(labels: np.ndarray, pred_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels as an int array and probabilities as floats, or InvalidPredictions saying why.

    Float probabilities are used as given (no copy, no renormalising), so results are the
    method's on exactly the numbers the model produced.
    """
    pred_probs = np.asarray(pred_probs)
    if pred_probs.ndim != 2 or pred_probs.shape[1] == 0:
        raise InvalidPredictions(
            f"pred_probs must be a 2-D array, one row per example and one column per class "
            f"(at least one); got shape {pred_probs.shape}"
        )
    if pred_probs.dtype.kind in "biu":
        pred_probs = pred_probs.astype(np.float64)
    elif pred_probs.dtype.kind != "f":
        raise InvalidPredictions(f"pred_probs must be numbers, not {pred_probs.dtype}")
    n, k = pred_probs.shape

    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise InvalidPredictions(
            f"labels must be 1-D with one label per row of pred_probs ({n}); "
            f"got shape {labels.shape}"
        )
    if labels.dtype.kind == "f" and np.isfinite(labels).all() and (labels % 1 == 0).all():
        labels = labels.astype(np.intp)
    if labels.dtype.kind not in "iu":
        raise InvalidPredictions(f"labels must be class indices 0..{k - 1} (integers)")
    labels = labels.astype(np.intp, copy=False)
    if n == 0:
        return labels, pred_probs

    if not np.isfinite(pred_probs).all():
        row = int(np.flatnonzero(~np.isfinite(pred_probs).all(axis=1))[0])
        raise InvalidPredictions(f"pred_probs row {row} holds NaN or infinity")
    if pred_probs.min() < -PROBABILITY_SLACK or pred_probs.max() > 1 + PROBABILITY_SLACK:
        raise InvalidPredictions(
            "pred_probs must be probabilities in [0, 1]; these look like logits or scores "
            "(apply a softmax first)"
        )
    row_sums = pred_probs.sum(axis=1, dtype=np.float64)
    off = np.flatnonzero(np.abs(row_sums - 1.0) > ROW_SUM_TOLERANCE + PROBABILITY_SLACK)
    if off.size:
        raise InvalidPredictions(
            f"each row of pred_probs must sum to 1 (within {ROW_SUM_TOLERANCE}); row {off[0]} "
            f"sums to {row_sums[off[0]]:.4g} ({off.size} row{'s' if off.size != 1 else ''} off)"
        )
    out_of_range = np.flatnonzero((labels < 0) | (labels >= k))
    if out_of_range.size:
        row = int(out_of_range[0])
        raise InvalidPredictions(
            f"label {labels[row]} at row {row} is not a class of pred_probs (0..{k - 1})"
        )
    return labels, pred_probs


def _check_choice(name: str, value: str, choices: object) -> None:
    """A clear ValueError for a misspelled option, listing the ones we have."""
    allowed = get_args(choices)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; not {value!r}")


def _rows_by_class(labels: np.ndarray, k: int) -> list[np.ndarray]:
    """The examples of each given label, found with one sort instead of k passes over labels."""
    order = np.argsort(labels, kind="stable")
    return np.split(order, np.cumsum(np.bincount(labels, minlength=k))[:-1])


def _thresholds(pred_probs: np.ndarray, rows_by_class: list[np.ndarray]) -> np.ndarray:
    """Mean self-confidence per class (inf for a class with no examples), floored."""
    thresholds = np.full(len(rows_by_class), np.inf, dtype=pred_probs.dtype)
    for c, rows in enumerate(rows_by_class):
        if rows.size:
            thresholds[c] = pred_probs[rows, c].mean()
    return np.maximum(thresholds, THRESHOLD_FLOOR)


def _confident_classes(
    pred_probs: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each example clears any class's threshold, and the class it is counted in.

    With one class cleared it is that class; with several, the top class of the row (over all
    classes, as the reference implementation counts it).
    """
    clears = pred_probs >= thresholds - THRESHOLD_SLACK
    cleared = clears.sum(axis=1)
    likely = np.where(cleared > 1, pred_probs.argmax(axis=1), clears.argmax(axis=1))
    return cleared > 0, likely


def _confident_joint(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    rows_by_class: list[np.ndarray],
    *,
    calibrate: bool,
) -> np.ndarray:
    """Count (given label, confident class) pairs; floor the diagonal at 1 so no row is empty."""
    k = pred_probs.shape[1]
    counted, likely = _confident_classes(pred_probs, _thresholds(pred_probs, rows_by_class))
    cells = labels[counted] * k + likely[counted]
    joint = np.bincount(cells, minlength=k * k).reshape(k, k)
    np.fill_diagonal(joint, np.maximum(joint.diagonal(), 1))
    if not calibrate:
        return joint
    return _calibrated(joint, np.array([rows.size for rows in rows_by_class]))


def _calibrated(joint: np.ndarray, label_counts: np.ndarray) -> np.ndarray:
    """Scale each row to its label's count, the whole to n, and round keeping row totals.

    The second scaling changes nothing but float error, and float error decides how an exact half
    (3/4 x 2 = 1.5) rounds. So the total is summed in the reference implementation's order, true
    class by true class, and the halves round the same way there and here.
    """
    by_true_class = joint.T / np.maximum(joint.sum(axis=1), 1e-100) * label_counts
    total = float(np.ascontiguousarray(by_true_class).sum())
    scaled = by_true_class.T / max(total, 1e-100) * int(label_counts.sum())
    return _round_keeping_row_totals(scaled)


def _round_keeping_row_totals(matrix: np.ndarray) -> np.ndarray:
    """Round to whole examples so each row still sums to its rounded total.

    Round every cell, then move the leftover units (never more than k) onto the cells the
    rounding shortchanged most, or off the ones it favoured most.
    """
    rounded = np.round(matrix)
    for row, (exact, whole) in enumerate(zip(matrix, rounded, strict=True)):
        leftover = int(np.round(np.round(exact.sum()) - np.round(whole.sum())))
        if leftover == 0:
            continue
        by_remainder = np.argsort(exact - whole)
        cells = by_remainder[::-1][:leftover] if leftover > 0 else by_remainder[:-leftover]
        rounded[row, cells] += np.sign(leftover)
    return rounded.astype(int)


def _prune_counts(joint: np.ndarray, *, keep_at_least: int, frac_noise: float) -> np.ndarray:
    """How many examples of given label i to flag as truly j: the off-diagonal of C, adjusted.

    When a class's diagonal is below `keep_at_least`, the shortfall is taken evenly from the
    row's non-zero noise cells; then every noise cell is scaled by `frac_noise` and truncated to
    whole examples.
    """
    diagonal = joint.diagonal()
    shortfall = np.maximum(diagonal, keep_at_least) - diagonal
    noise_cells = np.maximum(np.count_nonzero(joint, axis=1) - 1.0, 1.0)
    counts = np.maximum(joint - (shortfall / noise_cells)[:, None], 0) * frac_noise
    counts = counts.astype(int)
    np.fill_diagonal(counts, 0)
    return counts


def _prune_by_noise_rate(
    pred_probs: np.ndarray,
    rows_by_class: list[np.ndarray],
    prune_counts: np.ndarray,
    *,
    too_few: int,
) -> np.ndarray:
    """For each noise cell (i, j), flag its count of label-i examples with the largest p_j - p_i."""
    flagged = np.zeros(pred_probs.shape[0], dtype=bool)
    for given, rows in enumerate(rows_by_class):
        if rows.size <= too_few:
            continue
        for true in np.flatnonzero(prune_counts[given]):
            margin = pred_probs[rows, true] - pred_probs[rows, given]
            # The default sort of -margin, as the reference's: ties at the cut fall the same way.
            flagged[rows[np.argsort(-margin)[: prune_counts[given, true]]]] = True
    return flagged


def _model_agrees(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Whether the given label is the top class once it gets TIE_MARGIN more: no disagreement."""
    nudged = pred_probs.copy()
    nudged[np.arange(len(labels)), labels] += TIE_MARGIN
    return nudged.argmax(axis=1) == labels


def _quality(labels: np.ndarray, pred_probs: np.ndarray, rank_by: RankBy) -> np.ndarray:
    """Self-confidence, or the normalized margin (a single class has no rival: margin to 0)."""
    self_confidence = pred_probs[np.arange(len(labels)), labels]
    if rank_by == "self_confidence":
        return self_confidence
    if pred_probs.shape[1] == 1:
        best_other = np.zeros_like(self_confidence)
    else:
        others = pred_probs.copy()
        others[np.arange(len(labels)), labels] = -np.inf
        best_other = others.max(axis=1)
    return (self_confidence - best_other + 1) / 2
