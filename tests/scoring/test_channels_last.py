"""Attacks run convolutional models in channels-last memory, and leave them as they were."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scoring import certify
from scoring.attacks import run_named
from scoring.exceptions import ParameterError
from scoring.inputs import ChannelsLast

CL = torch.channels_last


def weight_layouts(model):
    """Each 4-D weight's storage address and strides: what an attack must give back."""
    return [(p.data_ptr(), p.stride()) for p in model.parameters() if p.dim() == 4]


def test_switches_the_weights_and_gives_back_their_own_storage(cnn_model):
    before = weight_layouts(cnn_model)
    with ChannelsLast(cnn_model, torch.zeros(2, 1, 8, 8), None) as layout:
        assert layout.active
        assert all(
            p.is_contiguous(memory_format=CL) for p in cnn_model.parameters() if p.dim() == 4
        )
        assert layout.inputs(torch.zeros(2, 3, 4, 4)).is_contiguous(memory_format=CL)
    assert weight_layouts(cnn_model) == before and not layout.active


def test_restores_the_weights_when_the_block_raises(cnn_model):
    before = weight_layouts(cnn_model)
    with pytest.raises(KeyError), ChannelsLast(cnn_model, torch.zeros(2, 1, 8, 8), None):
        raise KeyError("boom")
    assert weight_layouts(cnn_model) == before


def test_a_tied_weight_is_switched_once_and_restored():
    conv = torch.nn.Conv2d(4, 4, 3, padding=1)
    model = torch.nn.Sequential(conv, torch.nn.ReLU(), conv)  # the same weight twice
    before = weight_layouts(model)
    with ChannelsLast(model, torch.zeros(1, 4, 5, 5), None):
        assert conv.weight.is_contiguous(memory_format=CL)
    assert weight_layouts(model) == before


def test_weights_already_channels_last_stay_as_they_are():
    model = torch.nn.Conv2d(3, 4, 3).to(memory_format=CL)
    before = weight_layouts(model)
    with ChannelsLast(model, torch.zeros(1, 3, 5, 5), None) as layout:
        assert layout.active and weight_layouts(model) == before  # inputs still go channels-last
    assert weight_layouts(model) == before


@pytest.mark.parametrize(
    ("x", "wanted"),
    [(torch.zeros(2, 64), None), (torch.zeros(2, 1, 8, 8), False)],
    ids=["feature vectors", "turned off"],
)
def test_leaves_the_model_alone_when_off(cnn_model, x, wanted):
    with ChannelsLast(cnn_model, x, wanted) as layout:
        assert not layout.active and layout.inputs(x) is x
        assert all(p.is_contiguous() for p in cnn_model.parameters())


def test_insisting_on_feature_vectors_is_a_clear_error(standard_model):
    with pytest.raises(ParameterError, match=r"channels_last=True needs inputs of shape \(N, C"):
        run_named(
            "pgd",
            standard_model,
            torch.zeros(2, 64),
            None,
            norm="linf",
            eps=0.1,
            channels_last=True,
        )


@pytest.mark.parametrize(("name", "norm"), [("pgd", "linf"), ("apgd-ce", "l2"), ("cw-l2", "l2")])
def test_the_layout_changes_speed_not_answers(cnn_model, batch, name, norm):
    x, y = batch[0][:100], batch[1][:100]
    before = weight_layouts(cnn_model)
    kw = {
        "norm": norm,
        "eps": None if name == "cw-l2" else 0.1 if norm == "linf" else 0.8,
        "steps": 10,
        "seed": 1,
    }
    fast = run_named(name, cnn_model, x, y, channels_last=None, **kw)
    plain = run_named(name, cnn_model, x, y, channels_last=False, **kw)
    assert weight_layouts(cnn_model) == before
    assert fast.x_adv.is_contiguous()  # handed back in the usual layout
    assert 0 < int(plain.success.sum()) < x.shape[0]
    # the same up to the order of floating-point sums: at most a point or two may differ
    assert int((fast.success != plain.success).sum()) <= 2
    assert fast.forward_passes == pytest.approx(plain.forward_passes, rel=0.05)


class ViewsItsWeight(torch.nn.Module):
    """A convolution whose forward pass reshapes its weight with ``.view()``, which only a
    contiguous (NCHW) weight allows."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(
            torch.randn(10, 2, 3, 3, generator=torch.Generator().manual_seed(0))
        )

    def forward(self, x):
        w = self.weight.view(10, 18).view(10, 2, 3, 3)
        return F.conv2d(x, w).mean((2, 3))


def test_a_model_that_needs_its_own_layout_runs_in_it():
    model = ViewsItsWeight().eval()
    x = torch.rand(8, 2, 6, 6, generator=torch.Generator().manual_seed(1))
    weight = model.weight.stride()
    with pytest.raises(RuntimeError, match="view"):
        run_named("pgd", model, x, None, norm="linf", eps=0.1, steps=3, channels_last=True)
    assert model.weight.stride() == weight  # restored although the attack raised
    auto = run_named("pgd", model, x, None, norm="linf", eps=0.1, steps=3)
    plain = run_named("pgd", model, x, None, norm="linf", eps=0.1, steps=3, channels_last=False)
    assert torch.equal(auto.x_adv, plain.x_adv) and auto.forward_passes == plain.forward_passes


def test_certify_counts_the_same_votes_in_either_layout(cnn_model, batch):
    x = batch[0][:6]
    before = weight_layouts(cnn_model)
    fast = certify(cnn_model, x, 0.25, n0=50, n=2000, batch_size=1000, device="cpu", seed=2)
    plain = certify(  # a bare function has no weights to switch: the NCHW path
        lambda t: cnn_model(t), x, 0.25, n0=50, n=2000, batch_size=1000, device="cpu", seed=2
    )
    assert weight_layouts(cnn_model) == before
    assert np.array_equal(fast.prediction, plain.prediction)
    assert np.abs(fast.counts - plain.counts).max() <= 3  # a vote or so flipped by rounding
    assert fast.forward_passes == plain.forward_passes


def test_certify_runs_a_model_that_needs_its_own_layout_in_it():
    model = ViewsItsWeight().eval()
    x = torch.rand(4, 2, 6, 6, generator=torch.Generator().manual_seed(1))
    r = certify(model, x, 0.25, n0=20, n=200, device="cpu", seed=0)
    assert r.counts.sum() == 4 * 200 and model.weight.is_contiguous()


class FlattensWithView(torch.nn.Module):
    """The common ``h.view(h.size(0), -1)`` before the classifier: a view that only a
    contiguous (NCHW) activation allows once the feature map is larger than 1x1."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.fc(h.view(h.size(0), -1))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # TorchScript is loadable
@pytest.mark.parametrize("kind", ["eager", "torchscript"])
def test_a_model_that_views_its_activations_runs_in_its_own_layout(kind):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = FlattensWithView().eval()
    if kind == "torchscript":
        model = torch.jit.script(model)
    x = torch.rand(5, 3, 6, 6, generator=torch.Generator().manual_seed(2))
    auto = run_named("pgd", model, x, None, norm="linf", eps=0.1, steps=3)
    plain = run_named("pgd", model, x, None, norm="linf", eps=0.1, steps=3, channels_last=False)
    assert torch.equal(auto.x_adv, plain.x_adv) and auto.forward_passes == plain.forward_passes
    r = certify(model, x, 0.25, n0=10, n=100, device="cpu", seed=0)
    assert r.counts.sum() == 5 * 100
    assert all(p.is_contiguous() for p in model.parameters())
