"""Validation of inputs, labels and model outputs, normalisation and eval mode."""

import numpy as np
import pytest
import torch

from scoring.attacks import fgsm
from scoring.exceptions import (
    DataError,
    InputRangeError,
    LabelError,
    ModelOutputError,
    ParameterError,
)
from scoring.inputs import Normalized, as_inputs, as_labels, check_bounds, check_logits, eval_mode

X = torch.tensor([[0.6, 0.4], [0.2, 0.6]])  # margins 0.2 and 0.4; rows do not sum to 1
Y = torch.tensor([0, 1])


def test_normalized_applies_per_channel_statistics_on_images():
    seen = []
    model = Normalized(lambda x: seen.append(x) or x.flatten(1), mean=[0.5, 0.0], std=[0.5, 2.0])
    x = torch.ones(1, 2, 2, 2)
    model(x)
    assert torch.equal(seen[0][0, 0], torch.ones(2, 2))
    assert torch.equal(seen[0][0, 1], torch.full((2, 2), 0.5))


def test_normalized_rejects_non_positive_std():
    with pytest.raises(DataError, match="std must be positive"):
        Normalized(torch.nn.Identity(), 0.0, [1.0, 0.0])


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((0, 3)), "N >= 1"),
        (np.zeros(3), "shape \\(N, features"),
        (np.array([[0.1, np.nan]]), "NaN or inf"),
    ],
)
def test_bad_inputs_are_data_errors(x, message):
    with pytest.raises(DataError, match=message):
        as_inputs(x, torch.device("cpu"))


def test_inputs_outside_the_declared_range_say_how_to_fix():
    with pytest.raises(InputRangeError, match=r"values in \[0, 255\].*bounds=None"):
        check_bounds(torch.tensor([[0.0, 255.0]]), (0.0, 1.0))
    check_bounds(torch.tensor([[-3.0, 255.0]]), None)
    with pytest.raises(InputRangeError):
        fgsm(torch.nn.Identity(), X * 2, Y, eps=0.1)
    assert isinstance(InputRangeError("x"), ValueError)


@pytest.mark.parametrize(
    ("y", "message"),
    [
        ([0, 2], r"labels in \[0, 2\].*\[0, 1\]"),
        ([0, -1], "labels in"),
        ([0], r"shape \(2,\)"),
        ([0.5, 1.0], "integer class indices"),
    ],
)
def test_bad_labels_are_label_errors(y, message):
    with pytest.raises(LabelError, match=message):
        as_labels(y, 2, 2, torch.device("cpu"))
    with pytest.raises(LabelError):
        fgsm(torch.nn.Identity(), X, torch.tensor(y), eps=0.1)


@pytest.mark.parametrize(
    "model",
    [lambda x: x[:, 0], lambda x: x[:1], lambda x: x[:, :1], lambda x: x.numpy()],
    ids=["1d", "rows", "one-class", "numpy"],
)
def test_outputs_that_are_not_n_by_classes_are_model_output_errors(model):
    with pytest.raises(ModelOutputError, match=r"shape \(N, n_classes\)"):
        fgsm(model, X, Y, eps=0.1)


def test_non_finite_outputs_are_model_output_errors():
    with pytest.raises(ModelOutputError, match="NaN or inf"):
        check_logits(torch.tensor([[0.0, float("nan")]]), 1)


def test_probability_outputs_carry_a_warning():
    softmax = torch.nn.Softmax(dim=1)
    r = fgsm(softmax, X, Y, eps=0.15)
    assert any("probabilities" in w for w in r.warnings)
    assert fgsm(torch.nn.Identity().eval(), X, Y, eps=0.15).warnings == ()


def test_train_mode_is_scored_in_eval_mode_and_restored():
    model = torch.nn.Sequential(torch.nn.Dropout(0.9), torch.nn.Identity())
    model.train()
    model[1].eval()  # a submodule with its own mode keeps it
    r = fgsm(model, X, Y, eps=0.15)
    assert any("train mode" in w for w in r.warnings)
    assert r.success.tolist() == [True, False]  # dropout off: the exact FGSM answer
    assert model.training and model[0].training and not model[1].training


def test_eval_mode_restores_even_after_an_error():
    model = torch.nn.Linear(2, 2).train()
    with pytest.raises(RuntimeError), eval_mode(model) as notes:
        assert not model.training and notes
        raise RuntimeError("boom")
    assert model.training


def test_bad_precision_and_device_mismatch_are_parameter_errors():
    with pytest.raises(ParameterError, match="precision"):
        fgsm(torch.nn.Identity(), X, Y, eps=0.1, precision="fp16")
    with pytest.raises(ParameterError, match="eps"):
        fgsm(torch.nn.Identity(), X, Y, eps=-0.1)
