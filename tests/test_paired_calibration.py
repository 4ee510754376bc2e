"""The calibration study of the regression judge's paired test (benchmarks/paired_calibration.py):
its committed JSON is what the script computes (the first CHECK_REPS repetitions of every
setting, rerun here; each repetition has its own seed, so they are the long run's first ones),
its verdict follows from its own rates, and the judge uses the test it chose."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from benchmarks import paired_calibration as calibration
from pipeline.choosing.judge import DIEBOLD_MARIANO, REGRESSION_TEST, SIGN_FLIP, Judge

COMMITTED = json.loads(calibration.RESULTS.read_text())


def test_the_committed_rates_are_what_the_script_computes():
    rerun = calibration.run(calibration.CHECK_REPS)
    assert rerun["settings"] == COMMITTED["check"]
    assert COMMITTED["friedman_pool"] == rerun["friedman_pool"]
    full = {(s["kind"], s["n"]): s["rejections"] for s in COMMITTED["settings"]}
    rest = COMMITTED["reps"] - calibration.CHECK_REPS
    for short in COMMITTED["check"]:  # the short run's repetitions are the long run's first
        for test, count in short["rejections"].items():
            assert 0 <= full[short["kind"], short["n"]][test] - count <= rest


def test_the_verdict_and_band_follow_from_the_committed_rates():
    assert COMMITTED["band"] == list(calibration.band(COMMITTED["reps"]))
    assert COMMITTED["verdict"] == calibration.verdict(COMMITTED)
    assert COMMITTED["reps"] == calibration.REPS and COMMITTED["alpha"] == calibration.ALPHA
    named = {"t_test": DIEBOLD_MARIANO, "sign_flip": SIGN_FLIP}
    # The judge's regression test is the one the table chose.
    assert named[COMMITTED["verdict"]["chosen"]] == REGRESSION_TEST
    assert Judge.of_values(np.zeros(2), {}).test == REGRESSION_TEST


def test_the_three_tests_agree_with_scipy_on_a_clear_case():
    rng = np.random.default_rng(0)
    d = rng.normal(1.0, 1.0, 60)  # a mean of 1 on 60 rows: every test rejects
    found = calibration.p_values(d, rng, 999)
    assert found["t_test"] == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue, rel=1e-12)
    # No sign pattern of 999 gives a mean as far from 0: (0 + 1) / (999 + 1), two-sided.
    assert found["sign_flip"] == pytest.approx(2 / 1000)
    assert found["bootstrap"] == pytest.approx(1 / 1000)
