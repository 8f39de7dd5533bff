"""The digits CNN of the adversarial tests, shared through its memoised builder."""

from __future__ import annotations

import pytest

from tests.detectors.adversarial.digits import digits, trained_cnn


@pytest.fixture(scope="session")
def data():
    return digits()


@pytest.fixture(scope="session")
def model():
    return trained_cnn()
