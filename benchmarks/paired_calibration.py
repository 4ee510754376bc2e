"""How often does each paired test of per-row squared-error differences say "these two differ"
when the truth is that they do not? The regression judge's test is chosen on this table.

The differences d = (error of A)² - (error of B)² are heavy-tailed: with t(3) errors their
variance is infinite. Three tests of "the mean of d is 0", at ALPHA, on n rows:
- the t-test on d (the Diebold-Mariano test with no autocorrelation: rows are independent),
- the sign-flip permutation test (scipy.stats.permutation_test, paired), exact when A and B
  are exchangeable row by row, which tests symmetry of d rather than its mean,
  (both the judge's own functions, here with RESAMPLES sign patterns),
- the paired bootstrap test (resample rows, the mean of d centred on the observed one).

Where the truth is known:
- simulated nulls: two exchangeable predictors (a shared error plus each its own; normal,
  t(5), t(3)), and pairs with the same mean squared error but differently shaped errors,
  whose d is skewed: normal against t(3) scaled to variance 1 (d's variance is infinite),
  normal against t(5) scaled to variance 1, and a biased predictor (mean 0.8, sd 0.6)
  against an unbiased one (sd 1), as a strongly regularized model against a weak one;
- scikit-learn's make_friedman1 with noise 1 (the floor is an MSE of 1), fitted on 500 rows:
  Ridge's predictions plus independent noise for each of two predictors (exchangeable, the
  difference is 0), and two MLPRegressor fits differing only in seed, whose difference is
  measured on 100,000 rows of the generator and subtracted from d (so the tested mean is 0 as
  far as that pool can tell).

Each repetition draws its own rows from its own seed ([seed, setting, repetition]), so the
first k repetitions of a long run are a short run's: tests/test_paired_calibration.py reruns
the first CHECK_REPS and compares them with the committed JSON. A rate is "within" when it
lies in the central 95% of Binomial(reps, ALPHA) / reps.

    python -m benchmarks.paired_calibration   # writes benchmarks/paired_calibration_results.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

from pipeline.choosing.statistics import paired_t, sign_flip

ALPHA = 0.05
SIZES = (50, 100, 150, 300)
RESAMPLES = 999
REPS = 2000
CHECK_REPS = 40
SEED = 27
TESTS = ("t_test", "sign_flip", "bootstrap")
SIMULATED = ("normal", "t5", "t3", "same_mse_skewed", "same_mse_t5", "bias_vs_variance")
FRIEDMAN = ("friedman_ridge_noise", "friedman_mlp_seeds")
POOL_ROWS = 100_000
RESULTS = Path(__file__).with_name("paired_calibration_results.json")


def simulated_errors(kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Errors of predictors A and B on n rows under a null of equal mean squared error."""
    if kind == "same_mse_skewed":
        return rng.standard_normal(n), rng.standard_t(3, n) / math.sqrt(3.0)
    if kind == "same_mse_t5":  # t(5) scaled to variance 1: d's variance is finite
        return rng.standard_normal(n), rng.standard_t(5, n) * math.sqrt(3.0 / 5.0)
    if kind == "bias_vs_variance":  # a biased predictor against an unbiased noisier one
        return rng.normal(0.8, 0.6, n), rng.standard_normal(n)
    draw = {
        "normal": lambda: rng.standard_normal(n),
        "t5": lambda: rng.standard_t(5, n),
        "t3": lambda: rng.standard_t(3, n),
    }[kind]
    shared = draw()
    return shared + draw(), shared + draw()


class FriedmanPairs:
    """Errors of two predictors on a pool of POOL_ROWS make_friedman1 rows (noise 1), and the
    pool's mean of d, the truth a sample's d is centred on."""

    def __init__(self, seed: int = SEED):
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.datasets import make_friedman1
        from sklearn.linear_model import Ridge
        from sklearn.neural_network import MLPRegressor
        from sklearn.preprocessing import StandardScaler

        x_train, y_train = make_friedman1(500, noise=1.0, random_state=seed)
        x_pool, y_pool = make_friedman1(POOL_ROWS, noise=1.0, random_state=seed + 1)
        ridge = Ridge(alpha=1.0).fit(x_train, y_train).predict(x_pool) - y_pool
        rng = np.random.default_rng(seed)
        self.errors = {
            "friedman_ridge_noise": (
                ridge + rng.normal(0, 0.5, POOL_ROWS),
                ridge + rng.normal(0, 0.5, POOL_ROWS),
            )
        }
        # The target standardised, as the lab trains: unscaled, the MLP stops near Ridge.
        fits = [
            TransformedTargetRegressor(
                MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=1000,
                             random_state=s),
                transformer=StandardScaler(),
            ).fit(x_train, y_train)
            for s in (1, 2)
        ]  # fmt: skip
        self.errors["friedman_mlp_seeds"] = tuple(f.predict(x_pool) - y_pool for f in fits)
        self.truth = {
            "friedman_ridge_noise": 0.0,  # exchangeable: the expected difference is 0
            "friedman_mlp_seeds": float(
                np.mean(squared_difference(*self.errors["friedman_mlp_seeds"]))
            ),
        }
        self.pool_mse = {k: [float(np.mean(e**2)) for e in v] for k, v in self.errors.items()}

    def sample(self, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
        rows = rng.integers(0, POOL_ROWS, n)
        a, b = self.errors[kind]
        return squared_difference(a[rows], b[rows]) - self.truth[kind]


def squared_difference(a_errors: np.ndarray, b_errors: np.ndarray) -> np.ndarray:
    return np.asarray(a_errors) ** 2 - np.asarray(b_errors) ** 2


def p_values(d: np.ndarray, rng: np.random.Generator, resamples: int) -> dict[str, float]:
    """The three tests' two-sided p-values of "the mean of d is 0": the t-test and the
    sign-flip test are the judge's own functions (pipeline/choosing/statistics.py)."""
    zeros = np.zeros_like(d)
    t_p = paired_t(d, zeros)[2]
    flip_p = sign_flip(d, zeros, seed=int(rng.integers(2**32)), resamples=resamples)[2]
    means = d[rng.integers(0, len(d), (resamples, len(d)))].mean(axis=1)
    beyond = np.sum(np.abs(means - d.mean()) >= abs(d.mean()))
    bootstrap = float((1 + beyond) / (1 + resamples))
    return {"t_test": t_p, "sign_flip": flip_p, "bootstrap": bootstrap}


def band(reps: int) -> tuple[float, float]:
    """The central 95% of the rejection rate of a test that rejects with chance ALPHA."""
    low, high = stats.binom.ppf([0.025, 0.975], reps, ALPHA)
    return float(low / reps), float(high / reps)


def run(reps: int = REPS, resamples: int = RESAMPLES, seed: int = SEED, kinds=None) -> dict:
    """Rejections at ALPHA of each test, per setting (kind, n); repetition i of setting s is
    seeded by [seed, s, i] whatever `reps` is."""
    kinds = kinds or (*SIMULATED, *FRIEDMAN)
    friedman = FriedmanPairs(seed) if any(k in FRIEDMAN for k in kinds) else None
    settings = []
    for kind in kinds:
        for n in SIZES:
            index = (*SIMULATED, *FRIEDMAN).index(kind) * 100 + n
            rejected = dict.fromkeys(TESTS, 0)
            for rep in range(reps):
                rng = np.random.default_rng([seed, index, rep])
                if kind in SIMULATED:
                    d = squared_difference(*simulated_errors(kind, n, rng))
                else:
                    d = friedman.sample(kind, n, rng)
                for test, p in p_values(d, rng, resamples).items():
                    rejected[test] += p < ALPHA
            settings.append({"kind": kind, "n": n, "rejections": rejected})
    low, high = band(reps)
    return {
        "alpha": ALPHA, "reps": reps, "resamples": resamples, "seed": seed,
        "band": [low, high], "settings": settings,
        "friedman_pool": None if friedman is None else {
            "rows": POOL_ROWS, "mse": friedman.pool_mse, "truth": friedman.truth},
    }  # fmt: skip


def outside(results: dict, test: str, sizes=(50, 100, 150)) -> list[str]:
    """The settings at the lab's validation sizes where `test`'s rate leaves the band."""
    low, high = results["band"]
    found = []
    for s in results["settings"]:
        rate = s["rejections"][test] / results["reps"]
        if s["n"] in sizes and not low <= rate <= high:
            found.append(f"{s['kind']} n={s['n']}: {rate:.3f}")
    return found


def verdict(results: dict) -> dict:
    """The judge's test: the one with the fewest settings outside the band at the lab's
    validation sizes, the t-test (the simplest) on a tie."""
    off = {test: outside(results, test) for test in TESTS}
    chosen = "t_test" if not off["t_test"] else min(TESTS, key=lambda t: len(off[t]))
    return {"chosen": chosen, "outside_band": off}


def table(results: dict) -> str:
    low, high = results["band"]
    lines = [
        f"rejection rate at alpha {results['alpha']} over {results['reps']} repetitions "
        f"(95% band for a calibrated test: [{low:.3f}, {high:.3f}])",
        "| setting | n | t-test | sign-flip | bootstrap |",
        "|---|---|---|---|---|",
    ]
    for s in results["settings"]:
        rates = [s["rejections"][t] / results["reps"] for t in TESTS]
        shown = " | ".join(f"{r:.3f}" for r in rates)
        lines.append(f"| {s['kind']} | {s['n']} | {shown} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=REPS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = run(args.reps)
    results["check"] = run(CHECK_REPS)["settings"]
    results["verdict"] = verdict(results)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))
    print(f"judge's test: {results['verdict']['chosen']}")


if __name__ == "__main__":
    main()
