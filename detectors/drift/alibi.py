"""Drift detectors saved by alibi-detect, behind robustwatch's drift contract: :func:`load_alibi`.

Teams that already calibrated detectors with alibi-detect bring them as they are: a directory
written by ``alibi_detect.saving.save_detector`` loads as an :class:`AlibiDrift` (batch,
``test(x) -> DriftResult``) or an :class:`AlibiDriftOnline` (``update(x) -> OnlineDriftResult``),
which the agent runs like its own detectors. alibi-detect's answer is kept as it is (its
``is_drift``, p-values, distances, thresholds); only its layout changes.

alibi-detect is an optional extra, never a core dependency: from 0.11.5 on it is under the
Business Source License, and it pins numpy < 2. Install it with ``pip install
'robustwatch[alibi]'`` in an environment with numpy < 2. It is imported here only, and only
when a detector is loaded: importing :mod:`detectors.drift` never needs it.

Trust: the directory is loaded by alibi-detect's own loader (``load_detector`` on its
``config.toml``), which may unpickle what alibi-detect pickled (a ``preprocess_fn`` saved with
dill, a model saved with ``torch.save``) and so run code. Load only directories you trust, as
you would a model file. The legacy format (``meta.dill`` without ``config.toml``) is refused.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from detectors.drift.alibi_adapters import ONLINE, AlibiDrift, AlibiDriftOnline, check_kind
from detectors.exceptions import DataError

__all__ = ["AlibiDrift", "AlibiDriftOnline", "load_alibi", "wrap_alibi"]

_INSTALL = (
    "pip install 'robustwatch[alibi]' in an environment with numpy<2 (alibi-detect pins "
    "numpy<2 and is under the Business Source License, so robustwatch never installs it itself)"
)


def load_alibi(directory: str | Path) -> AlibiDrift | AlibiDriftOnline:
    """Load a detector written by ``alibi_detect.saving.save_detector`` into ``directory``.

    Its kind is read from ``config.toml`` first, so that an unsupported one is refused before
    alibi-detect loads anything. Load only directories you trust (see the module's notes).

    Raises
    ------
    DataError
        No ``config.toml`` in ``directory``, a kind this adapter does not map, or alibi-detect
        failed to load it.
    ImportError
        alibi-detect is not installed; the message says how to install it.

    Examples
    --------
    >>> from alibi_detect.cd import KSDrift                     # doctest: +SKIP
    >>> from alibi_detect.saving import save_detector           # doctest: +SKIP
    >>> save_detector(KSDrift(x_ref, p_val=0.05), "ks-detector")  # doctest: +SKIP
    >>> load_alibi("ks-detector").test(x_clean).is_drift      # doctest: +SKIP
    False
    """
    path = Path(directory)
    config = path / "config.toml"
    if not config.is_file():
        raise DataError(
            f"{path} holds no config.toml: expected a directory written by "
            "alibi_detect.saving.save_detector (the legacy .dill format is not loaded)."
        )
    try:
        kind = tomllib.loads(config.read_text())["name"]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise DataError(f"{config} is not an alibi-detect detector config: {exc!r}") from None
    check_kind(kind, str(config))
    load_detector = _alibi_saving().load_detector
    try:
        detector = load_detector(config)
    except Exception as exc:  # whatever alibi-detect raises, said with the directory
        raise DataError(f"alibi-detect could not load {path}: {exc}") from exc
    return wrap_alibi(detector, source=str(path))


def wrap_alibi(detector: Any, source: str | None = None) -> AlibiDrift | AlibiDriftOnline:
    """Wrap an alibi-detect drift detector already in memory (``source`` names it in reprs).

    Raises
    ------
    DataError
        A kind this adapter does not map.
    """
    cls = AlibiDriftOnline if type(detector).__name__ in ONLINE else AlibiDrift
    return cls(detector, source)


def _alibi_saving() -> Any:
    try:
        import alibi_detect.saving as saving
    except ImportError as exc:
        raise ImportError(
            f"Loading an alibi-detect detector needs alibi-detect (numpy {np.__version__} "
            f"here): {_INSTALL}. Import failed with: {exc}"
        ) from exc
    return saving
