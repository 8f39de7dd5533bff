"""The stateful detector's saved state: one ``.npz`` file, written atomically, read without
pickle.

The file holds the index's arrays and a ``meta`` entry, the UTF-8 bytes of a JSON object
(format version, parameters, clients as keyed digests, counts). It is written to a temporary
file beside the target and renamed over it, so that a reader finds the old state or the new
one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from detectors.exceptions import DataError

__all__ = ["STATE_FORMAT_VERSION", "read_state", "write_state"]

#: 2: the index's table of buckets is saved by its rows in use (1 saved it whole).
STATE_FORMAT_VERSION = 2
#: The versions :func:`read_state` reads.
READABLE_VERSIONS = (1, 2)


def write_state(path: str | Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and the JSON-ready ``meta`` to ``path`` (``.npz``), atomically.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "state.npz"
    >>> _ = write_state(target, {"n": 1}, {"a": np.arange(3)})
    >>> meta, arrays = read_state(target)
    >>> meta["n"], meta["format_version"], arrays["a"].tolist()
    (1, 2, [0, 1, 2])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format_version": STATE_FORMAT_VERSION, **meta}).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.frombuffer(text, dtype=np.uint8), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_state(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The ``meta`` object and the arrays of a file written by :func:`write_state`.

    Raises
    ------
    DataError
        If the file is not such a state, or of another format version.
    OSError
        If it cannot be read.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        meta = json.loads(arrays.pop("meta").tobytes())
    except (KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path} is not a saved stateful-detector state: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format_version") not in READABLE_VERSIONS:
        version = meta.get("format_version") if isinstance(meta, dict) else None
        raise DataError(
            f"{path} holds a state of format version {version!r}; this version of "
            f"robustwatch reads {', '.join(map(str, READABLE_VERSIONS))}."
        )
    return meta, arrays
