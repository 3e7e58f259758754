"""What the reviewed errors say about all the errors: a category's share, estimated only from
the reviews that are a fair sample, with its interval and the part of the errors it covers.

Reviews reached through the random queue of all errors are a random sample of them: the share
is the tagged fraction of those reviews (a Wilson interval). Reviews reached through the random
queue of one confusion pair are a random sample of that pair only; since every pair's size is
known, the pairs' shares are weighted back to the whole by those sizes (post-stratification).
Then every random review, of the whole queue or of one pair, speaks for the pair its example is
in. Pairs with no random review are not covered: the estimate speaks for the covered errors
only, and says what share of all errors that is. Targeted reviews (another filter, the
confidence order, picked by hand) are counted and shown elsewhere but never enter the estimate.

Pure arithmetic over counts: no database here (labeltool.report gathers the counts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: z for a two-sided 95% interval.
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Stratum:
    """One confusion pair: its errors, the random reviews of them, and how many were tagged."""

    errors: int
    reviewed: int
    tagged: int

    def __post_init__(self) -> None:
        if not 0 <= self.tagged <= self.reviewed or self.errors < 0:
            raise ValueError(
                f"a stratum needs 0 <= tagged <= reviewed and errors >= 0, not {self!r}"
            )


@dataclass(frozen=True)
class ShareEstimate:
    """A category's estimated share of the errors, its 95% interval, and what it rests on.

    `share` and the interval are None when no random review speaks for any error.
    """

    share: float | None
    low: float | None
    high: float | None
    #: The random reviews the estimate rests on.
    reviewed: int
    #: The share of all errors those reviews speak for (1.0 with a random queue of all errors).
    coverage: float
    #: Whether pairs were weighted by their sizes (some reviews came from one pair's queue).
    stratified: bool


def wilson_interval(successes: int, n: int, *, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of the proportion successes / n; (nan, nan) when n is 0.

    Raises ValueError for counts that are no sample (negative, or more successes than n).
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(
            f"a Wilson interval needs 0 <= successes <= n, got {successes} successes of {n}"
        )
    if n == 0:
        return math.nan, math.nan
    return _wilson_at(successes / n, n, z=z)


def direct(tagged: int, reviewed: int) -> ShareEstimate:
    """The share from a random sample of all the errors: `tagged` of `reviewed`."""
    if reviewed == 0:
        return ShareEstimate(None, None, None, 0, 0.0, stratified=False)
    low, high = wilson_interval(tagged, reviewed)
    return ShareEstimate(tagged / reviewed, low, high, reviewed, 1.0, stratified=False)


def post_stratified(strata: Sequence[Stratum]) -> ShareEstimate:
    """The share from random samples within confusion pairs, weighted by the pairs' sizes.

    p = sum over covered pairs of (errors_h / covered errors) * (tagged_h / reviewed_h). The
    interval is Wilson's at the effective sample size p(1 - p) / Var(p), where
    Var(p) = sum of weight_h^2 * p_h (1 - p_h) / reviewed_h (all reviews when Var is 0).
    """
    total = sum(s.errors for s in strata)
    covered = [s for s in strata if s.reviewed > 0 and s.errors > 0]
    covered_errors = sum(s.errors for s in covered)
    reviewed = sum(s.reviewed for s in covered)
    if not covered_errors:
        return ShareEstimate(None, None, None, 0, 0.0, stratified=True)
    weights = [s.errors / covered_errors for s in covered]
    shares = [s.tagged / s.reviewed for s in covered]
    share = sum(w * p for w, p in zip(weights, shares, strict=True))
    variance = sum(
        w * w * p * (1 - p) / s.reviewed for w, p, s in zip(weights, shares, covered, strict=True)
    )
    effective = share * (1 - share) / variance if variance > 0 else float(reviewed)
    low, high = _wilson_at(share, effective)
    return ShareEstimate(share, low, high, reviewed, covered_errors / total, stratified=True)


# --- private helpers -------------------------------------------------------------------


def _wilson_at(p: float, n: float, *, z: float = Z_95) -> tuple[float, float]:
    """Wilson's interval for an observed proportion `p` from a (possibly fractional) `n`."""
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if p == 0 else max(0.0, centre - spread)
    high = 1.0 if p == 1 else min(1.0, centre + spread)
    return low, high
