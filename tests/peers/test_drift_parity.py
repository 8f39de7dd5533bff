"""Our drift detectors agree with alibi-detect's (0.13, pytorch backend) on the same data.

KS, Cramér-von Mises and chi-squared are deterministic: alibi-detect runs scipy per feature
(``ks_2samp`` with the asymptotic null, ``cramervonmises_2samp``, ``chi2_contingency``) and
stores the answers in float32, so per-feature statistics and p-values must agree to float32
precision, and so must the batch decision and threshold after the same correction. It reports
no batch p-value; ours must equal the correction applied to its per-feature p-values.

MMD is a permutation test on both sides, with the same bandwidth (ours, median heuristic,
given to alibi-detect: both kernels are ``exp(-||x - y||^2 / (2 sigma^2))``) and number of
permutations: the statistic is the same unbiased MMD², equal to float32 rounding, and the
p-values, from independent permutations, must agree within Monte Carlo error. Online MMD
calibrates thresholds on bootstrap streams on both sides: same order at every step, and the
same statistics, up to the random choice of sub-reference, on the same events.

Every ``*_can_fail`` test shows that the same check catches a real difference.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from scipy import stats

from detectors.drift import ChiSquareDrift, CVMDrift, KSDrift, MMDDrift, MMDDriftOnline

alibi_cd = pytest.importorskip("alibi_detect.cd")
logging.getLogger("alibi_detect").setLevel(logging.ERROR)  # "sigma takes priority", etc.

SEED = 6  # every drift case has p <= 0.002 and every clean one p > 0.1, on both sides
P_VAL = 0.05
RTOL = 1e-6  # alibi-detect's float32 answers carry ~6e-8 relative error
ATOL = float(np.finfo(np.float32).tiny)  # below it, float32 p-values are subnormal or 0
PERMUTATIONS = 500
Z_MAX = 4.5  # two-sided, per comparison: a false alarm about once in 150,000
WINDOW, ERT, BOOTSTRAPS = 10, 50, 1000
THRESHOLD_RATIO = (2 / 3, 3 / 2)  # bootstrap noise at 1,000 streams is about ±20% per step
MMD_ATOL = 1e-6  # our kernels are float32 (sums in float64), alibi-detect's float64 here
STATISTIC_SLACK = 0.25  # of the threshold: the two sub-references differ
CONTINUOUS = ("no drift", "mean shift", "variance shift", "ties, no drift")
CATEGORICAL = ("no drift", "mix change", "binary mix change", "new category")


def continuous(seed: int, n_ref: int, n: int, d: int) -> dict[str, tuple]:
    """``{case: (x_ref, x, drift)}``: Gaussian data without drift, with a mean shift of 0.6
    in one feature, with one feature's scale doubled, and without drift on a grid of 0.1
    (reference and batch: ties within and between them)."""
    rng = np.random.default_rng(seed)
    x_ref, unit = rng.normal(size=(n_ref, d)), np.eye(d)
    cases = [
        (x_ref, rng.normal(size=(n, d)), False),
        (x_ref, rng.normal(size=(n, d)) + 0.6 * unit[1], True),
        (x_ref, rng.normal(size=(n, d)) * (1 + unit[d - 1]), True),
        (x_ref.round(1), rng.normal(size=(n, d)).round(1), False),
    ]
    return dict(zip(CONTINUOUS, cases, strict=True))


def categorical(seed: int) -> dict[str, tuple]:
    """``{case: (x_ref, x, drift)}`` on four categorical features (4 codes, 2 codes, which
    take Yates' correction, 6 codes, 3 codes): no drift, the first feature's mix made uniform,
    the binary feature's mix moved, and a category the reference never saw."""
    rng = np.random.default_rng(seed)
    mixes = [[0.4, 0.3, 0.2, 0.1], [0.7, 0.3], [1 / 6] * 6, [0.5, 0.25, 0.25]]

    def draw(n: int, mixes: list) -> np.ndarray:
        return np.stack([rng.choice(len(p), size=n, p=p) for p in mixes], axis=1).astype(float)

    x_ref = draw(1000, mixes)
    new = draw(300, mixes)
    new[:12, 2] = 9
    cases = [
        (x_ref, draw(300, mixes), False),
        (x_ref, draw(300, [[0.25] * 4, *mixes[1:]]), True),
        (x_ref, draw(300, [mixes[0], [0.55, 0.45], *mixes[2:]]), True),
        (x_ref, new, True),
    ]
    return dict(zip(CATEGORICAL, cases, strict=True))


def check_close(ours, theirs, what: str, rtol: float = RTOL, atol: float = ATOL) -> None:
    """Fail unless every value agrees: ``|ours - theirs| <= atol + rtol |theirs|``."""
    ours, theirs = np.atleast_1d(ours).astype(float), np.atleast_1d(theirs).astype(float)
    bad = ~np.isclose(ours, theirs, rtol=rtol, atol=atol)
    if bad.any():
        raise AssertionError(
            f"{what}: ours {ours[bad].tolist()} and alibi-detect's {theirs[bad].tolist()} differ "
            f"beyond rtol {rtol:g}, atol {atol:g}"
        )


def check_p_values_agree(ours: float, theirs: float, n: int, what: str) -> None:
    """Two permutation p-values of the same test: ours ``(k + 1) / (n + 1)``, alibi-detect's
    ``k' / n``. Fail where a pooled two-proportion z statistic on ``k`` and ``k'`` exceeds
    ``Z_MAX`` (with a +2/+4 correction so that 0 of n is not a certainty)."""
    k_ours, k_theirs = round(ours * (n + 1)) - 1, round(theirs * n)
    pooled = (k_ours + k_theirs + 2) / (2 * n + 4)
    z = (k_ours - k_theirs) / math.sqrt(2 * n * pooled * (1 - pooled))
    if abs(z) > Z_MAX:
        raise AssertionError(
            f"{what}: p-values {ours:.4f} (ours) and {theirs:.4f} (alibi-detect) differ beyond "
            f"Monte Carlo error over {n} permutations (|z| = {abs(z):.1f})"
        )


def check_same_order(ours, theirs, what: str, bounds=THRESHOLD_RATIO) -> None:
    """Fail unless every ratio ``ours / theirs`` lies in ``bounds``."""
    ratio = np.asarray(ours, dtype=float) / np.asarray(theirs, dtype=float)
    if not ((ratio >= bounds[0]) & (ratio <= bounds[1])).all():
        raise AssertionError(
            f"{what}: ratios ours / alibi-detect {ratio.round(2).tolist()} leave "
            f"[{bounds[0]:.2f}, {bounds[1]:.2f}]"
        )


def corrected(p: np.ndarray, correction: str) -> float:
    """The batch p-value from per-feature ones: Bonferroni, or Benjamini-Hochberg by scipy."""
    if correction == "bonferroni":
        return min(1.0, p.size * float(p.min()))
    return float(stats.false_discovery_control(p).min())


# name: (ours, alibi-detect's, data, our parameters). Alibi-detect's KS always takes the
# asymptotic null (our default is scipy's "auto": exact up to 10,000 rows); it counts each
# unseen category in a column of its own, ours all of them in one: the same table for one.
FEATUREWISE = {
    "KS": (KSDrift, "KSDrift", lambda: continuous(SEED, 500, 200, 6), {"method": "asymp"}),
    "CvM": (CVMDrift, "CVMDrift", lambda: continuous(SEED, 500, 200, 6), {}),
    "chi2": (ChiSquareDrift, "ChiSquareDrift", lambda: categorical(SEED), {"unseen": "category"}),
}
CASES = [
    (name, case, correction)
    for name, cases in (("KS", CONTINUOUS), ("CvM", CONTINUOUS), ("chi2", CATEGORICAL))
    for case in cases
    for correction in ("bonferroni", "fdr")
]


def featurewise_pair(name: str, case: str, correction: str, **ours_params):
    """Our result and alibi-detect's ``data`` dict on one case, and whether it drifted."""
    ours_cls, theirs_name, data, params = FEATUREWISE[name]
    x_ref, x, drift = data()[case]
    ours = ours_cls(p_val=P_VAL, correction=correction, **{**params, **ours_params})
    theirs = getattr(alibi_cd, theirs_name)(x_ref, p_val=P_VAL, correction=correction)
    return ours.fit(x_ref).test(x), theirs.predict(x)["data"], drift


@pytest.mark.parametrize(("name", "case", "correction"), CASES)
def test_featurewise_tests_match_alibi_detect(figures, name, case, correction):
    ours, theirs, drift = featurewise_pair(name, case, correction)
    assert bool(theirs["is_drift"]) is drift  # an informative case: alibi-detect sees it too
    what = f"{name} {case}, {correction}"
    check_close(ours.feature_statistics, theirs["distance"], f"{what}: statistics")
    check_close(ours.feature_p_values, theirs["p_val"], f"{what}: feature p-values")
    batch_p = corrected(theirs["p_val"].astype(float), correction)
    figures(f"{what}: batch p-value", f"{ours.p_value:.3g}", f"{batch_p:.3g}")
    check_close(ours.p_value, batch_p, f"{what}: corrected batch p-value")
    threshold = np.atleast_1d(theirs["threshold"])[0]  # fdr: all step-up cut-offs if none passed
    check_close(ours.threshold, threshold, f"{what}: feature threshold")
    assert ours.is_drift is bool(theirs["is_drift"]), f"{what}: decisions differ"


def test_the_featurewise_comparison_can_fail(figures):
    """Our KS with its default exact p-values is caught against alibi-detect's asymptotic ones
    (about 1% apart at these sizes), on a batch where both decide alike."""
    ours, theirs, _ = featurewise_pair("KS", "no drift", "bonferroni", method="auto")
    figures(
        "(must fail) KS exact vs asymptotic, smallest p",
        f"{ours.feature_p_values.min():.4g}",
        f"{theirs['p_val'].min():.4g}",
    )
    with pytest.raises(AssertionError, match="feature p-values"):
        check_close(ours.feature_p_values, theirs["p_val"], "KS exact: feature p-values")


@pytest.fixture(scope="module")
def mmd_results():
    """Ours and alibi-detect's answers on each continuous case: 300 x 5 reference, batch 150."""
    results = {}
    for case, (x_ref, x, drift) in continuous(SEED, 300, 150, 5).items():
        ours = MMDDrift(p_val=P_VAL, n_permutations=PERMUTATIONS, device="cpu", seed=0)
        sigma = ours.fit(x_ref).sigma_
        torch.manual_seed(0)  # alibi-detect permutes with the global torch generator
        theirs = alibi_cd.MMDDrift(
            x_ref, backend="pytorch", p_val=P_VAL, sigma=np.array([sigma]),
            configure_kernel_from_x_ref=False, n_permutations=PERMUTATIONS, device="cpu",
        )  # fmt: skip
        results[case] = (ours.test(x), theirs.predict(x)["data"], drift)
    return results


@pytest.mark.parametrize("case", CONTINUOUS)
def test_mmd_matches_alibi_detect(mmd_results, figures, case):
    ours, theirs, drift = mmd_results[case]
    assert bool(theirs["is_drift"]) is drift  # an informative case
    what = f"MMD {case}"
    figures(f"{what}: MMD²", f"{ours.statistic:.3g}", f"{theirs['distance']:.3g}")
    figures(f"{what}: p-value", f"{ours.p_value:.3g}", f"{theirs['p_val']:.3g}")
    check_close(ours.statistic, theirs["distance"], f"{what}: MMD²", rtol=0, atol=MMD_ATOL)
    check_p_values_agree(ours.p_value, theirs["p_val"], PERMUTATIONS, what)
    assert ours.is_drift is bool(theirs["is_drift"]), f"{what}: decisions differ"


def test_the_mmd_comparison_can_fail(mmd_results):
    """The p-value check catches ours on a shifted batch against alibi-detect's on a clean
    one; the statistic check catches a bandwidth 10% off."""
    shifted, clean = mmd_results["mean shift"][0], mmd_results["no drift"][1]
    with pytest.raises(AssertionError, match="Monte Carlo"):
        check_p_values_agree(shifted.p_value, clean["p_val"], PERMUTATIONS, "shifted vs clean")
    x_ref, x, _ = continuous(SEED, 300, 150, 5)["no drift"]
    sigma = MMDDrift(seed=0).fit(x_ref).sigma_
    off = MMDDrift(sigma=1.1 * sigma, n_permutations=1, device="cpu").fit(x_ref)
    statistic = off.test(x).statistic
    with pytest.raises(AssertionError, match="MMD²"):
        check_close(
            statistic, mmd_results["no drift"][1]["distance"], "MMD²", rtol=0, atol=MMD_ATOL
        )


def check_online_statistics(ours: np.ndarray, theirs: np.ndarray, threshold: float) -> None:
    """Statistics on the same full windows: fail where they differ by more than
    ``STATISTIC_SLACK`` of the last threshold (each library splits off its own sub-reference)."""
    gap = float(np.abs(ours - theirs).max()) / threshold
    if gap > STATISTIC_SLACK:
        raise AssertionError(
            f"online MMD statistics differ by up to {gap:.0%} of the threshold, more than "
            f"{STATISTIC_SLACK:.0%}"
        )


def online_pair(x_ref: np.ndarray, ours_window: int = WINDOW, sigma_scale: float = 1.0):
    """Ours (window ``ours_window``, our bandwidth times ``sigma_scale``) and alibi-detect's
    (window ``WINDOW``, our bandwidth), same ERT and number of bootstrap streams."""
    sigma = MMDDriftOnline(window_size=ours_window, seed=0).fit(x_ref).sigma_
    ours = MMDDriftOnline(
        ert=ERT, window_size=ours_window, n_bootstraps=BOOTSTRAPS, sigma=sigma * sigma_scale,
        seed=0,
    ).fit(x_ref)  # fmt: skip
    torch.manual_seed(0)  # alibi-detect's bootstrap and split use the global torch generator
    theirs = alibi_cd.MMDDriftOnline(
        x_ref, ert=ERT, window_size=WINDOW, backend="pytorch", sigma=np.array([sigma]),
        n_bootstraps=BOOTSTRAPS, device="cpu", verbose=False,
    )  # fmt: skip
    return ours, theirs


def run_stream(ours, theirs, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feed both ``x`` event by event. Returns both statistics from the first full window of
    ours (step W) on, shape (len(x) - W + 1, 2); both alarms at every step, shape (len(x), 2);
    and alibi-detect's thresholds of steps 1..W (the last holds after)."""
    ours_r, theirs_r = [ours.update(e) for e in x], [theirs.predict(e)["data"] for e in x]
    pairs = list(zip(ours_r, theirs_r, strict=True))
    stats_ = np.array([[a.statistic, b["test_stat"]] for a, b in pairs])
    alarms = np.array([[a.is_drift, b["is_drift"]] for a, b in pairs], dtype=bool)
    thresholds = np.array([float(t) for t in theirs.thresholds[:WINDOW]])
    return stats_[WINDOW - 1 :], alarms, thresholds


@pytest.fixture(scope="module")
def online_data() -> tuple[np.ndarray, np.ndarray]:
    """A 300 x 4 reference; a stream of 3W events, the last 2W shifted by 1 in every feature."""
    rng = np.random.default_rng(4)
    x_ref, stream = rng.normal(size=(300, 4)), rng.normal(size=(3 * WINDOW, 4))
    stream[WINDOW:] += 1.0
    return x_ref, stream


def test_online_mmd_matches_alibi_detect(online_data, figures):
    """Alibi-detect's window starts full of reference rows (its ERT counts from step 1), ours
    fills from the stream (from step W): from step W on both hold the same W events."""
    x_ref, stream = online_data
    ours, theirs = online_pair(x_ref)
    stats_, alarms, thresholds = run_stream(ours, theirs, stream)
    for i in (0, WINDOW // 2, WINDOW - 1):
        what = f"MMD online, ERT {ERT}, W {WINDOW}: threshold {i + 1} of {WINDOW}"
        figures(what, f"{ours.thresholds_[i]:.4f}", f"{thresholds[i]:.4f}")
    for i in (0, WINDOW, 2 * WINDOW):
        what = f"MMD online: statistic at step {WINDOW + i}" + (" (drift)" if i else "")
        figures(what, f"{stats_[i, 0]:.4f}", f"{stats_[i, 1]:.4f}")
    first = [str(1 + int(a.argmax())) if a.any() else "none" for a in alarms.T]
    figures(f"MMD online: first alarm (shift from step {WINDOW + 1})", *first)
    check_same_order(ours.thresholds_, thresholds, "online MMD thresholds")
    check_online_statistics(stats_[:, 0], stats_[:, 1], thresholds[-1])


def test_the_online_comparison_can_fail(online_data):
    """Thresholds for a window of 4W are caught against alibi-detect's for W; statistics
    with a bandwidth 3 times too wide, against alibi-detect's with the right one."""
    x_ref, stream = online_data
    ours, theirs = online_pair(x_ref, ours_window=4 * WINDOW)
    thresholds = run_stream(ours, theirs, stream)[2]
    with pytest.raises(AssertionError, match="leave"):
        check_same_order(ours.thresholds_[:WINDOW], thresholds, "window 4W vs W")
    ours, theirs = online_pair(x_ref, sigma_scale=3.0)
    stats_, _, thresholds = run_stream(ours, theirs, stream)
    with pytest.raises(AssertionError, match="statistics differ"):
        check_online_statistics(stats_[:, 0], stats_[:, 1], thresholds[-1])
