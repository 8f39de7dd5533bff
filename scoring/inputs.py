"""Inputs, labels and models as attacks see them: validation, normalisation and eval mode.

Attacks work in the space users reason in: inputs with a declared valid range ``bounds``
(``(0.0, 1.0)`` for images, ``None`` for unbounded tabular features), so that ``eps=8/255``
means eight grey levels. A model trained on standardised inputs is wrapped in
:class:`Normalized`, which applies ``(x - mean) / std`` inside the forward pass.

Models in train mode are evaluated in eval mode and restored afterwards (see
:func:`eval_mode`); the result carries a note saying so.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from scoring.exceptions import (
    DataError,
    InputRangeError,
    LabelError,
    ModelOutputError,
    ParameterError,
)

__all__ = [
    "ChannelsLast",
    "Normalized",
    "as_inputs",
    "as_labels",
    "check_bounds",
    "check_logits",
    "eval_mode",
    "model_device",
    "placed",
    "resolve_device",
]

Bounds = tuple[float, float] | None


class Normalized(torch.nn.Module):
    """``model((x - mean) / std)``: a model on standardised inputs, attacked in raw space.

    Parameters
    ----------
    model : torch.nn.Module
        The model expecting standardised inputs.
    mean, std : float or sequence of float
        Per-channel (dimension 1) statistics, or scalars.

    Examples
    --------
    >>> m = Normalized(torch.nn.Identity(), mean=[0.5, 0.5], std=[0.25, 0.5])
    >>> m(torch.tensor([[1.0, 1.0]]))
    tensor([[2., 1.]])
    """

    def __init__(self, model: torch.nn.Module, mean: Any, std: Any) -> None:
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32)
        std_t = torch.as_tensor(std, dtype=torch.float32)
        if not bool(torch.all(std_t > 0)):
            raise DataError(f"std must be positive everywhere; got {std_t.tolist()}.")
        self.model = model
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2) if self.mean.dim() == 1 else self.mean.shape
        return self.model((x - self.mean.reshape(shape)) / self.std.reshape(shape))


def resolve_device(device: str | torch.device | None, model: Any = None) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; ``None`` is the model's own device."""
    if device is None:
        return model_device(model)
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_device(model: Any, default: Any = "cpu") -> Any:
    """Device of the model's first parameter or buffer; ``default`` for a model without any."""
    for get in ("parameters", "buffers"):
        for tensor in getattr(model, get, lambda: iter(()))():
            return tensor.device
    return None if default is None else torch.device(default)


def as_inputs(x: Any, device: torch.device) -> torch.Tensor:
    """A finite, non-empty float32 tensor of shape ``(N, ...)`` on ``device``."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.dim() < 2 or t.shape[0] == 0 or t[0].numel() == 0:
        raise DataError(
            f"x must have shape (N, features...) with N >= 1; got shape {tuple(t.shape)}. "
            "Pass one row per input, e.g. x.reshape(1, -1) for a single input."
        )
    t = t.detach().to(device=device, dtype=torch.float32)
    if not _finite(t):
        raise DataError("x contains NaN or inf values; drop or impute those rows first.")
    return t


def _finite(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is finite: one pass and one sync (NaN and inf reach the
    minimum or the maximum), cheaper than ``isfinite(t).all()`` on small attack batches."""
    lo, hi = torch.aminmax(t)
    return math.isfinite(float(lo)) and math.isfinite(float(hi))


def check_bounds(x: torch.Tensor, bounds: Bounds, tol: float = 1e-6) -> None:
    """Raise :class:`InputRangeError` when ``x`` leaves the declared range ``bounds``."""
    if bounds is None:
        return
    if len(bounds) != 2 or not all(math.isfinite(b) for b in bounds) or bounds[0] >= bounds[1]:
        raise DataError(f"bounds must be (low, high) with low < high, or None; got {bounds}.")
    lo, hi = float(x.min()), float(x.max())
    if lo < bounds[0] - tol or hi > bounds[1] + tol:
        raise InputRangeError(
            f"x has values in [{lo:g}, {hi:g}], outside the declared range "
            f"[{bounds[0]:g}, {bounds[1]:g}]. Declare bounds=(low, high) that contain the data "
            "(e.g. (0, 255) for raw pixels), or bounds=None for unbounded features."
        )


def as_labels(y: Any, n: int, n_classes: int, device: torch.device) -> torch.Tensor:
    """Integer labels of shape ``(n,)`` in ``[0, n_classes)`` as an int64 tensor."""
    t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if t.shape != (n,):
        raise LabelError(f"y must have shape ({n},), one label per input; got {tuple(t.shape)}.")
    if t.is_floating_point():
        if not bool(torch.all(t == torch.round(t))):
            raise LabelError("y must hold integer class indices; got non-integer values.")
    elif t.dtype == torch.bool or t.is_complex():
        raise LabelError(f"y must hold integer class indices; got dtype {t.dtype}.")
    t = t.to(device=device, dtype=torch.int64)
    if n and (int(t.min()) < 0 or int(t.max()) >= n_classes):
        raise LabelError(
            f"y has labels in [{int(t.min())}, {int(t.max())}] but the model outputs "
            f"{n_classes} classes: labels must lie in [0, {n_classes - 1}]."
        )
    return t


def check_logits(z: Any, n: int) -> tuple[str, ...]:
    """Validate a model output for ``n`` inputs; return warnings about its validity.

    Outputs must be a finite ``(n, n_classes)`` float tensor with ``n_classes >= 2``. Rows in
    ``[0, 1]`` that sum to 1 look like probabilities: softmax saturates, which weakens
    gradient attacks (Carlini & Wagner 2017; Croce & Hein 2020), so a warning is returned.

    Examples
    --------
    >>> check_logits(torch.tensor([[0.2, 0.8], [1.0, 0.0]]), 2)[0][:40]
    'model outputs look like probabilities (r'
    >>> check_logits(torch.tensor([[2.0, -1.0]]), 1)
    ()
    """
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[0] != n or z.shape[1] < 2:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ModelOutputError(
            f"The model must return a tensor of shape (N, n_classes) with n_classes >= 2, one "
            f"row of logits per input; for {n} inputs it returned {shape}. Wrap it so that it "
            "returns class scores, e.g. lambda x: model(x).logits."
        )
    z = z.detach().float()
    lo, hi = (float(v) for v in torch.aminmax(z))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ModelOutputError("The model returned NaN or inf scores on clean inputs.")
    if lo >= 0 and hi <= 1 and bool(torch.allclose(z.sum(1), z.new_ones(n))):
        return (
            "model outputs look like probabilities (rows in [0, 1] summing to 1): softmax "
            "saturation weakens gradient attacks, so robust accuracy is overestimated; score the "
            "model without its final softmax (return logits).",
        )
    return ()


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[tuple[str, ...]]:
    """Run a block with every submodule in eval mode, then restore each one's own mode.

    Yields a one-note tuple when the model was in train mode (empty otherwise): dropout and
    batch-norm batch statistics would make attacks score a random, different model.
    """
    modules: Sequence[Any] = list(model.modules()) if hasattr(model, "modules") else []
    modes = [(m, m.training) for m in modules]
    note: tuple[str, ...] = ()
    if any(training for _, training in modes):
        note = ("model was in train mode: scored in eval mode, and its mode was restored",)
        for m, _ in modes:
            m.training = False
    try:
        yield note
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def placed(model: Any, device: torch.device) -> Iterator[None]:
    """Run a block with the module on ``device``, then move it back to where it was."""
    home = model_device(model, None)
    move = home is not None and home != device and hasattr(model, "to")
    if move:
        model.to(device)
    try:
        yield
    finally:
        if move:
            model.to(home)


class ChannelsLast:
    """A block run with the model's 4-D weights in channels-last (NHWC) memory, then restored.

    Convolutions on NHWC tensors are faster than on NCHW ones on CPU (oneDNN) and on CUDA
    tensor cores (cuDNN): on this project's 2-core CPU, a ResNet-18 forward-backward pass on
    32x32 images took 4% less time at 8 images and 14% less at 32, and on an H100 PGD-20 on
    1,024 such images took 11% less (fp32) and 10% less (bf16). Only strides change: each
    weight keeps its values, and a convolution's result is the same up to the order of its
    floating-point sums. ``wanted=None`` (auto) switches when ``x`` has 4 dimensions and the
    model holds a 4-D floating weight; ``True`` insists (``x`` must have 4 dimensions);
    ``False`` leaves the model alone. On exit, or at :meth:`restore`, every switched tensor
    gets back its own storage. Like :func:`eval_mode` and :func:`placed`, it borrows the model
    for the block: no other thread may run the same model meanwhile (the weights' strides
    change under it), so a service that scores a model it also serves scores its own copy.

    Examples
    --------
    >>> conv = torch.nn.Conv2d(3, 4, 3)
    >>> with ChannelsLast(conv, torch.zeros(1, 3, 5, 5), None) as layout:
    ...     layout.active, conv.weight.is_contiguous(memory_format=torch.channels_last)
    (True, True)
    >>> conv.weight.is_contiguous()
    True
    """

    def __init__(self, model: Any, x: torch.Tensor, wanted: bool | None) -> None:
        if wanted is True and x.dim() != 4:
            raise ParameterError(
                f"channels_last=True needs inputs of shape (N, C, H, W); got shape "
                f"{tuple(x.shape)}. Pass channels_last=None (auto) or False."
            )
        weights = []
        if wanted is not False and x.dim() == 4:
            for get in ("parameters", "buffers"):
                for t in getattr(model, get, lambda: iter(()))():
                    if t.dim() == 4 and t.is_floating_point():
                        weights.append(t)
        self.active = bool(weights)
        self._insisted = wanted is True
        # parameters() and buffers() give a tied tensor once
        switch = [t for t in weights if not t.is_contiguous(memory_format=torch.channels_last)]
        self._saved = [(t, t.data) for t in switch]

    def __enter__(self) -> ChannelsLast:
        for t, data in self._saved:
            t.data = data.contiguous(memory_format=torch.channels_last)
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        """Give every switched tensor back its own storage (idempotent)."""
        for t, data in self._saved:
            t.data = data
        self._saved, self.active = [], False

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the layout the model now runs fastest on."""
        return x.contiguous(memory_format=torch.channels_last) if self.active else x

    def first_call(
        self, forward: Callable[[torch.Tensor], Any], x: torch.Tensor
    ) -> tuple[Any, torch.Tensor]:
        """``forward`` on ``x`` in channels-last, and ``x`` as it went in; when that fails and
        channels-last was not insisted on, the model's own layout for the rest of the block
        (some models need it: a ``.view()`` of a weight, or of a feature map larger than 1x1).
        """
        x_in = self.inputs(x)
        try:
            return forward(x_in), x_in
        except RuntimeError:
            if not self.active or self._insisted:
                raise
            self.restore()
            return forward(x), x
