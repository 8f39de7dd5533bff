"""The monitored model, for the detectors that run it: loaded from ``model.path`` and placed on
``model.device``."""

from __future__ import annotations

import torch

from agent.config.sections import ModelConfig
from agent.exceptions import StartupError
from scoring import load_model


def load_monitored_model(config: ModelConfig, needed_by: str) -> torch.nn.Module:
    """The model of ``model.path`` in eval mode on ``model.device`` (``auto``: CUDA if present).

    Raises
    ------
    StartupError
        No ``model.path`` (naming ``needed_by``, the detector that needs it), CUDA asked for
        and absent, or a file :func:`scoring.load_model` refuses.
    """
    if config.path is None:
        raise StartupError(f"{needed_by} runs the model: set model.path")
    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise StartupError("model.device is cuda, but CUDA is not available on this machine")
    try:
        model = load_model(config.path, map_location=device)
    except Exception as exc:
        raise StartupError(f"cannot load model.path {config.path}: {exc}") from exc
    return model.to(device).eval()
