"""Drift detectors as the agent runs them: built from ``detectors.drift``, fitted on the
reference, fed the pipeline's micro-batches, reporting to the metrics.

Each configured detector becomes one :class:`DriftFeed`, the pipeline's
:class:`~agent.pipeline.StreamDetector`: it picks what the detector reads (the configured
input columns, or the events' outputs), captures the reference from the first events when
``reference.capture_first`` asks for it, and hands the rows to a
:class:`~agent.pipeline.WindowedDrift` (batch detectors) or :class:`~agent.pipeline.OnlineDrift`
(online ones). A detector saved by alibi-detect (type ``alibi``) is loaded, never fitted: it
brings its own reference, and is batch or online as it was saved.

Bad input is never turned into a p-value. Events with another input feature count than the
reference are refused (the decoder dead-letters them when the reference came from a file; a
capturing detector fails their batch instead). An output detector passes by, and counts, the
events without outputs, with outputs of another shape than the reference's, or with values it
cannot read (NaN or inf, probabilities out of [0, 1] or not summing to 1, labels that are not
non-negative integers). A batch or window a detector fails on (a chi-squared category the
reference never had, with ``unseen: error``) flags its events ``error:<name>`` and counts in
``robustwatch_detector_errors_total``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.config import AgentConfig, DriftConfig
from agent.config.drift_config import DEFAULT_WINDOW
from agent.exceptions import StartupError
from agent.metrics import SKIP_REASONS, AgentMetrics
from agent.pipeline import NO_VERDICT, OnlineDrift, StreamDetector, Verdict, WindowedDrift
from detectors.drift import (
    ChiSquareDrift,
    ClassDistributionDrift,
    ConfidenceDrift,
    CVMDrift,
    CVMDriftOnline,
    EntropyDrift,
    JensenShannonDrift,
    KSDrift,
    LSDDDrift,
    MMDDrift,
    MMDDriftOnline,
    PSIDrift,
    RandomProjection,
    TabularDrift,
    UntrainedEncoder,
    WassersteinDrift,
)
from detectors.drift.alibi import AlibiDriftOnline, load_alibi
from detectors.drift.kernels import resolve_device
from detectors.exceptions import DataError

log = logging.getLogger(__name__)

#: Outputs whose row sum is this far from 1 are not probabilities (as in detectors.drift).
_SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Reference:
    """Reference data read from ``reference.path``: inputs, and outputs and labels when the
    file has them.

    ``x`` has shape (n, n_features), flattened; ``row_shape`` is the shape of one input as
    stored; ``outputs`` (n, n_outputs) and ``y`` (n,) integer labels, or None.
    """

    x: np.ndarray
    outputs: np.ndarray | None
    path: Path
    row_shape: tuple[int, ...] = ()
    y: np.ndarray | None = None


def read_reference(path: Path) -> Reference:
    """Read ``.npy`` (inputs) or ``.npz`` (``x``, optional ``outputs`` and ``y``) without
    unpickling."""
    outputs = y = None
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if "x" not in data:
                    raise StartupError(f"reference file {path} has no array named 'x'")
                x = data["x"]
                if "outputs" in data:
                    outputs = data["outputs"]
                if "y" in data:
                    y = data["y"].astype(np.int64)
        else:
            x = np.load(path, allow_pickle=False)
        x = np.asarray(x, dtype=np.float64)
        if outputs is not None:
            outputs = np.asarray(outputs, dtype=np.float64)
    except (OSError, ValueError, TypeError) as exc:
        raise StartupError(f"cannot read the reference file {path}: {exc}") from exc
    row_shape = tuple(x.shape[1:]) or (1,)
    x = x.reshape(len(x), -1)
    if outputs is not None:
        if len(outputs) != len(x):
            raise StartupError(
                f"reference file {path} holds {len(x)} rows of 'x' but {len(outputs)} of "
                "'outputs'; they must pair up"
            )
        outputs = outputs.reshape(len(outputs), -1)
    return Reference(x, outputs, path, row_shape, y)


def _preprocess(spec: DriftConfig) -> RandomProjection | UntrainedEncoder | None:
    p = spec.preprocessing
    if p is None:
        return None
    if p.type == "random-projection":
        return RandomProjection(n_components=p.dim, seed=p.seed)
    return UntrainedEncoder(n_components=p.dim, hidden=p.hidden, seed=p.seed)


def _kernel_test(cls: type) -> Callable[[DriftConfig], Any]:
    return lambda s: cls(
        p_val=s.p_val, n_permutations=s.n_permutations, preprocess=_preprocess(s),
        device=s.device, seed=s.seed,
    )  # fmt: skip


#: Each type's detector, configured (not fitted) from its spec.
FACTORIES: dict[str, Callable[[DriftConfig], Any]] = {
    "ks": lambda s: KSDrift(p_val=s.p_val, correction=s.correction),
    "cvm": lambda s: CVMDrift(p_val=s.p_val, correction=s.correction),
    "chisquare": lambda s: ChiSquareDrift(p_val=s.p_val, correction=s.correction, unseen=s.unseen),
    "mmd": _kernel_test(MMDDrift),
    "lsdd": _kernel_test(LSDDDrift),
    "psi": lambda s: PSIDrift(threshold=s.threshold),
    "jensen-shannon": lambda s: JensenShannonDrift(threshold=s.threshold),
    "wasserstein": lambda s: WassersteinDrift(threshold=s.threshold),
    "mmd-online": lambda s: MMDDriftOnline(
        ert=s.ert, window_size=s.window_size[0], n_bootstraps=s.n_bootstraps,
        preprocess=_preprocess(s), seed=s.seed,
    ),
    "cvm-online": lambda s: CVMDriftOnline(
        ert=s.ert, window_sizes=s.window_size, n_bootstraps=s.n_bootstraps,
        seed=s.seed,
    ),
    "output-class": lambda s: ClassDistributionDrift(p_val=s.p_val, outputs=s.outputs),
    "output-confidence": lambda s: ConfidenceDrift(p_val=s.p_val, outputs=s.outputs),
    "output-entropy": lambda s: EntropyDrift(p_val=s.p_val, outputs=s.outputs),
    "tabular": lambda s: TabularDrift(
        schema=s.column_kinds, p_val=s.p_val, correction=s.correction, numeric_test=s.numeric_test,
        unseen=s.unseen,
    ),
    "alibi": lambda s: load_alibi(s.path),
}  # fmt: skip


def _min_reference_rows(detector: Any) -> int:
    """Reference rows a detector needs to be fitted."""
    if isinstance(detector, MMDDriftOnline):
        return 2 * detector.window_size + 1
    if isinstance(detector, CVMDriftOnline):
        return max(detector.window_sizes)
    return 2


class DriftFeed:
    """One configured drift detector, as the pipeline runs it.

    Parameters
    ----------
    stream : WindowedDrift or OnlineDrift
        The adapter around the detector; fitted already unless ``capture`` is set.
    reads : {"inputs", "outputs"}
        What the detector reads of each event.
    key : str
        The config key path of the detector (``detectors.drift.2``), for messages.
    columns : sequence of int, optional
        The input columns to test (all without).
    width : int, optional
        Values per row of what the detector reads (input features, or outputs) in the
        reference; with ``capture``, the first events set it.
    capture : int, optional
        Capture the first ``capture`` rows the detector reads as its reference, then fit it.
    outputs : {"probabilities", "logits", "labels"}
        What outputs hold, for an output detector.
    on_error, on_skip : callable
        Called with the detector's name when a call fails, and with the name, a reason and a
        count when events are passed by.
    """

    def __init__(
        self,
        stream: WindowedDrift | OnlineDrift,
        *,
        reads: str,
        key: str,
        columns: Sequence[int] | None = None,
        width: int | None = None,
        capture: int | None = None,
        outputs: str = "probabilities",
        on_error: Callable[[str], None] = lambda name: None,
        on_skip: Callable[[str, str, int], None] = lambda name, reason, n: None,
    ):
        self.stream = stream
        self.name = stream.name
        self.reads = reads
        self.key = key
        self._columns = None if columns is None else np.asarray(columns, dtype=np.intp)
        self._width = width
        self._capture = capture
        self._captured: list[np.ndarray] = []
        self._n_captured = 0
        self._outputs = outputs
        self._on_error = on_error
        self._on_skip = on_skip
        self._failure: str | None = None
        self.fitted = capture is None

    def process(self, data: Any) -> list[Verdict]:
        try:
            if self.reads == "outputs":
                return self._process_outputs(data)
            return self._feed(self._select(data))
        except Exception:
            self._on_error(self.name)
            raise

    # -- inputs ---------------------------------------------------------------------------

    def _select(self, x: np.ndarray) -> np.ndarray:
        if self._width is None:
            self._width = x.shape[1]  # capturing: the first events fix the feature count
        if x.shape[1] != self._width:
            raise DataError(
                f"events with {x.shape[1]} input features reached {self.name}, whose reference "
                f"has {self._width}"
            )
        if self._columns is None:
            return x
        if self._columns.max() >= self._width:
            raise DataError(
                f"{self.key}.features names column {int(self._columns.max())}, but events have "
                f"{self._width} input features"
            )
        return x[:, self._columns]

    # -- outputs --------------------------------------------------------------------------

    def _process_outputs(self, outputs: Sequence[np.ndarray | None]) -> list[Verdict]:
        y, index = self._readable_outputs(outputs)
        verdicts = self._feed(y)
        if index is None:
            return verdicts
        out = [NO_VERDICT] * len(outputs)
        for i, verdict in zip(index.tolist(), verdicts, strict=True):
            out[i] = verdict
        return out

    def _readable_outputs(
        self, outputs: Sequence[np.ndarray | None]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows of outputs the detector can read, and their event indices (None: all)."""
        width = self._width
        if width is None:  # capturing: the first event with outputs fixes their shape
            width = next((o.size for o in outputs if o is not None), None)
            if width is None:
                self._on_skip(self.name, "no-outputs", len(outputs))
                return np.empty((0, 0)), np.empty(0, dtype=np.intp)
            self._width = width
        index = None
        try:
            y = np.stack(outputs)  # the common case: every event has outputs of one shape
            if y.ndim != 2 or y.shape[1] != width:
                raise ValueError
        except (ValueError, TypeError):
            present = [i for i, o in enumerate(outputs) if o is not None]
            kept = [i for i in present if outputs[i].size == width]
            self._on_skip(self.name, "no-outputs", len(outputs) - len(present))
            self._on_skip(self.name, "bad-shape", len(present) - len(kept))
            index = np.asarray(kept, dtype=np.intp)
            y = np.stack([outputs[i] for i in kept]) if kept else np.empty((0, width))
        y = y.reshape(len(y), width).astype(np.float64, copy=False)
        ok = self._readable(y)
        if not ok.all():
            self._on_skip(self.name, "bad-value", int((~ok).sum()))
            index = np.flatnonzero(ok) if index is None else index[ok]
            y = y[ok]
        return y, index

    def _readable(self, y: np.ndarray) -> np.ndarray:
        ok = np.isfinite(y).all(1)
        if self._outputs == "probabilities":
            ok &= ((y >= 0) & (y <= 1)).all(1) & (np.abs(y.sum(1) - 1) <= _SUM_TOLERANCE)
        elif self._outputs == "labels":
            ok &= ((y >= 0) & (y == np.round(y))).all(1)
        return ok

    # -- both -----------------------------------------------------------------------------

    def _feed(self, x: np.ndarray) -> list[Verdict]:
        if self._failure is not None:
            raise DataError(self._failure)
        head: list[Verdict] = []
        if not self.fitted:
            k = min(self._capture - self._n_captured, len(x))
            if k:
                self._captured.append(x[:k].copy())
                self._n_captured += k
            head, x = [NO_VERDICT] * k, x[k:]
            if self._n_captured == self._capture:
                self._fit_captured()
        if len(x) == 0:
            return head
        return head + self.stream.process(x)

    def _fit_captured(self) -> None:
        x_ref, self._captured = np.concatenate(self._captured), []
        try:
            self.stream.detector.fit(x_ref)
        except Exception as exc:
            self._failure = (
                f"{self.key} ({self.name}) could not be fitted on the reference captured from "
                f"the first {len(x_ref)} events: {exc}"
            )
            log.error("%s; it flags every event error:%s until restarted", self._failure, self.name)
            raise DataError(self._failure) from exc
        self.fitted = True
        log.info("%s fitted on the first %d events it read", self.name, len(x_ref))


def build_drift_detectors(
    config: AgentConfig, metrics: AgentMetrics
) -> tuple[list[StreamDetector], int | None]:
    """The drift feeds ``detectors.drift`` asks for, and the reference's feature count.

    Raises
    ------
    StartupError
        The reference cannot be read, lacks what a detector reads (outputs), is too small, or
        a detector cannot be built or fitted on it; a ``features`` index beyond the
        reference's columns; ``device: cuda`` without CUDA. The message names the key.
    """
    drift = config.detectors.drift
    specs = drift if isinstance(drift, tuple) else (drift,)
    keys = (
        [f"detectors.drift.{i}" for i in range(len(specs))]
        if isinstance(drift, tuple)
        else ["detectors.drift"]
    )
    enabled = [(spec, key) for spec, key in zip(specs, keys, strict=True) if spec.enabled]
    ref = config.reference
    if ref.path is None and ref.capture_first is None:  # only the older, single-mapping form
        if any(spec.needs_reference for spec, _ in enabled):
            log.warning("no reference.path configured: drift detection is off")
        enabled = [(spec, key) for spec, key in enabled if not spec.needs_reference]
    if not enabled:
        return [], None
    reference = read_reference(Path(ref.path)) if ref.path is not None else None
    feeds: list[StreamDetector] = [
        _feed(spec, key, reference, ref.capture_first, metrics, config.metrics.max_feature_series)
        for spec, key in enabled
    ]
    source = f"the first {ref.capture_first} events" if ref.capture_first else "their own"
    source = f"{ref.path}" if reference is not None else source
    log.info("drift detectors %s, reference %s", ", ".join(f.name for f in feeds), source)
    return feeds, None if reference is None else reference.x.shape[1]


def _feed(
    spec: DriftConfig,
    key: str,
    reference: Reference | None,
    capture: int | None,
    metrics: AgentMetrics,
    max_feature_series: int,
) -> DriftFeed:
    try:
        detector = FACTORIES[spec.type](spec)
        if getattr(detector, "device", None) == "cuda":
            resolve_device("cuda")
    except (ImportError, ValueError, RuntimeError) as exc:  # ImportError: no alibi-detect
        raise StartupError(f"cannot build {key} ({spec.name}): {exc}") from exc
    online, window = spec.online or isinstance(detector, AlibiDriftOnline), spec.window
    n_features = width = None
    if not spec.needs_reference:
        window = _alibi_window(detector, spec, key, online)
        if reference is not None:
            n_features = width = _check_alibi_width(detector, spec, key, reference)
        capture = None
    elif reference is not None:
        n_features = reference.x.shape[1]
        width = _fit_on_file(detector, spec, key, reference)
    elif capture < _min_reference_rows(detector):
        raise StartupError(
            f"reference.capture_first={capture} is too few for {key} ({spec.name}): it needs "
            f"at least {_min_reference_rows(detector)} reference events"
        )
    if spec.reads == "inputs" and spec.features is not None:
        labels = [str(c) for c in spec.features]
    else:
        labels = [str(c) for c in range(n_features or 0)]
    per_feature = spec.reads == "inputs" and spec.preprocessing is None and not online

    def on_result(name: str, r: Any) -> None:
        fp = getattr(r, "feature_p_values", None)
        if not per_feature or fp is None or len(fp) > max_feature_series:
            fp = None
        elif len(labels) != len(fp):  # capturing without features: labels are set now
            labels[:] = [str(c) for c in range(len(fp))]
        metrics.set_drift(name, r.is_drift, getattr(r, "p_value", None), r.statistic, fp, labels)

    if online:
        stream: WindowedDrift | OnlineDrift = OnlineDrift(detector, spec.name, on_result)
    else:
        stream = WindowedDrift(detector, spec.name, window, on_result)
    metrics.watch_detector(spec.name, SKIP_REASONS if spec.reads == "outputs" else ())
    return DriftFeed(
        stream,
        reads=spec.reads,
        key=key,
        columns=spec.features,
        width=width,
        capture=None if reference is not None else capture,  # None for alibi too
        outputs=spec.outputs or "probabilities",
        on_error=metrics.count_detector_error,
        on_skip=metrics.count_drift_skipped,
    )


def _alibi_window(detector: Any, spec: DriftConfig, key: str, online: bool) -> int | None:
    """The test window of a batch alibi detector (default 200); online ones take none."""
    if not online:
        return spec.window or DEFAULT_WINDOW
    if spec.window is not None:
        raise StartupError(
            f"{key}.window: {spec.path} holds alibi-detect's online {detector.kind}, which takes "
            "one event per step and no window; remove window"
        )
    return None


def _check_alibi_width(detector: Any, spec: DriftConfig, key: str, reference: Reference) -> int:
    """Check that an alibi detector reads what the reference's rows give; return their width."""
    width = reference.x.shape[1]
    if spec.features is not None and max(spec.features) >= width:
        raise StartupError(
            f"{key}.features names column {max(spec.features)}, but the reference "
            f"{reference.path} has {width} input features (columns 0 to {width - 1})"
        )
    given = width if spec.features is None else len(spec.features)
    if detector.n_features_in_ is not None and given != detector.n_features_in_:
        what = "features lists" if spec.features is not None else "the reference has"
        raise StartupError(
            f"{key} ({spec.name}): alibi-detect's {detector.kind} at {spec.path} takes "
            f"{detector.n_features_in_} values per event, but {what} {given}"
        )
    return width


def _fit_on_file(detector: Any, spec: DriftConfig, key: str, reference: Reference) -> int:
    """Fit ``detector`` on what it reads of the reference; return that data's width."""
    data = reference.x
    if spec.reads == "outputs":
        if reference.outputs is None:
            raise StartupError(
                f"{key} ({spec.name}) reads the events' outputs, but the reference file "
                f"{reference.path} has none: add an array named 'outputs' to the .npz"
            )
        data = reference.outputs
    width = data.shape[1]
    if spec.features is not None:
        if max(spec.features) >= data.shape[1]:
            raise StartupError(
                f"{key}.features names column {max(spec.features)}, but the reference "
                f"{reference.path} has {data.shape[1]} input features (columns 0 to "
                f"{data.shape[1] - 1})"
            )
        data = data[:, list(spec.features)]
    try:
        detector.fit(data)
    except (ValueError, RuntimeError) as exc:
        raise StartupError(
            f"cannot fit {key} ({spec.name}) on the reference {reference.path}: {exc}"
        ) from exc
    return width
