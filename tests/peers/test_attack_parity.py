"""Our attacks are at least as strong as torchattacks' and ART's, same model, points and budget.

Robust accuracy is the fraction of points still classified correctly after the attack: lower
is stronger. Each comparison uses one L∞ threat model for every library (eps, steps, step
size or query budget, one random start) on the same digits model and points, and allows ours
a slack of 1 point (2 for Square) above the peer. Random starts differ between libraries, so
the gradient attacks are averaged over three seeds on all 597 test points, which keeps the
seed-to-seed spread (about 0.2 point) well inside the slack; each ``*_can_fail`` test shows
that the same check catches a slightly weaker attack.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from benchmarks._peers import art_classifier, art_pgd, robust_accuracy, torchattacks_attack
from scoring.attacks import apgd, pgd, square
from tests.peers._parity import at_least_as_strong

SEEDS = (0, 1, 2)
STEPS = 20  # PGD iterations for every library
APGD_STEPS = 50
QUERIES = 1000  # Square's budget per point, the first query (the initial stripes) included
SQUARE_POINTS = 200
# (model, eps): robust accuracies from about 80% down to about 10%, never degenerate
CASES = [
    ("standard", 0.05),
    ("standard", 0.1),
    ("standard", 0.15),
    ("robust", 0.1),
    ("robust", 0.15),
    ("robust", 0.2),
]


def over_seeds(run: Callable[[int], float]) -> float:
    return float(np.mean([run(seed) for seed in SEEDS]))


def ours_pgd(model, x, y, eps: float) -> float:
    alpha = 2.5 * eps / STEPS  # our default step size, given explicitly to every library
    return over_seeds(
        lambda s: (
            pgd(
                model, x, y, eps=eps, steps=STEPS, step_size=alpha, device="cpu", seed=s
            ).robust_accuracy
        )
    )


def torchattacks_pgd(model, x, y, eps: float) -> float:
    def run(seed: int) -> float:
        x_adv = torchattacks_attack(
            "PGD", model, x, y, eps=eps, alpha=2.5 * eps / STEPS, steps=STEPS, seed=seed
        )
        return robust_accuracy(model, x_adv, y, x, eps)

    return over_seeds(run)


@pytest.mark.parametrize(("name", "eps"), CASES)
def test_pgd_is_at_least_as_strong_as_torchattacks_and_art(models, digits, compare, name, eps):
    model, x, y = models[name], digits.x_test, digits.y_test
    clean = robust_accuracy(model, x, y)
    ours = ours_pgd(model, x, y, eps)
    theirs = torchattacks_pgd(model, x, y, eps)
    classifier = art_classifier(model, tuple(x.shape[1:]), 10)
    art = over_seeds(
        lambda s: robust_accuracy(
            model,
            art_pgd(classifier, x, y, eps=eps, alpha=2.5 * eps / STEPS, steps=STEPS, seed=s),
            y,
            x,
            eps,
        )
    )
    assert 0.05 < theirs < clean - 0.05  # an informative eps: neither all broken nor all robust
    compare(ours, theirs, 0.01, f"PGD-{STEPS} vs torchattacks PGD, {name} eps {eps}")
    compare(ours, art, 0.01, f"PGD-{STEPS} vs ART ProjectedGradientDescent, {name} eps {eps}")


def test_the_pgd_comparison_can_fail(standard_model, digits, figures):
    """Our PGD at 90% of the radius is caught as weaker than torchattacks' at the full one."""
    x, y = digits.x_test, digits.y_test
    weak, theirs = ours_pgd(standard_model, x, y, 0.09), torchattacks_pgd(standard_model, x, y, 0.1)
    figures("(must fail) PGD at eps 0.09 vs torchattacks at 0.1", f"{weak:.2%}", f"{theirs:.2%}")
    with pytest.raises(AssertionError, match="our attack is weaker"):
        at_least_as_strong(weak, theirs, 0.01, "weak PGD")


@pytest.mark.parametrize(("name", "eps"), CASES)
def test_apgd_ce_is_at_least_as_strong_as_torchattacks(models, digits, compare, name, eps):
    model, x, y = models[name], digits.x_test, digits.y_test
    ours = over_seeds(
        lambda s: (
            apgd(
                model, x, y, eps=eps, loss="ce", steps=APGD_STEPS, device="cpu", seed=s
            ).robust_accuracy
        )
    )

    def theirs(seed: int) -> float:
        kw = {"norm": "Linf", "eps": eps, "steps": APGD_STEPS, "n_restarts": 1, "loss": "ce"}
        x_adv = torchattacks_attack("APGD", model, x, y, seed=seed, **kw)
        return robust_accuracy(model, x_adv, y, x, eps)

    what = f"APGD-CE-{APGD_STEPS} vs torchattacks APGD(ce), {name} eps {eps}"
    compare(ours, over_seeds(theirs), 0.01, what)


def square_pair(model, x, y, eps: float, queries: int) -> tuple[float, float]:
    ours = square(model, x, y, eps=eps, n_queries=queries, device="cpu", seed=0)
    # torchattacks queries once for its initial stripes, then n_queries more times
    x_adv = torchattacks_attack("Square", model, x, y, eps=eps, n_queries=QUERIES - 1, seed=0)
    assert int(ours.queries.max()) <= queries
    return ours.robust_accuracy, robust_accuracy(model, x_adv, y, x, eps)


@pytest.mark.parametrize(("name", "eps"), [("standard", 0.1), ("robust", 0.15)])
def test_square_is_at_least_as_strong_as_torchattacks(models, digits, compare, name, eps):
    model = models[name]
    x, y = digits.x_test[:SQUARE_POINTS], digits.y_test[:SQUARE_POINTS]
    ours, theirs = square_pair(model, x, y, eps, QUERIES)
    compare(ours, theirs, 0.02, f"Square-{QUERIES} vs torchattacks Square, {name} eps {eps}")


def test_the_square_comparison_can_fail(standard_model, digits, figures):
    """Our Square with 2% of the queries is caught as weaker than torchattacks' full budget."""
    x, y = digits.x_test[:SQUARE_POINTS], digits.y_test[:SQUARE_POINTS]
    weak, theirs = square_pair(standard_model, x, y, 0.1, QUERIES // 50)
    what = f"(must fail) Square-{QUERIES // 50} vs torchattacks Square-{QUERIES}"
    figures(what, f"{weak:.2%}", f"{theirs:.2%}")
    with pytest.raises(AssertionError, match="our attack is weaker"):
        at_least_as_strong(weak, theirs, 0.02, "weak Square")
