"""The estimate of a category's share from the reviews that are a fair sample, worked by hand:
a random sample of all errors directly, random samples within confusion pairs weighted by the
pairs' sizes (post-stratification), and what part of the errors it speaks for."""

from __future__ import annotations

import pytest

from labeltool.estimate import Stratum, direct, post_stratified, wilson_interval


def test_a_random_sample_of_all_errors_is_read_directly() -> None:
    """43 of 100 random reviews: share 0.43, Wilson [0.3373, 0.5278], covering all errors."""
    estimate = direct(43, 100)

    assert estimate.share == pytest.approx(0.43)
    assert (round(estimate.low, 4), round(estimate.high, 4)) == (0.3373, 0.5278)
    assert (estimate.reviewed, estimate.coverage, estimate.stratified) == (100, 1.0, False)


def test_pairs_are_weighted_back_by_their_sizes() -> None:
    """Pair A (80 errors): 5 of 10 random reviews tagged; pair B (20 errors): 1 of 10. The
    share is 0.8 * 0.5 + 0.2 * 0.1 = 0.42, not the 6 / 20 = 0.30 of the pooled reviews; the
    interval is Wilson's at the effective size 0.42 * 0.58 / (0.8^2 * 0.025 + 0.2^2 * 0.009)
    = 14.89 reviews: [0.2123, 0.6605]. Pair C (25 errors) has no random review, so the estimate
    speaks for 100 of the 125 errors."""
    estimate = post_stratified([Stratum(80, 10, 5), Stratum(20, 10, 1), Stratum(25, 0, 0)])

    assert estimate.share == pytest.approx(0.42)
    assert (round(estimate.low, 4), round(estimate.high, 4)) == (0.2123, 0.6605)
    assert (estimate.reviewed, estimate.coverage, estimate.stratified) == (20, 0.8, True)


def test_with_no_spread_the_interval_uses_every_review() -> None:
    """When every pair's reviews agree (0 of 4 and 0 of 6) the variance is 0: the interval is
    Wilson's for 0 of all 10 reviews, [0, 0.2775]."""
    estimate = post_stratified([Stratum(30, 4, 0), Stratum(70, 6, 0)])

    assert estimate.share == 0.0
    assert (estimate.low, round(estimate.high, 4)) == (0.0, 0.2775)


def test_nothing_reviewed_gives_no_share_and_no_interval() -> None:
    """With no random review there is no share, no fake [0, 1] interval, and no coverage."""
    for estimate in (direct(0, 0), post_stratified([Stratum(10, 0, 0)])):
        assert (estimate.share, estimate.low, estimate.high) == (None, None, None)
        assert (estimate.reviewed, estimate.coverage) == (0, 0.0)


@pytest.mark.parametrize(("successes", "n"), [(5, 3), (-1, 4), (1, 0), (0, -2)])
def test_impossible_counts_are_refused_clearly(successes: int, n: int) -> None:
    """More successes than trials or negative counts raise a clear ValueError."""
    with pytest.raises(ValueError, match="a Wilson interval needs"):
        wilson_interval(successes, n)


@pytest.mark.parametrize(("errors", "reviewed", "tagged"), [(10, 3, 5), (10, 3, -1), (-1, 0, 0)])
def test_impossible_strata_are_refused_clearly(errors: int, reviewed: int, tagged: int) -> None:
    """A pair with more tagged than reviewed, or negative counts, raises a clear ValueError."""
    with pytest.raises(ValueError, match="a stratum needs"):
        Stratum(errors=errors, reviewed=reviewed, tagged=tagged)
