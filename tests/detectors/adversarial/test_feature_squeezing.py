"""Feature squeezing: the squeezers against reference implementations, and tabular rows."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from detectors.adversarial import FeatureSqueezing
from detectors.adversarial.feature_squeezing import bit_depth, median, nearest_level
from detectors.exceptions import DataError, ParameterError


@pytest.mark.parametrize("bits", [1, 3, 5])
def test_bit_depth_matches_rounding_to_the_grid(bits):
    x = np.random.default_rng(0).random((4, 3, 5, 5)).astype(np.float32)
    levels = 2**bits - 1
    expected = np.rint(x * levels) / levels
    np.testing.assert_allclose(bit_depth(torch.from_numpy(x), bits, (0.0, 1.0)), expected)


def test_bit_depth_spans_the_bounds():
    x = torch.tensor([-1.0, 0.0, 127.0, 255.0, 300.0])
    assert bit_depth(x, 1, (0.0, 255.0)).tolist() == [0.0, 0.0, 0.0, 255.0, 255.0]


@pytest.mark.parametrize("k", [2, 3])
def test_median_matches_scipy(k):
    x = np.random.default_rng(1).random((2, 3, 7, 6)).astype(np.float32)
    expected = ndimage.median_filter(x, size=(1, 1, k, k), mode="nearest")
    np.testing.assert_allclose(median(torch.from_numpy(x), k), expected)


def test_nearest_level_matches_brute_force():
    rng = np.random.default_rng(2)
    levels = np.sort(rng.normal(size=(6, 4)), axis=0).astype(np.float32)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    nearest = np.abs(x[:, None, :] - levels[None]).argmin(1)
    expected = np.take_along_axis(levels, nearest, 0)
    got = nearest_level(torch.from_numpy(x), torch.from_numpy(levels))
    np.testing.assert_allclose(got, expected)


def test_tabular_rows_snap_to_reference_quantiles():
    rng = np.random.default_rng(3)
    model = torch.nn.Linear(5, 3)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(rng.normal(size=(3, 5))))
        model.bias.zero_()
    x_ref = rng.normal(size=(2000, 5))
    det = FeatureSqueezing(model, fpr=0.05, n_levels=8).fit(x_ref)
    assert det.squeezers_ == ("quantile",) and det.levels_.shape == (8, 5)
    assert det.predict(rng.normal(size=(20_000, 5))).mean() == pytest.approx(0.05, abs=0.015)


def test_image_squeezers_need_images():
    with pytest.raises(DataError, match="need image inputs"):
        FeatureSqueezing(torch.nn.Linear(5, 3), squeezers=["median-2x2"]).fit(np.ones((30, 5)))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"bounds": (1.0, 0.0)}, "'bounds' parameter of FeatureSqueezing must be a tuple"),
        ({"bits": 0}, "'bits' parameter of FeatureSqueezing must be an int in"),
        ({"squeezers": ["blur"]}, "'squeezers' parameter"),
        ({"model": "model.pt"}, "'model' parameter of FeatureSqueezing must be an instance"),
    ],
)
def test_parameters_are_validated(params, message):
    with pytest.raises(ParameterError, match=message):
        FeatureSqueezing(**{"model": torch.nn.Identity(), **params})


def test_batching_does_not_change_scores(data, model):
    big = FeatureSqueezing(model, batch_size=1024).fit(data.x_ref)
    small = FeatureSqueezing(model, batch_size=5).fit(data.x_ref)
    np.testing.assert_allclose(
        big.score(data.x_test[:30]), small.score(data.x_test[:30]), atol=1e-6
    )
