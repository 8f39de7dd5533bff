"""A model that fails, or returns something unusable, becomes one clear ModelError."""

import numpy as np
import pytest
import torch

from detectors.adversarial import FeatureSqueezing, NoiseConsistency
from detectors.exceptions import DataError, ModelError
from detectors.outlier import MahalanobisDetector


class Broken(torch.nn.Module):
    def __init__(self, output):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.output = output

    def forward(self, x):
        return self.output(self.linear(x))


def _raise(z):
    raise RuntimeError("CUDA out of memory")


@pytest.mark.parametrize(
    "output, message",
    [
        (
            _raise,
            r"FeatureSqueezing: the model failed on a batch of shape \(\d+, 4\): "
            "RuntimeError: CUDA out of memory",
        ),
        (lambda z: z[:, 0], r"logits of shape \(n, n_classes\); for a batch of \d+ it returned"),
        (lambda z: z * np.nan, "finite logits"),
        (lambda z: z[:, :1], "at least 2 classes"),
        (lambda z: (z, z), "returned tuple"),
    ],
)
def test_bad_models(output, message):
    x = np.random.default_rng(0).random((40, 4))
    with pytest.raises(ModelError, match=message):
        FeatureSqueezing(Broken(output)).fit(x)


def test_model_error_is_a_runtime_error():
    assert issubclass(ModelError, RuntimeError)


def test_a_model_failing_at_score_time(data, model):
    det = NoiseConsistency(model).fit(data.x_ref[:40])
    det.model = Broken(_raise)
    with pytest.raises(ModelError, match="NoiseConsistency: the model failed"):
        det.score(data.x_test[:2])


def test_unknown_layer_and_layer_without_model(data, model):
    with pytest.raises(DataError, match="no module named 'fc9'"):
        MahalanobisDetector(model, layer="fc9").fit(data.x_ref[:100])
    with pytest.raises(DataError, match="needs the model to read layer"):
        MahalanobisDetector(layer="7")
