"""load_model: TorchScript, torch.export and factories with weights; never a pickle."""

import pickle

import pytest
import torch

from scoring import evaluate, load_model
from scoring.exceptions import ModelLoadError
from scoring.models import FixedBatch

pytestmark = [  # torch 2.13 deprecates TorchScript, which DESIGN.md still accepts
    pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning"),
]

X = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
UNPICKLED = []


class _Payload:
    def __reduce__(self):  # runs when unpickled
        return (UNPICKLED.append, ("ran",))


def test_torchscript_round_trip(standard_model, tmp_path):
    path = tmp_path / "model.ts"
    torch.jit.script(standard_model).save(str(path))
    loaded = load_model(path)
    assert torch.allclose(loaded(X), standard_model(X))


@pytest.mark.parametrize("dynamic", [False, True], ids=["static-batch", "dynamic-batch"])
def test_export_program_round_trip(standard_model, tmp_path, dynamic):
    path = tmp_path / "model.pt2"
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    torch.export.save(torch.export.export(standard_model, (X,), dynamic_shapes=shapes), path)
    model = load_model(path)
    assert isinstance(model, FixedBatch) != dynamic and not model.training
    assert torch.allclose(model(X), standard_model(X), atol=1e-6)
    x = torch.rand(7, 1, 8, 8, generator=torch.Generator().manual_seed(1))  # not the export size
    assert torch.allclose(model(x), standard_model(x), atol=1e-6)
    r = evaluate(model, x, attacks=["pgd"], eps=[0.1], device="cpu", steps=3)
    assert not any("train mode" in w for w in r.warnings)


def test_factory_with_weights_only_state_dict(tmp_path):
    source = torch.nn.Linear(4, 3)
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    model = load_model(
        "torch.nn:Linear", path, factory_kwargs={"in_features": 4, "out_features": 3}
    )
    assert torch.equal(model.weight, source.weight)
    with pytest.raises(ModelLoadError, match="does not fit"):
        load_model("torch.nn:Linear", path, factory_kwargs={"in_features": 5, "out_features": 3})


def test_factory_with_safetensors(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    source = torch.nn.Linear(2, 2)
    path = tmp_path / "w.safetensors"
    safetensors.save_file(source.state_dict(), str(path))
    model = load_model(
        "torch.nn:Linear", path, factory_kwargs={"in_features": 2, "out_features": 2}
    )
    assert torch.equal(model.bias, source.bias)


def test_pickles_are_never_unpickled(tmp_path, standard_model):
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump(_Payload(), f)
    whole = tmp_path / "whole.pt"
    torch.save(standard_model, whole)  # a pickled whole model
    for path in (evil, whole):
        with pytest.raises(ModelLoadError, match="never unpickled"):
            load_model(path)
    with pytest.raises(ModelLoadError, match="weights_only=True"):
        load_model("torch.nn:Identity", evil)
    assert UNPICKLED == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no/such/file.ts", "No model file"),
        ("torch.nn:NoSuchThing", "Cannot import"),
        ("torch:tensor", "not a torch.nn.Module"),
    ],
)
def test_clear_errors(spec, message):
    with pytest.raises(ModelLoadError, match=message):
        load_model(spec, factory_kwargs={"data": 1} if spec == "torch:tensor" else None)


def test_weights_only_go_with_factories(tmp_path, standard_model):
    path = tmp_path / "model.ts"
    torch.jit.script(standard_model).save(str(path))
    with pytest.raises(ModelLoadError, match="module:factory"):
        load_model(path, weights=path)
