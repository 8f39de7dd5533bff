"""Models and points shared by the parity tests, which run in the peers virtualenv only.

``make test-peers`` (``.peers/bin/python -m pytest tests/peers``); the main ``make test``
leaves this folder out (``--ignore=tests/peers`` in pyproject.toml's ``addopts``), since
torchattacks, ART and alibi-detect are never installed beside robustwatch.

Every model is a small digits classifier trained here in about a second, from
``benchmarks/_peers.py`` (shared with ``benchmarks/attacks.py``), inputs in [0, 1].

Layout: ``test_attack_parity.py`` (PGD, APGD-CE, Square against torchattacks and ART),
``test_certify_parity.py`` (randomized smoothing against ART) and ``test_drift_parity.py``
(the drift detectors against alibi-detect).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from benchmarks._peers import Digits, load_digits, make_mlp, train
from tests.peers._parity import ADV_EPS, SIGMA, at_least_as_strong

_FIGURES: list[tuple[str, str, str]] = []  # (comparison, ours, theirs), printed at the end


@pytest.fixture
def figures() -> Callable[[str, str, str], None]:
    """``figures(comparison, ours, theirs)`` adds a row to the table printed after the run."""
    return lambda what, ours, theirs: _FIGURES.append((what, ours, theirs))


@pytest.fixture
def compare(figures) -> Callable[[float, float, float, str], None]:
    """Record a robust-accuracy comparison in the table, then check it."""

    def check(ours: float, peer: float, slack: float, what: str) -> None:
        figures(what, f"{ours:.2%}", f"{peer:.2%}")
        at_least_as_strong(ours, peer, slack, what)

    return check


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        width = max(len(row[0]) for row in _FIGURES)
        terminalreporter.section("robustwatch vs peers")
        terminalreporter.write_line(f"{'comparison':<{width}}  {'ours':>9}  {'peer':>9}")
        for what, ours, theirs in _FIGURES:
            terminalreporter.write_line(f"{what:<{width}}  {ours:>9}  {theirs:>9}")


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def digits() -> Digits:
    return load_digits(seed=0)


@pytest.fixture(scope="package")
def standard_model(digits):
    return train(make_mlp(1), digits.x_train, digits.y_train, epochs=30, seed=1)


@pytest.fixture(scope="package")
def robust_model(digits):
    model = train(make_mlp(2), digits.x_train, digits.y_train, epochs=30, seed=2)
    return train(model, digits.x_train, digits.y_train, epochs=30, seed=3, adv_eps=ADV_EPS)


@pytest.fixture(scope="package")
def noisy_model(digits):
    return train(make_mlp(4), digits.x_train, digits.y_train, epochs=30, seed=4, noise=SIGMA)


@pytest.fixture(scope="package")
def models(standard_model, robust_model):
    return {"standard": standard_model, "robust": robust_model}
