"""The statistics of choosing L2 on tables with known answers: standard errors, intervals,
exact McNemar against the binomial sum by hand, Holm's correction, the one-SE rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.choosing import statistics as st


def test_binomial_se_and_fold_se_follow_their_formulas():
    # The figure: an error near 0.15 on 270 validation rows has an SE of about 0.02.
    assert st.binomial_se(0.15, 270) == pytest.approx(math.sqrt(0.15 * 0.85 / 270), abs=0)
    assert st.binomial_se(0.15, 270) == pytest.approx(0.0217, abs=5e-5)
    mean, se = st.mean_and_se([0.1, 0.2, 0.3])
    assert mean == pytest.approx(0.2, abs=1e-15)
    assert se == pytest.approx(0.1 / math.sqrt(3), abs=1e-15)
    assert st.mean_and_se([0.25]) == (0.25, 0.0)


Z = 1.959963984540054  # the normal 97.5% quantile


def test_the_rules_se_does_not_vanish_at_0_or_n_errors_and_is_binomial_between():
    # 0 of 50: the Wilson interval is [0, z² / (n + z²)] (0.0713); half its width over z is
    # z / (2 (n + z²)) = 0.0182, where sqrt(p (1 - p) / n) says 0. n of n: the mirror image.
    at_zero = Z / (2 * (50 + Z * Z))
    assert st.binomial_se(0.0, 50) == 0.0
    assert st.wilson_se(0.0, 50) == pytest.approx(at_zero, abs=1e-15)
    assert st.wilson_se(1.0, 50) == pytest.approx(at_zero, abs=1e-15)
    assert round(at_zero, 4) == 0.0182
    low, high = st.error_interval(0, 50)
    assert (high - low) / (2 * Z) == pytest.approx(at_zero, abs=1e-12)
    # 32 of 270 (the default sweep's chosen entry): sqrt(32 * 238 / 270 + z²/4) / (270 + z²)
    # = 0.019722, the plain binomial SE 0.019671: 0.3% apart, far from 0 and n.
    mid = math.sqrt(32 * 238 / 270 + Z * Z / 4) / (270 + Z * Z)
    assert st.wilson_se(32 / 270, 270) == pytest.approx(mid, abs=1e-15)
    assert round(mid, 6) == 0.019722 and round(st.binomial_se(32 / 270, 270), 6) == 0.019671
    low, high = st.error_interval(32, 270)
    assert (high - low) / (2 * Z) == pytest.approx(mid, abs=1e-12)


def test_with_folds_the_se_is_the_larger_of_the_fold_se_and_the_wilson_se():
    floor = st.wilson_se(0.0, 570)  # every fold with 0 errors: SE over folds 0
    assert floor == pytest.approx(Z / (2 * (570 + Z * Z)), abs=1e-15)
    assert st.choosing_se(0.0, 570, fold_se=0.0) == floor
    assert st.choosing_se(0.102, 570, fold_se=0.015) == 0.015  # the folds vary more
    assert st.choosing_se(0.102, 570) == st.wilson_se(0.102, 570)  # no folds


def test_wilson_interval_matches_its_closed_form():
    wrong, n, z = 10, 100, 1.959963984540054
    p = wrong / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = st.error_interval(wrong, n, "wilson")
    # Closed form against scipy's: the same arithmetic up to floating-point rounding.
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-12)


def test_exact_interval_with_no_errors_is_the_closed_form_upper_bound():
    # Clopper-Pearson at 0 of n: the upper bound solves (1 - u)^n = 0.025.
    low, high = st.error_interval(0, 10, "exact")
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-12)


def _outcomes(both, only_a, only_b, neither):
    a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    return np.array(a), np.array(b)


def test_mcnemar_is_the_exact_binomial_over_the_discordant_rows():
    # 1 row only A gets wrong, 7 only B: P(X <= 1 | 8, 1/2) doubled = 2 * (1 + 8) / 256.
    a, b = _outcomes(both=20, only_a=1, only_b=7, neither=200)
    assert st.mcnemar_exact(a, b) == (1, 7, pytest.approx(18 / 256, abs=1e-15))
    # Symmetric in the two models; concordant rows do not matter.
    a2, b2 = _outcomes(both=0, only_a=7, only_b=1, neither=3)
    assert st.mcnemar_exact(a2, b2)[2] == pytest.approx(18 / 256, abs=1e-15)
    # No discordant row: nothing tells them apart.
    same, _ = _outcomes(both=5, only_a=0, only_b=0, neither=5)
    assert st.mcnemar_exact(same, same) == (0, 0, 1.0)
    # Equal discordant counts: p = 1 (the two-sided sum covers every outcome).
    a3, b3 = _outcomes(both=0, only_a=3, only_b=3, neither=0)
    assert st.mcnemar_exact(a3, b3)[2] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="differ in length"):
        st.mcnemar_exact(a, b[:-1])


def test_holm_adjusts_a_known_example_in_input_order():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> 0.06 (monotone).
    assert st.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert st.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert st.holm([0.2]) == [0.2]


def test_paired_bootstrap_brackets_the_observed_difference():
    # B is wrong on A's 10 rows and 20 more: error(B) - error(A) = 0.2 exactly on the sample.
    a, b = _outcomes(both=10, only_a=0, only_b=20, neither=70)
    rows = st.bootstrap_rows(len(a), seed=42)
    low, high = st.paired_bootstrap(a, b, rows)
    # The difference is a share of 20 of 100 rows: its normal-approximation interval is
    # 0.2 +- 1.96 * 0.04; 10,000 resamples put the percentile ends within 0.01 of it.
    assert low == pytest.approx(0.2 - 1.96 * 0.04, abs=0.01)
    assert high == pytest.approx(0.2 + 1.96 * 0.04, abs=0.01)
    assert st.paired_bootstrap(a, b, st.bootstrap_rows(len(a), seed=42)) == (low, high)
    assert st.paired_bootstrap(a, a, rows) == (0.0, 0.0)


def _c(name, error, se, rates):
    return st.Candidate(name, error, se, None if rates is None else tuple(rates))


def test_min_takes_the_first_ranked_entry():
    ranked = [_c("l2_1e_2", 0.10, 0.02, [0.01] * 3), _c("l2_1e_1", 0.11, 0.02, [0.1] * 3)]
    choice = st.choose(ranked, "min")
    assert (choice.chosen.name, choice.rule, choice.fallback) == ("l2_1e_2", "min", "")


def test_one_se_takes_the_largest_rate_within_one_se_of_the_lowest():
    ranked = [
        _c("l2_1e_3", 0.100, 0.020, [1e-3] * 3),
        _c("l2_1e_2", 0.115, 0.021, [1e-2] * 3),  # within 0.100 + 0.020
        _c("l2_0", 0.118, 0.021, [0.0] * 3),  # within, but less regularized
        _c("l2_1e_1", 0.125, 0.022, [1e-1] * 3),  # outside: 0.125 > 0.120
    ]
    choice = st.choose(ranked, "one_se")
    assert choice.chosen.name == "l2_1e_2"
    assert choice.best.name == "l2_1e_3"
    assert choice.rule == "one_se"
    assert choice.threshold == pytest.approx(0.12)


def test_one_se_orders_per_layer_entries_layer_by_layer():
    ranked = [
        _c("hidden_1", 0.100, 0.020, [1e-2, 0.0, 0.0]),
        _c("hidden_both", 0.110, 0.020, [1e-2, 1e-2, 0.0]),  # >= hidden_1 on every layer
        _c("l2_0", 0.115, 0.020, [0.0, 0.0, 0.0]),
    ]
    assert st.choose(ranked, "one_se").chosen.name == "hidden_both"


def test_one_se_falls_back_to_min_when_the_entries_are_not_ordered_by_rate():
    crossed = [
        _c("hidden_1", 0.100, 0.020, [1e-2, 0.0, 0.0]),
        _c("hidden_2", 0.110, 0.020, [0.0, 1e-2, 0.0]),
    ]
    choice = st.choose(crossed, "one_se")
    assert (choice.chosen.name, choice.rule) == ("hidden_1", "min")
    # Equal sums: the first ranked is the candidate for "most regularized", and it is not.
    assert (choice.fallback, choice.top) == ("not_ordered", "hidden_1")
    assert choice.unordered == ("hidden_2",)
    decay = [_c("l2_1e_2", 0.100, 0.020, [1e-2] * 3), _c("decay_2e_2", 0.105, 0.02, None)]
    choice = st.choose(decay, "one_se")
    assert (choice.chosen.name, choice.rule) == ("l2_1e_2", "min")
    assert (choice.fallback, choice.unordered) == ("no_rates", ("decay_2e_2",))
    # Outside one SE an unordered entry does not matter.
    far = [_c("l2_1e_2", 0.100, 0.020, [1e-2] * 3), _c("decay_2e_2", 0.2, 0.02, None)]
    assert st.choose(far, "one_se").rule == "one_se"


def test_the_sign_flip_test_enumerates_every_sign_pattern_of_a_few_rows():
    # Differences 1, 2, 3: of the 8 sign patterns only (+, +, +) reaches a mean of 2, so the
    # one-sided p is 1/8 and the two-sided 2/8.
    assert st.sign_flip(np.array([1.0, 2.0, 3.0]), np.zeros(3)) == (3, 0, 0.25)
    # Differences 1, 1: means 1, 0, 0, -1; one-sided 1/4, two-sided 1/2. B worse on both.
    assert st.sign_flip(np.zeros(2), np.ones(2)) == (0, 2, 0.5)
    assert st.sign_flip(np.ones(4), np.ones(4)) == (0, 0, 1.0)  # no difference: p = 1
    with pytest.raises(ValueError, match="differ in length"):
        st.sign_flip(np.ones(3), np.ones(4))


def test_the_paired_t_test_is_the_t_test_of_the_differences():
    a, b = np.array([4.0, 1.0, 9.0, 0.25]), np.array([1.0, 1.0, 4.0, 1.0])
    d = a - b  # 3, 0, 5, -0.75: mean 1.8125
    t = d.mean() / (d.std(ddof=1) / 2)
    only_a, only_b, p = st.paired_t(a, b)
    assert (only_a, only_b) == (2, 1)
    # Two-sided p from the t distribution with n - 1 = 3 degrees of freedom.
    assert p == pytest.approx(2 * (1 - st.stats.t.cdf(t, 3)), rel=1e-9)
    assert st.paired_t(a, a) == (0, 0, 1.0)
