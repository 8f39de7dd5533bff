"""Loading a model to score without unpickling anything (:func:`load_model`), and compiling
it for faster attacks on a GPU (:func:`compile_model`).

Three forms, as in DESIGN.md: a TorchScript archive (``torch.jit.load``); a ``torch.export``
program (``.pt2``, ``torch.export.load``), wrapped in :class:`FixedBatch` when it was exported
with a static batch size, since attacks call the model on ever fewer rows; or
``package.module:factory``, whose module is built by calling ``factory()`` and filled from a
state dict read with ``torch.load(..., weights_only=True)`` (or safetensors for
``.safetensors`` files). Pickled whole models are refused: unpickling a file runs whatever
code its author put there.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from scoring.exceptions import MissingDependencyError, ModelLoadError

__all__ = ["FixedBatch", "compile_model", "load_model"]

_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_REFUSED = (
    "Save the model as TorchScript (torch.jit.script(model).save(path)), as a torch.export "
    "program (torch.export.save(torch.export.export(model, (x,)), 'model.pt2')), or pass "
    "package.module:factory with weights= a state dict (torch.save(model.state_dict(), path))."
)


class FixedBatch(torch.nn.Module):
    """Run a program exported with a static batch size on any number of rows.

    Rows go through in chunks of ``batch``; the last chunk is padded with zeros and the
    padding's outputs dropped. Gradients flow to the real rows only.

    >>> m = FixedBatch(torch.nn.Identity(), batch=4)
    >>> m(torch.ones(6, 2)).shape
    torch.Size([6, 2])
    """

    def __init__(self, module: torch.nn.Module, batch: int) -> None:
        super().__init__()
        self.module, self.batch = module, batch
        self.training = module.training  # .eval() would recurse into a module that refuses it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for i in range(0, x.shape[0], self.batch):
            chunk = x[i : i + self.batch]
            pad = chunk.new_zeros((self.batch - chunk.shape[0], *chunk.shape[1:]))
            outs.append(self.module(torch.cat([chunk, pad]))[: chunk.shape[0]])
        return torch.cat(outs)


def _exported(path: Path) -> torch.nn.Module:
    """The program's module, in eval mode (its mode was fixed at export), batch-size free."""
    try:
        program = torch.export.load(path)
    except Exception as exc:  # a corrupt or foreign archive
        raise ModelLoadError(f"{path} is not a torch.export program ({exc}).") from exc
    module = program.module()
    for m in module.modules():  # exported modules refuse .eval(); the flag is informative
        m.training = False
    inputs = set(program.graph_signature.user_inputs)
    first = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name in inputs)
    shape = getattr(first.meta.get("val"), "shape", ())
    if len(shape) and isinstance(shape[0], int):  # exported without a dynamic batch dimension
        return FixedBatch(module, shape[0])
    return module


def _factory(spec: str, kwargs: Mapping[str, Any]) -> torch.nn.Module:
    module_name, name = spec.split(":")
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"Cannot import {name!r} from {module_name!r}: {exc}.") from exc
    model = factory(**kwargs)
    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError(f"{spec}() returned {type(model).__name__}, not a torch.nn.Module.")
    return model


def _state_dict(path: Path, map_location: Any) -> Mapping[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise MissingDependencyError(
                f"{path} is a safetensors file: pip install safetensors, or save the state "
                "dict with torch.save."
            ) from exc
        return load_file(str(path), device=str(map_location))
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError: whatever a bad file raises
        raise ModelLoadError(
            f"{path} is not a state dict loadable with weights_only=True ({exc}). {_REFUSED}"
        ) from exc
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ModelLoadError(f"{path} holds a {type(state).__name__}, not a state dict.")
    return state


def load_model(
    spec: str | Path,
    weights: str | Path | None = None,
    *,
    factory_kwargs: Mapping[str, Any] | None = None,
    map_location: Any = "cpu",
) -> torch.nn.Module:
    """Load a model from a TorchScript file, a ``.pt2`` program or a factory plus weights.

    Parameters
    ----------
    spec : str or Path
        A TorchScript archive, a ``.pt2`` file, or ``"package.module:factory"``.
    weights : str or Path, optional
        A state dict (``torch.save(model.state_dict())`` or ``.safetensors``) to load strictly
        into the factory's module; only with a factory.
    factory_kwargs : mapping, optional
        Keyword arguments of the factory.
    map_location : str or torch.device, default="cpu"
        Where tensors are loaded.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    ModelLoadError
        Anything else, pickled whole models included, with how to save the model instead.

    Examples
    --------
    >>> load_model("torch.nn:Identity")
    Identity()
    >>> load_model("torch.nn:Linear", factory_kwargs={"in_features": 2, "out_features": 3})
    Linear(in_features=2, out_features=3, bias=True)
    """
    text = str(spec)
    if _FACTORY.match(text) and not Path(text).exists():
        model = _factory(text, factory_kwargs or {})
        if weights is not None:
            state = _state_dict(Path(weights), map_location)
            try:
                model.load_state_dict(state)
            except RuntimeError as exc:
                raise ModelLoadError(f"{weights} does not fit {text}(): {exc}") from exc
        return model
    path = Path(text)
    if weights is not None:
        raise ModelLoadError("weights= goes with package.module:factory, not with a model file.")
    if not path.is_file():
        raise ModelLoadError(f"No model file at {path}, and {text!r} is not module:factory.")
    if path.suffix == ".pt2":
        return _exported(path)
    try:
        return torch.jit.load(str(path), map_location=map_location)
    except Exception as exc:  # RuntimeError for a pickle or a plain torch.save archive
        raise ModelLoadError(
            f"{path} is not a TorchScript archive, and other files are never unpickled. {_REFUSED}"
        ) from exc


def compile_model(model: torch.nn.Module) -> torch.nn.Module:
    """``torch.compile(model)``, refusing up front what it cannot compile.

    Compiling fuses what eager mode runs kernel by kernel (a ResNet's batch norms, ReLUs and
    residual sums); on a GPU, bf16 attacks on a ResNet-18 then run about 1.4 times faster
    (README, "On a GPU"). The first call compiles, for seconds to a minute; the answers are
    those of the model itself up to the order of floating-point sums.

    Raises
    ------
    ModelLoadError
        For a TorchScript module, which ``torch.compile`` refuses.

    Examples
    --------
    >>> compile_model(torch.jit.script(torch.nn.Identity()))
    Traceback (most recent call last):
    ...
    scoring.exceptions.ModelLoadError: torch.compile cannot compile a TorchScript model. ...
    """
    if isinstance(model, torch.jit.ScriptModule):
        raise ModelLoadError(
            "torch.compile cannot compile a TorchScript model. Load it as a torch.export "
            "program (.pt2) or as package.module:factory with weights, or score it uncompiled."
        )
    return torch.compile(model)
