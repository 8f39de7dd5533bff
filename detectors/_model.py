"""Running the monitored model for a detector: batched, on the model's device, in eval mode.

Detectors that need the model (feature squeezing, noise consistency, Mahalanobis on a hidden
layer) never move it: inputs go to the device of its first parameter or buffer, in its
floating dtype, ``batch_size`` rows at a time, without gradients. The model's train/eval mode
is restored afterwards. Whatever the model raises on a batch, and outputs that are not one
finite row of class scores per input, become a :class:`~detectors.exceptions.ModelError`
that names the detector and the batch.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator

import numpy as np
import torch

from detectors.exceptions import DataError, ModelError

__all__ = ["capture", "fingerprint", "logits", "model_device", "run_batched"]


def model_device(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of the model's first parameter or buffer (CPU, float32 if
    it has none).

    >>> model_device(torch.nn.Linear(2, 2))
    (device(type='cpu'), torch.float32)
    """
    for tensor in (*model.parameters(), *model.buffers()):
        dtype = tensor.dtype if tensor.is_floating_point() else torch.float32
        return tensor.device, dtype
    return torch.device("cpu"), torch.float32


@contextlib.contextmanager
def _evaluating(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def run_batched(
    model: torch.nn.Module,
    x: np.ndarray,
    fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    batch_size: int,
) -> np.ndarray:
    """``fn`` on ``x`` of shape (n, ...), ``batch_size`` rows at a time on the model's device.

    ``fn`` maps a batch (a tensor on the device) to one value or row per input; the results
    are concatenated into a float64 array on the CPU. Runs in eval mode without gradients.

    >>> model = torch.nn.Linear(3, 2)
    >>> run_batched(model, np.ones((5, 3)), lambda b: b.sum(1), batch_size=2)
    array([3., 3., 3., 3., 3.])
    """
    device, dtype = model_device(model)
    out = []
    with _evaluating(model), torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            batch = torch.as_tensor(x[start : start + batch_size]).to(device, dtype)
            out.append(fn(batch).to("cpu", torch.float64))
    return torch.cat(out).numpy()


def logits(model: torch.nn.Module, batch: torch.Tensor, caller: str) -> torch.Tensor:
    """The model's output on ``batch``, checked to be finite class scores of shape (n, K >= 2).

    Raises
    ------
    ModelError
        If the model raises, or returns anything else.
    """
    try:
        z = model(batch)
    except Exception as exc:  # a user's model may raise anything; the agent needs one type
        raise ModelError(
            f"{caller}: the model failed on a batch of shape {tuple(batch.shape)}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[0] != batch.shape[0]:
        got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ModelError(
            f"{caller} needs the model to return logits of shape (n, n_classes); for a batch "
            f"of {batch.shape[0]} it returned {got}."
        )
    if z.shape[1] < 2 or not bool(torch.isfinite(z).all()):
        raise ModelError(
            f"{caller} needs finite logits for at least 2 classes; the model returned "
            f"{'NaN or inf' if z.shape[1] >= 2 else f'{z.shape[1]} column'}."
        )
    return z.float()


def capture(
    model: torch.nn.Module, layer: str, batch: torch.Tensor, caller: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The flattened output of module ``layer`` and the logits, from one forward pass."""
    modules = dict(model.named_modules())
    if layer not in modules:
        names = sorted(m for m in modules if m)
        raise DataError(f"{caller}: the model has no module named {layer!r}; it has {names}.")
    captured: list[torch.Tensor] = []
    hook = modules[layer].register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        z = logits(model, batch, caller)
    finally:
        hook.remove()
    if len(captured) != 1 or not isinstance(captured[0], torch.Tensor):
        raise ModelError(
            f"{caller}: module {layer!r} must run once per forward pass and "
            f"return a tensor; it ran {len(captured)} times."
        )
    return captured[0].reshape(batch.shape[0], -1).float(), z


def fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers, to refuse loading with another model.

    >>> len(fingerprint(torch.nn.Linear(2, 2)))
    64
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(
            tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()
