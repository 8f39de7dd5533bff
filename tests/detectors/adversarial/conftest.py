"""A small CNN trained on scikit-learn's digits, its logits, and C&W L2 examples against it:
built once per test session."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scoring.attacks import cw_l2
from tests.detectors.adversarial.digits import Digits, digits, trained_cnn


@pytest.fixture(scope="session", autouse=True)
def _one_thread_for_session_fixtures():
    """One torch thread while the session and module fixtures (training, attacks) run too:
    they start before the per-test one-thread fixture of tests/detectors/conftest.py."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def data() -> Digits:
    return digits()


@pytest.fixture(scope="session")
def model() -> torch.nn.Module:
    return trained_cnn()


@pytest.fixture(scope="session")
def logits(data, model) -> dict[str, np.ndarray]:
    with torch.no_grad():
        return {
            "ref": model(torch.from_numpy(data.x_ref)).double().numpy(),
            "test": model(torch.from_numpy(data.x_test)).double().numpy(),
        }


@pytest.fixture(scope="session")
def cw_examples(data, model) -> np.ndarray:
    """C&W L2 (kappa 0) examples of the first 150 held-out digits that the model gets right
    and the attack breaks: minimal perturbations, just across the decision boundary."""
    x, y = torch.from_numpy(data.x_test[:150]), torch.from_numpy(data.y_test[:150])
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    result = cw_l2(model, x, y, steps=50, search_steps=5)
    keep = (correct & result.success).numpy()
    return result.x_adv.numpy()[keep]
