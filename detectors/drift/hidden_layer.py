"""A named hidden layer of the monitored model as preprocessing: :class:`HiddenLayer`."""

from __future__ import annotations

import hashlib
from numbers import Integral
from typing import ClassVar

import numpy as np
import torch

from detectors._validation import Constraint, InstanceOf, Interval, Options, SequenceOf
from detectors.drift.preprocess import Preprocessor
from detectors.exceptions import DataError

__all__ = ["HiddenLayer"]


class HiddenLayer(Preprocessor):
    """The activations of a named module of the monitored model, flattened per row.

    A model's own representation is where a shift matters to it (Rabanser et al. 2019). The
    model is not saved with the detector: pass it back as ``load(path, model=model)``; a
    fingerprint of its parameters refuses a different model.

    Parameters
    ----------
    model : torch.nn.Module
        The model; it is run in eval mode without gradients, its mode restored after.
    layer : str
        A name from ``model.named_modules()``, e.g. ``"encoder.3"``.
    input_shape : sequence of int or None, default=None
        Shape of one input: each flat row is reshaped to it (e.g. ``(1, 28, 28)``).
    batch_size : int, default=256
        Rows per forward pass.

    Attributes
    ----------
    model_fingerprint_ : str
        SHA-256 of the model's parameters and buffers.

    References
    ----------
    S. Rabanser, S. Günnemann and Z. C. Lipton, "Failing loudly: an empirical study of methods
    for detecting dataset shift", NeurIPS 2019.

    Examples
    --------
    >>> model = torch.nn.Sequential(torch.nn.Linear(10, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    >>> x = np.random.default_rng(0).normal(size=(4, 10))
    >>> HiddenLayer(model, "1").fit(x).transform(x).shape
    (4, 6)
    """

    _parameter_constraints: ClassVar[dict[str, Constraint | list[Constraint]]] = {
        "model": InstanceOf(torch.nn.Module),
        "layer": InstanceOf(str),
        "input_shape": [Options((None,)), SequenceOf(Interval(Integral, 1, None))],
        "batch_size": Interval(Integral, 1, None),
    }
    _runtime_params = ("model",)

    def __init__(
        self,
        model: torch.nn.Module,
        layer: str,
        input_shape: tuple[int, ...] | None = None,
        batch_size: int = 256,
    ) -> None:
        self.model = model
        self.layer = layer
        self.input_shape = tuple(input_shape) if isinstance(input_shape, list) else input_shape
        self.batch_size = batch_size
        self._validate_params()

    def _module(self) -> torch.nn.Module:
        modules = dict(self.model.named_modules())
        if self.layer not in modules:
            raise DataError(f"{type(self.model).__name__} has no module named {self.layer!r}; "
                            f"it has {sorted(m for m in modules if m)}.")  # fmt: skip
        return modules[self.layer]

    def _fit(self, x: np.ndarray) -> None:
        self._module()
        self.model_fingerprint_ = _fingerprint(self.model)

    def _restore(self) -> None:
        if _fingerprint(self.model) != self.model_fingerprint_:
            raise DataError("The model given to HiddenLayer is not the one it was fitted with "
                            "(its parameters differ).")  # fmt: skip

    def _transform(self, x: np.ndarray) -> np.ndarray:
        captured: list[torch.Tensor] = []
        hook = self._module().register_forward_hook(lambda _m, _i, out: captured.append(out))
        param = next(self.model.parameters(), None)
        device, dtype = (param.device, param.dtype) if param is not None else ("cpu", None)
        shape = (-1, *self.input_shape) if self.input_shape else (-1, x.shape[1])
        was_training = self.model.training
        try:
            self.model.eval()
            with torch.inference_mode():
                for i in range(0, x.shape[0], self.batch_size):
                    batch = torch.as_tensor(
                        x[i : i + self.batch_size], dtype=dtype or torch.float32
                    )
                    self.model(batch.reshape(shape).to(device))
        finally:
            hook.remove()
            self.model.train(was_training)
        return torch.cat([c.reshape(c.shape[0], -1) for c in captured]).double().cpu().numpy()


def _fingerprint(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
