import re

import numpy as np
import pytest
import torch

from detectors._persist import Persistable
from detectors.drift import (
    DriftDetector,
    HiddenLayer,
    LSDDDrift,
    MMDDrift,
    MMDDriftOnline,
    RandomProjection,
    UntrainedEncoder,
)
from detectors.exceptions import DataError, NotFittedError


def _model():
    torch.manual_seed(0)  # the test's own model; detectors never seed globally
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    )


def test_random_projection_is_seeded_and_scaled():
    x = np.random.default_rng(0).normal(size=(2000, 50))
    a, b = RandomProjection(10, seed=3).fit(x), RandomProjection(10, seed=3).fit(x)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert not np.array_equal(a.components_, RandomProjection(10, seed=4).fit(x).components_)
    ratio = (a.transform(x) ** 2).sum(1).mean() / (x**2).sum(1).mean()
    assert ratio == pytest.approx(1.0, rel=0.1)  # norms kept on average


def test_untrained_encoder_is_seeded_and_round_trips(tmp_path):
    x = np.random.default_rng(1).normal(size=(20, 30))
    enc = UntrainedEncoder(4, hidden=16, seed=2).fit(x)
    np.testing.assert_array_equal(enc.transform(x), UntrainedEncoder(4, 16, 2).fit(x).transform(x))
    enc.save(tmp_path)
    assert (tmp_path / "weights.safetensors").exists()
    np.testing.assert_array_equal(Persistable.load(tmp_path).transform(x), enc.transform(x))


def test_hidden_layer_reads_the_named_module():
    model = _model()
    x = np.random.default_rng(2).normal(size=(10, 16))
    got = HiddenLayer(model, "2", input_shape=(4, 4), batch_size=3).fit(x).transform(x)
    with torch.no_grad():
        expected = torch.tanh(model[1](torch.as_tensor(x, dtype=torch.float32))).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert model.training  # the model's mode is left as it was


def test_hidden_layer_detector_saves_without_the_model_and_loads_with_it(tmp_path):
    rng = np.random.default_rng(3)
    x_ref, x = rng.normal(size=(200, 16)), rng.normal(size=(80, 16)) + 0.5
    model = _model()
    det = MMDDrift(preprocess=HiddenLayer(model, "2"), device="cpu").fit(x_ref)
    det.save(tmp_path)
    assert det.test(x).is_drift
    with pytest.raises(DataError, match=re.escape("saved without its 'model'; pass model=...")):
        DriftDetector.load(tmp_path)
    loaded = DriftDetector.load(tmp_path, model=model)
    assert loaded.preprocess.model is model
    assert loaded.test(x).to_dict() == det.test(x).to_dict()
    other = _model()
    with torch.no_grad():
        other[1].weight.add_(1.0)
    with pytest.raises(DataError, match="not the one it was fitted with"):
        DriftDetector.load(tmp_path, model=other)


def test_unknown_layer():
    with pytest.raises(DataError, match=re.escape("has no module named 'nope'; it has ['0', '1'")):
        HiddenLayer(_model(), "nope").fit(np.zeros((3, 16)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomProjection(8),
        lambda: UntrainedEncoder(8, hidden=32),
        lambda: HiddenLayer(_model(), "2"),
    ],
    ids=["projection", "encoder", "hidden-layer"],
)
def test_each_preprocessor_keeps_kernel_tests_calibrated_and_powerful(make):
    rng = np.random.default_rng(4)
    x_ref = rng.normal(size=(300, 16))
    for cls in (MMDDrift, LSDDDrift):
        det = cls(preprocess=make(), device="cpu").fit(x_ref)
        assert not det.test(rng.normal(size=(100, 16))).is_drift
        assert det.test(rng.normal(size=(100, 16)) + 0.6).is_drift


def test_online_detector_with_preprocessing():
    rng = np.random.default_rng(5)
    det = MMDDriftOnline(ert=100, window_size=10, n_bootstraps=2000, preprocess=RandomProjection(4))
    det.fit(rng.normal(size=(200, 40)))
    assert det.x_ref_.shape[1] == 4
    assert det.update(rng.normal(size=(60, 40)) + 1.0).is_drift


def test_preprocessor_contract():
    x = np.zeros((5, 3))
    with pytest.raises(NotFittedError, match="RandomProjection is not fitted yet"):
        RandomProjection().transform(x)
    with pytest.raises(DataError, match="x has 2 features, but RandomProjection was fitted with 3"):
        RandomProjection(2).fit(x).transform(x[:, :2])
