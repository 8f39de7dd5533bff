"""Per-input and stateful detectors as the agent runs them: built from ``detectors.adversarial``,
``detectors.outlier`` and ``detectors.stateful``, fitted on the reference, fed the pipeline's
micro-batches, reporting to the metrics.

Each per-input detector becomes one :class:`InputDetectorFeed`, a
:class:`~agent.pipeline.StreamDetector`: it scores every event of a batch, flags those above
the detector's calibrated threshold ``<family>:<name>`` and scores each with the detector's
raw score. The stateful detector becomes a :class:`QueryAttackFeed` (flag ``query-attack``,
score: the distinct earlier queries of the same client matched) and a :class:`GlobalQueryFeed`
(flag ``query-attack:global``, score: those of any client).

Bad input never stops the agent and never gets a silent score. An event whose input does not
fit the model (another number of values than ``model.input_shape``), has NaN or inf, or lacks
the outputs an output detector reads is flagged ``error:<name>`` with the reason in the result's
``errors``. When the model fails on a batch, each of its events is scored alone, so that only
the events the model fails on are flagged ``error:<name>``. Errors count in
``robustwatch_flags_total{detector="error:<name>"}``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent.config import AgentConfig
from agent.config.input_detector_config import InputDetectorConfig
from agent.drift import Reference, read_reference
from agent.exceptions import StartupError
from agent.metrics import AgentMetrics
from agent.model import load_monitored_model
from agent.pipeline import NO_VERDICT, StreamDetector, Verdict, error_reason
from detectors.adversarial import (
    DetectorEnsemble,
    FeatureSqueezing,
    InputDetector,
    NoiseConsistency,
    QueryVerdicts,
    StatefulQueryDetector,
)
from detectors.outlier import EnergyScore, MahalanobisDetector, MaxSoftmax, OnModelLogits

log = logging.getLogger(__name__)


class InputDetectorFeed:
    """One per-input detector, as the pipeline runs it.

    Parameters
    ----------
    detector : InputDetector
        Fitted.
    flag : str
        ``adversarial:<name>`` or ``outlier:<name>``.
    reads : {"inputs", "outputs"}
        The events' input rows (for detectors running the model) or their outputs.
    width : int
        Values per row the detector reads: the model's input size, or the reference's outputs.
    on_scores : callable
        Called with the flag and the conformal p-values of the scores of each batch
        (see :meth:`~detectors.adversarial.InputDetector.tail_probability`).
    """

    def __init__(
        self,
        detector: InputDetector,
        flag: str,
        *,
        reads: str,
        width: int,
        on_scores: Callable[[str, np.ndarray], None] = lambda flag, p: None,
    ):
        self.detector = detector
        self.flag = flag
        self.name = flag.split(":", 1)[1]
        self.reads = reads
        self.width = width
        self._on_scores = on_scores
        self._errors: dict[str, Verdict] = {}

    def process(self, data: Any) -> list[Verdict]:
        rows, verdicts = self._readable(data)
        index = [i for i, v in enumerate(verdicts) if v is None]
        if index:
            scored = self._score(rows[index] if len(index) < len(rows) else rows)
            for i, verdict in zip(index, scored, strict=True):
                verdicts[i] = verdict
        return verdicts  # type: ignore[return-value]

    def _readable(self, data: Any) -> tuple[np.ndarray, list[Verdict | None]]:
        """The rows to score, and per event an error verdict or None (to be scored)."""
        if self.reads == "outputs":
            rows = np.full((len(data), self.width), np.nan)
            verdicts: list[Verdict | None] = []
            for i, out in enumerate(data):
                if out is None:
                    verdicts.append(self._error("the event carries no outputs"))
                elif out.size != self.width:
                    reason = f"outputs of {out.size} values; the reference's have {self.width}"
                    verdicts.append(self._error(reason))
                else:
                    rows[i] = out.reshape(-1)
                    verdicts.append(None)
        else:
            rows = data
            if rows.shape[1] != self.width:
                reason = f"an input of {rows.shape[1]} values; the model takes {self.width}"
                return rows, [self._error(reason)] * len(rows)
            verdicts = [None] * len(rows)
        finite = np.isfinite(rows).all(1)
        if not finite.all():
            for i in np.flatnonzero(~finite).tolist():
                if verdicts[i] is None:
                    verdicts[i] = self._error(f"NaN or inf in the event's {self.reads}")
        return rows, verdicts

    def _score(self, rows: np.ndarray) -> list[Verdict]:
        try:
            scores = self.detector.score(rows)
        except Exception as exc:  # find the events the model fails on, score the rest
            log.warning("%s failed on %d events: %s; scoring each alone", self.flag, len(rows), exc)
            return [self._score_one(row) for row in rows]
        return self._verdicts(scores)

    def _score_one(self, row: np.ndarray) -> Verdict:
        try:
            scores = self.detector.score(row[None])
        except Exception as exc:
            return self._error(error_reason(exc))
        return self._verdicts(scores)[0]

    def _verdicts(self, scores: np.ndarray) -> list[Verdict]:
        self._on_scores(self.flag, self.detector.tail_probability(scores))
        threshold, flag = self.detector.threshold_, self.flag
        return [Verdict(flag if s > threshold else None, {flag: s}) for s in scores.tolist()]

    def _error(self, reason: str) -> Verdict:
        verdict = self._errors.get(reason)
        if verdict is None:
            if len(self._errors) > 256:  # reasons quoting exceptions vary: bound the cache
                self._errors.clear()
            verdict = self._errors[reason] = Verdict(f"error:{self.name}", error=reason)
        return verdict


class QueryAttackFeed:
    """The stateful detector, as the pipeline runs it: rows and client ids in, one verdict per
    event: ``query-attack`` while its client is flagged."""

    name = "query-attack"
    flag = "query-attack"
    reads = "queries"

    def __init__(
        self,
        detector: StatefulQueryDetector,
        on_snapshot: Callable[[Any], None] = lambda snapshot: None,
        clock: Callable[[], float] = time.time,
        state_file: Path | None = None,
    ):
        self.detector = detector
        self._on_snapshot = on_snapshot
        self._clock = clock
        self.state_file = state_file
        self.last: QueryVerdicts | None = None
        if state_file is not None and state_file.exists():
            try:
                detector.restore(state_file)
            except (OSError, ValueError) as exc:
                log.warning("stateful detection starts empty: cannot restore %s: %s",
                            state_file, exc)  # fmt: skip
            else:
                snapshot = detector.snapshot(now=clock())
                log.info("stateful detection restored %d fingerprints and %d clients from %s",
                         snapshot.fingerprints, snapshot.clients_tracked, state_file)  # fmt: skip

    def save_state(self) -> None:
        """Write the detector's state to ``state_file`` (when set); errors are logged."""
        if self.state_file is None:
            return
        try:
            self.detector.save(self.state_file)
        except Exception as exc:  # at shutdown: report, and let the agent stop cleanly
            log.error("cannot save the stateful detector's state to %s: %s", self.state_file, exc)
        else:
            log.info("stateful detector state saved to %s", self.state_file)

    def process(self, data: tuple[np.ndarray, Sequence[str | None]]) -> list[Verdict]:
        rows, client_ids = data
        self.last = None
        now = self._clock()
        self.last = v = self.detector.observe(rows, client_ids, now=now)
        self._on_snapshot(self.detector.snapshot(now=now))
        flag = self.flag
        return [
            Verdict(flag if hit else None, {flag: float(n)})
            for hit, n in zip(v.flagged.tolist(), v.client_matches.tolist(), strict=True)
        ]


class GlobalQueryFeed:
    """The stateful detector's global signal, for attacks spread over many clients: flags
    ``query-attack:global`` on the events that the :class:`QueryAttackFeed` before it in the
    pipeline found matching many earlier queries of any client."""

    name = "query-attack-global"
    flag = "query-attack:global"
    reads = "queries"

    def __init__(self, queries: QueryAttackFeed):
        self.queries = queries

    def process(self, data: tuple[np.ndarray, Sequence[str | None]]) -> list[Verdict]:
        v = self.queries.last
        if v is None or len(v.global_alarm) != len(data[0]):  # the feed before failed
            return [NO_VERDICT] * len(data[0])
        flag = self.flag
        return [
            Verdict(flag if alarm else None, {flag: float(n)})
            for alarm, n in zip(v.global_alarm.tolist(), v.global_matches.tolist(), strict=True)
        ]


def build_input_detectors(config: AgentConfig, metrics: AgentMetrics) -> list[StreamDetector]:
    """The feeds of ``detectors.adversarial``, ``detectors.outlier`` and ``detectors.stateful``.

    Raises
    ------
    StartupError
        The model or the reference cannot be read, the reference does not fit the model, or a
        detector cannot be built or fitted; the message names the key.
    """
    feeds: list[StreamDetector] = []
    specs = config.detectors.input_specs
    if specs:
        inputs = _ReferenceInputs.read(config)
        for family, key, spec in specs:
            flag = f"{family}:{spec.name}"
            detector, width = _fit(spec, key, inputs)
            metrics.watch_flag(flag)
            metrics.watch_flag(f"error:{spec.name}")
            feeds.append(
                InputDetectorFeed(
                    detector, flag, reads=spec.reads, width=width, on_scores=metrics.observe_scores
                )
            )
            log.info("%s: %r, threshold %.6g", flag, detector, detector.threshold_)
    stateful = config.detectors.stateful
    if stateful.enabled:
        try:
            detector = StatefulQueryDetector(**stateful.detector_kwargs())
        except ValueError as exc:
            raise StartupError(f"cannot build detectors.stateful: {exc}") from exc
        if stateful.state_file is not None:
            _check_writable(stateful.state_file)
        queries = QueryAttackFeed(
            detector, on_snapshot=metrics.set_stateful, state_file=stateful.state_file
        )
        feeds += [queries, GlobalQueryFeed(queries)]
        metrics.watch_flag(queries.flag)
        metrics.watch_flag(GlobalQueryFeed.flag)
        log.info("stateful query-attack detection: %r", detector)
    return feeds


def _check_writable(path: Path) -> None:
    """Refuse at start-up a state file that could not be written at shutdown."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        message = f"detectors.stateful.state_file: cannot create {path.parent}: {exc}"
        raise StartupError(message) from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise StartupError(f"detectors.stateful.state_file: {path} is not writable")


class _ReferenceInputs:
    """What per-input detectors are fitted on: the reference shaped for the model, its labels,
    the model's outputs on it (the reference's own ``outputs`` when it has them), and the
    model."""

    def __init__(self, config: AgentConfig, reference: Reference, x: np.ndarray):
        self.config = config
        self.reference = reference
        self.x = x
        self._model: torch.nn.Module | None = None

    @classmethod
    def read(cls, config: AgentConfig) -> _ReferenceInputs:
        path = Path(config.reference.path)
        reference = read_reference(path)
        shape = config.model.input_shape or reference.row_shape
        if math.prod(shape) != reference.x.shape[1]:
            raise StartupError(
                f"model.input_shape {list(shape)} holds {math.prod(shape)} values, but the rows "
                f"of the reference {path} have {reference.x.shape[1]}"
            )
        x = reference.x.reshape(len(reference.x), *shape).astype(np.float32)
        return cls(config, reference, x)

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:
            self._model = load_monitored_model(self.config.model, "a per-input detector")
        return self._model

    def outputs(self, key: str, name: str) -> np.ndarray:
        if self.reference.outputs is not None:
            return self.reference.outputs
        if self.config.model.path is None:
            raise StartupError(
                f"{key} ({name}) reads the events' outputs and is calibrated on the reference's: "
                f"add an array named 'outputs' (the model's logits) to {self.reference.path}, or "
                "set model.path to compute them"
            )
        with torch.inference_mode():
            device = next(iter(self.model.parameters()), torch.empty(0)).device
            batches = [
                self.model(torch.from_numpy(chunk).to(device)).float().cpu().numpy()
                for chunk in np.array_split(self.x, max(1, len(self.x) // 1024))
            ]
        return np.concatenate(batches).reshape(len(self.x), -1).astype(np.float64)


def _fit(spec: InputDetectorConfig, key: str, inputs: _ReferenceInputs) -> tuple[Any, int]:
    """Build and fit the detector of ``spec``; return it and the width of the rows it reads."""
    try:
        detector = _build(spec, inputs)
    except (ValueError, TypeError) as exc:
        raise StartupError(f"cannot build {key} ({spec.name}): {exc}") from exc
    if spec.reads == "outputs":
        data, y = inputs.outputs(key, spec.name), None
    else:
        data, y = inputs.x, inputs.reference.y
    try:
        detector.fit(data, y)
    except Exception as exc:
        raise StartupError(
            f"cannot fit {key} ({spec.name}) on the reference {inputs.reference.path}: {exc}"
        ) from exc
    return detector, int(np.prod(data.shape[1:]))


#: Keys of a spec passed on to the detector class, when given.
_DETECTOR_KEYS = (
    "batch_size", "bits", "n_levels", "sigma", "n_samples", "seed",
    "calibration_fraction", "outputs", "temperature", "bounds",
)  # fmt: skip


def _build(spec: InputDetectorConfig, inputs: _ReferenceInputs) -> InputDetector:
    given = {key: getattr(spec, key) for key in _DETECTOR_KEYS if getattr(spec, key) is not None}
    if spec.squeezers is not None:
        given["squeezers"] = spec.squeezers
    if spec.type == "ensemble":
        members = [_build(member, inputs) for member in spec.members or ()]
        return DetectorEnsemble(members, fpr=spec.fpr, **given)
    if spec.type in ("max-softmax", "energy"):
        cls = MaxSoftmax if spec.type == "max-softmax" else EnergyScore
        batch = {"batch_size": given.pop("batch_size")} if "batch_size" in given else {}
        if spec.source == "model":
            shape = inputs.x.shape[1:]
            return OnModelLogits(cls(**given), inputs.model, spec.fpr, shape, **batch)
        return cls(fpr=spec.fpr, **given)
    cls = {
        "feature-squeezing": FeatureSqueezing,
        "noise-consistency": NoiseConsistency,
        "mahalanobis": MahalanobisDetector,
    }[spec.type]
    return cls(inputs.model, fpr=spec.fpr, input_shape=inputs.x.shape[1:], **given)
