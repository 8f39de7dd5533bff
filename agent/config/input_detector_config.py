"""Per-input and stateful detectors: the items of ``detectors.adversarial`` and
``detectors.outlier``, and ``detectors.stateful``.

Both lists take the same detector types; the list a detector is in only sets its flag's family:
``adversarial:<name>`` or ``outlier:<name>``. Each type takes only its own keys, as in
``detectors.drift``: a key of another type is an error naming it.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretBytes,
    ValidationInfo,
    model_validator,
)

from agent.config._base import _Section
from agent.config._errors import _context, _Expect, _Issue, _problems
from agent.config._fields import _Float, _Int, _lower, _OptPath, _PositiveInt
from agent.config.drift_config import _NAME_RULE, _name

#: Every per-input detector type, in the order the docs list them.
INPUT_DETECTOR_TYPES = (
    "feature-squeezing", "noise-consistency", "mahalanobis", "max-softmax", "energy", "ensemble",
)  # fmt: skip

#: Types that run the model on the events' inputs (they need ``model.path``).
MODEL_TYPES = frozenset({"feature-squeezing", "noise-consistency", "mahalanobis"})
#: Types that read the events' outputs (logits, or probabilities for max-softmax), or with
#: ``source: model`` the logits the model gives the events' inputs.
OUTPUT_TYPES = frozenset({"max-softmax", "energy"})

#: Each type's default name: the part of its flag after the family.
DEFAULT_NAMES = {
    "feature-squeezing": "squeeze",
    "noise-consistency": "noise",
    "mahalanobis": "mahalanobis",
    "max-softmax": "max-softmax",
    "energy": "energy",
    "ensemble": "ensemble",
}

#: Which types take each optional key (type, name, enabled and fpr are every type's).
_TAKES: dict[str, frozenset[str]] = {
    "batch_size": MODEL_TYPES | OUTPUT_TYPES,
    "source": OUTPUT_TYPES,
    "squeezers": frozenset({"feature-squeezing"}),
    "bits": frozenset({"feature-squeezing"}),
    "bounds": frozenset({"feature-squeezing"}),
    "n_levels": frozenset({"feature-squeezing"}),
    "sigma": frozenset({"noise-consistency"}),
    "n_samples": frozenset({"noise-consistency"}),
    "seed": frozenset({"noise-consistency", "mahalanobis", "ensemble"}),
    "calibration_fraction": frozenset({"mahalanobis", "ensemble"}),
    "outputs": frozenset({"max-softmax"}),
    "temperature": frozenset({"energy"}),
    "members": frozenset({"ensemble"}),
}

_SQUEEZERS = Literal["bit-depth", "median-2x2", "median-3x3", "quantile"]
_Fraction = Annotated[_Float, Field(gt=0, lt=1), _Expect("a float in (0, 1)")]
_Seed = Annotated[_Int, Field(ge=0), _Expect("an integer >= 0")]


class InputDetectorConfig(_Section):
    """One per-input detector: an item of ``detectors.adversarial`` or ``detectors.outlier``.

    Every detector is calibrated on the reference (``reference.path``) to the false-positive
    rate ``fpr``; none has a hand-set threshold. Keys left out take the detector class's
    default (see :mod:`detectors.adversarial`, :mod:`detectors.outlier`), except ``fpr``.

    Attributes
    ----------
    type : str, required
        ``feature-squeezing``, ``noise-consistency``, ``mahalanobis`` (on the model's
        logits; these run the model on the events' inputs: need ``model.path``; a hidden
        layer cannot be read from a TorchScript or ``.pt2`` model), ``max-softmax``,
        ``energy`` (read the logits the events carry as outputs, no model needed; or, with
        ``source: model``, the model's logits on the inputs), or ``ensemble`` (its
        ``members`` flag together at the rate ``fpr``).
    name : str, default per type
        ``squeeze``, ``noise``, ``mahalanobis``, ``max-softmax``, ``energy``, ``ensemble``: the
        flag is ``adversarial:<name>`` or ``outlier:<name>`` by the list it is in; unique
        across both lists.
    enabled : bool, default true
    fpr : float, default 0.01
        Target false-positive rate on clean traffic, in (0, 1). Lower than the classes'
        0.05: a monitor flagging one clean event in twenty is ignored within a day.
    batch_size : int, optional
        Types that run the model: inputs per forward pass.
    source : {'outputs', 'model'}, default 'outputs'
        max-softmax, energy: score the outputs the events carry, or run the model
        (``model.path``) on their inputs and score its logits. ``model`` lets them join an
        ensemble with the detectors of inputs.
    squeezers : list of str, optional
        feature-squeezing: ``bit-depth``, ``median-2x2``, ``median-3x3``, ``quantile``.
    bits : int, optional
        feature-squeezing: bit depth kept by ``bit-depth``, 1 to 16.
    bounds : [low, high], optional
        feature-squeezing: the valid input range that ``bit-depth`` quantises.
    n_levels : int, optional
        feature-squeezing: quantiles per feature kept by ``quantile``, >= 2.
    sigma : float, optional
        noise-consistency: standard deviation of the noise, > 0.
    n_samples : int, optional
        noise-consistency: noisy copies per input, >= 1.
    seed : int, optional
        noise-consistency, mahalanobis, ensemble: seeds noise or the fit/calibration split.
    calibration_fraction : float, optional
        mahalanobis, ensemble: share of the reference held out to calibrate, in (0, 1).
    outputs : {'logits', 'probabilities'}, default 'logits'
        max-softmax: what the events' outputs hold.
    temperature : float, optional
        energy: the temperature, > 0.
    members : list of InputDetectorConfig
        ensemble: its members (not ensembles), all reading the same (the model's inputs, or
        the events' outputs); their own ``fpr`` is not used.
    """

    type: Annotated[Literal[INPUT_DETECTOR_TYPES], BeforeValidator(_lower)]  # type: ignore[valid-type]
    name: Annotated[str, AfterValidator(_name), _Expect(f"a name of {_NAME_RULE}")] = ""
    enabled: bool = True
    fpr: _Fraction = 0.01
    batch_size: _PositiveInt | None = None
    squeezers: Annotated[
        tuple[Annotated[_SQUEEZERS, BeforeValidator(_lower)], ...] | None, Field(min_length=1)
    ] = None
    bits: Annotated[_Int | None, Field(ge=1, le=16), _Expect("an integer from 1 to 16")] = None
    bounds: Annotated[
        tuple[_Float, _Float] | None, _Expect("a list [low, high] of two numbers, low < high")
    ] = None
    n_levels: Annotated[_Int | None, Field(ge=2), _Expect("an integer >= 2")] = None
    sigma: Annotated[_Float | None, Field(gt=0), _Expect("a number > 0")] = None
    n_samples: _PositiveInt | None = None
    seed: _Seed | None = None
    calibration_fraction: _Fraction | None = None
    outputs: Annotated[Literal["logits", "probabilities"] | None, BeforeValidator(_lower)] = None
    source: Annotated[Literal["outputs", "model"] | None, BeforeValidator(_lower)] = None
    temperature: Annotated[_Float | None, Field(gt=0), _Expect("a number > 0")] = None
    members: Annotated[tuple["InputDetectorConfig", ...] | None, Field(min_length=1)] = None

    @model_validator(mode="wrap")
    @classmethod
    def _fill_and_check(cls, data: Any, handler: Any) -> "InputDetectorConfig":
        """Default the name, validate, then refuse keys the type does not take."""
        if not isinstance(data, Mapping):
            return handler(data)
        given = {key for key, value in data.items() if value is not None}
        kind = _lower(data.get("type"))
        filled = dict(data)
        if kind in DEFAULT_NAMES and not filled.get("name"):
            filled["name"] = DEFAULT_NAMES[kind]
        spec = handler(filled)
        issues = [
            _Issue(key, f"type {spec.type!r} does not take {key}", data[key])
            for key in sorted(given & set(_TAKES))
            if spec.type not in _TAKES[key]
        ]
        issues += _combination_issues(spec)
        if issues:
            raise _problems(*issues)
        return spec

    @property
    def reads(self) -> str:
        """``"outputs"`` for detectors of the events' outputs, else ``"inputs"`` (the model)."""
        if self.type == "ensemble" and self.members:
            return self.members[0].reads
        if self.type in OUTPUT_TYPES and self.source != "model":
            return "outputs"
        return "inputs"


def _combination_issues(spec: InputDetectorConfig) -> list[_Issue]:
    issues = []
    if spec.type == "ensemble":
        if not spec.members:
            issues.append(_Issue("members", "an ensemble needs a non-empty list of members"))
        else:
            for i, member in enumerate(spec.members):
                if member.type == "ensemble":
                    issues.append(_Issue(f"members.{i}.type", "an ensemble cannot be a member"))
                elif member.reads != spec.members[0].reads:
                    message = (
                        f"reads the events' {member.reads} but members.0 reads their "
                        f"{spec.members[0].reads}: members of one ensemble score the same rows"
                    )
                    issues.append(_Issue(f"members.{i}.type", message, member.type))
    if spec.type in OUTPUT_TYPES and spec.source != "model" and spec.batch_size is not None:
        issues.append(_Issue("batch_size", "only with source: model (no model runs here)"))
    if spec.source == "model" and spec.outputs == "probabilities":
        message = "source: model scores the model's logits; leave outputs out"
        issues.append(_Issue("outputs", message, spec.outputs))
    if spec.bounds is not None and not spec.bounds[0] < spec.bounds[1]:
        issues.append(_Issue("bounds", "expected [low, high] with low < high", list(spec.bounds)))
    return issues


_Threshold = Annotated[_Int | None, Field(ge=1, le=32), _Expect("an integer from 1 to 32")]


class StatefulConfig(_Section):
    """Stateful detection of query attacks per client: ``detectors.stateful``.

    Blacklight-style fingerprints of every query (see
    :class:`~detectors.adversarial.StatefulQueryDetector`, which documents every parameter, its
    default and why). A client whose queries match many of its own earlier ones is flagged,
    and its events carry ``query-attack`` from then on; an event matching many earlier
    queries of any client carries ``query-attack:global``. The client is the event's
    ``client_id`` (``kafka.client_id_header``, or the OIP ``client_id`` parameter); events
    without one are pooled as one client, so give ids wherever the serving side has them.

    Keys left out take the detector's defaults (those suit images in [0, 1] of CIFAR size;
    small inputs such as 8x8 digits need a smaller ``window_size``).

    Attributes
    ----------
    enabled : bool, default false
    salt_env : str, optional
        Name of an environment variable holding the secret salt (>= 16 bytes). Exactly one of
        ``salt_env`` and ``salt_file`` is required when enabled; the salt is never logged.
    salt_file : path, optional
        A file holding the salt (a mounted Kubernetes secret).
    step, window_size, top_k, match_threshold, client_threshold, global_threshold : optional
        Quantisation step (input units), values per hashed window, hashes per fingerprint,
        shared hashes for a match, distinct matched queries that flag a client (1 to 32), and
        that raise the global signal (1 to 32).
    ttl_seconds : float, optional
        How long a fingerprint counts and a flag lasts.
    max_fingerprints, max_clients : int, optional
        Memory bounds: the oldest fingerprint, the least recently seen client go first.
    state_file : path, optional
        Where the agent saves the fingerprints, clients and flags when it stops (SIGTERM),
        and reads them back when it starts, so that a restart or a rolling deploy does not
        hand an attacker a clean slate. One ``.npz`` file, written atomically, that grows with
        the fingerprints stored up to about the index's size (130 MB with the defaults); it
        holds no salt and no client id (keyed digests of them). A missing file starts
        empty; one of another salt or layout is logged and ignored. Without it, state lives
        in memory only.
    """

    enabled: bool = False
    salt_env: Annotated[
        str | None,
        Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"),
        _Expect("the name of an environment variable"),
    ] = None
    salt_file: _OptPath = None
    step: Annotated[_Float | None, Field(gt=0), _Expect("a number > 0")] = None
    window_size: _PositiveInt | None = None
    top_k: _PositiveInt | None = None
    match_threshold: _PositiveInt | None = None
    client_threshold: _Threshold = None
    global_threshold: _Threshold = None
    ttl_seconds: Annotated[_Float | None, Field(gt=0), _Expect("a number > 0")] = None
    max_fingerprints: _PositiveInt | None = None
    max_clients: _PositiveInt | None = None
    state_file: _OptPath = None
    _salt: SecretBytes | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read_salt(self, info: ValidationInfo) -> "StatefulConfig":
        if not self.enabled:
            return self
        # As for passwords, neither the variable's name nor the file's path is echoed.
        if (self.salt_env is None) == (self.salt_file is None):
            message = (
                "set exactly one of salt_env (the name of an environment variable) and "
                "salt_file (a file) holding a secret salt of at least 16 bytes"
            )
            raise _problems(_Issue("salt_env", message))
        if self.salt_env is not None:
            key = "salt_env"
            value = _context(info).get("env", os.environ).get(self.salt_env, "").encode()
            if not value:
                raise _problems(_Issue(key, "names an unset or empty variable"))
        else:
            key = "salt_file"
            try:
                value = Path(self.salt_file).read_bytes().strip()
            except OSError as exc:
                raise _problems(_Issue(key, f"cannot be read ({type(exc).__name__})")) from None
        if len(value) < 16:
            raise _problems(_Issue(key, f"holds a salt of {len(value)} bytes; it needs >= 16"))
        self._salt = SecretBytes(value)
        return self

    @property
    def salt(self) -> bytes | None:
        """The secret salt read at validation; None when disabled."""
        return None if self._salt is None else self._salt.get_secret_value()

    def detector_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``StatefulQueryDetector`` for the keys given (salt included)."""
        keys = ("step", "window_size", "top_k", "match_threshold", "client_threshold")
        keys += ("global_threshold", "max_fingerprints", "max_clients")
        kwargs = {key: getattr(self, key) for key in keys if getattr(self, key) is not None}
        if self.ttl_seconds is not None:
            kwargs["ttl"] = self.ttl_seconds
        return {"salt": self.salt, **kwargs}
