"""One drift detector of ``detectors.drift``: its type and the keys that type takes.

``detectors.drift`` is a list of these mappings, or one mapping alone (the older form, whose
``type`` defaults to ``ks``). Each type takes only its own keys: a key of another type
(``ert`` on a batch test, ``p_val`` on a distance) is an error naming it. Keys left out take
the type's default, filled in before validation so that every spec reads complete. Type
``alibi`` loads a detector saved by alibi-detect (``path``), which brings its own reference
and settings.
"""

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, model_validator

from agent.config._base import _Section
from agent.config._errors import _Expect, _Issue, _problems
from agent.config._fields import _Float, _Int, _lower, _PositiveInt, _resolve

#: Every detector type, in the order the docs list them.
DRIFT_TYPES = (
    "ks", "cvm", "chisquare", "mmd", "lsdd", "psi", "jensen-shannon", "wasserstein",
    "mmd-online", "cvm-online", "output-class", "output-confidence", "output-entropy",
)  # fmt: skip
UNIVARIATE_TESTS = frozenset({"ks", "cvm", "chisquare"})
PERMUTATION_TESTS = frozenset({"mmd", "lsdd"})
DISTANCES = frozenset({"psi", "jensen-shannon", "wasserstein"})
ONLINE = frozenset({"mmd-online", "cvm-online"})
OUTPUT = frozenset({"output-class", "output-confidence", "output-entropy"})
#: Feature-wise tests picked per column by a schema (it needs ``schema``).
TABULAR = "tabular"
#: A detector saved by alibi-detect (the optional extra ``robustwatch[alibi]``).
ALIBI = "alibi"
#: What ``type`` takes: robustwatch's own detectors, then alibi-detect's.
TYPES = (*DRIFT_TYPES, TABULAR, ALIBI)

_TESTS = UNIVARIATE_TESTS | {TABULAR}
_BATCH = _TESTS | PERMUTATION_TESTS | DISTANCES | OUTPUT
_INPUTS = _TESTS | PERMUTATION_TESTS | DISTANCES | ONLINE | {ALIBI}

#: Which types take each optional key (type, name and enabled are every type's).
_TAKES: dict[str, frozenset[str]] = {
    "path": frozenset({ALIBI}),
    "window": _BATCH | {ALIBI},
    "p_val": _TESTS | PERMUTATION_TESTS | OUTPUT,
    "correction": _TESTS,
    "unseen": frozenset({"chisquare", TABULAR}),
    "schema": frozenset({TABULAR}),
    "numeric_test": frozenset({TABULAR}),
    "threshold": DISTANCES,
    "n_permutations": PERMUTATION_TESTS,
    "device": PERMUTATION_TESTS,
    "seed": PERMUTATION_TESTS | ONLINE,
    "preprocessing": PERMUTATION_TESTS | {"mmd-online"},
    "ert": ONLINE,
    "window_size": ONLINE,
    "n_bootstraps": ONLINE,
    "features": _INPUTS,
    "outputs": OUTPUT,
}

#: Why a key does not fit a type, where a hint helps.
_HINTS = {
    ("p_val", "distance"): "a distance has no p-value: set threshold",
    ("p_val", "online"): "an online detector is calibrated by ert",
    ("threshold", "test"): "a test is calibrated by p_val",
    ("threshold", "online"): "an online detector is calibrated by ert",
    ("ert", "batch"): "only online detectors (mmd-online, cvm-online) take ert",
    ("window", "online"): "an online detector's window is window_size",
    ("window_size", "batch"): "a batch detector's window is window",
    ("features", "output"): "output detectors read the events' outputs, not their inputs",
    ("path", "batch"): "only type alibi takes path",
    ("path", "online"): "only type alibi takes path",
}
_ALIBI_HINT = (
    "an alibi-detect detector keeps the settings it was saved with; "
    "alibi takes path, window and features"
)

#: Events per test window of a batch detector, unless ``window`` says otherwise.
DEFAULT_WINDOW = 200
#: Defaults filled in per type; those of the detector classes are theirs (a test checks).
_DEFAULTS: dict[str, Any] = {
    "window": DEFAULT_WINDOW,
    "p_val": 0.05,
    "correction": "bonferroni",
    "unseen": "error",
    "n_permutations": 100,
    "device": "auto",
    "seed": 0,
    "ert": 500.0,
    "outputs": "probabilities",
    "numeric_test": "ks",
}
THRESHOLDS = {"psi": 0.2, "jensen-shannon": 0.1, "wasserstein": 0.1}
WINDOW_SIZES = {"mmd-online": (50,), "cvm-online": (20, 50)}

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_NAME_RULE = "1 to 63 of A-Z a-z 0-9 . _ -, starting with a letter or digit"


def _kind(kind: str) -> str:
    if kind == ALIBI:
        return ALIBI
    if kind in ONLINE:
        return "online"
    if kind in DISTANCES:
        return "distance"
    return "output" if kind in OUTPUT else "test"


def _name(value: str) -> str:
    if not _NAME_RE.fullmatch(value):
        raise _problems(_Issue("", f"expected {_NAME_RULE}", value))
    return value


def _features(value: tuple[int, ...]) -> tuple[int, ...]:
    seen: dict[int, int] = {}
    issues = []
    for i, column in enumerate(value):
        if column in seen:
            issues.append(_Issue(str(i), f"duplicate of item {seen[column]}", column))
        seen.setdefault(column, i)
    if issues:
        raise _problems(*issues)
    return value


def _window_sizes(value: Any) -> Any:
    """One window size or a list of them, as a tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    return tuple(value) if isinstance(value, list) else value


def _alibi_dir(value: Path | None, info: ValidationInfo) -> Path | None:
    """An existing directory with the config.toml that alibi-detect's save_detector writes."""
    if value is None:
        return None
    resolved = _resolve(value, info)
    note = "" if resolved == value else f"looked for {resolved}"
    if not resolved.is_dir():
        raise _problems(_Issue("", "expected an existing directory", str(value), note))
    if not (resolved / "config.toml").is_file():
        message = (
            "expected a directory written by alibi_detect.saving.save_detector, with a "
            "config.toml (the legacy .dill format is not loaded)"
        )
        raise _problems(_Issue("", message, str(value), note))
    return resolved


_Column = Annotated[_Int, Field(ge=0), _Expect("a column index >= 0")]
_WindowSize = Annotated[_Int, Field(ge=2), _Expect("an integer >= 2")]


class PreprocessingConfig(_Section):
    """How inputs are reduced before a kernel test: ``detectors.drift[i].preprocessing``.

    Attributes
    ----------
    type : {'random-projection', 'untrained-encoder'}, required
        A fixed Gaussian random projection, or a randomly initialised, untrained MLP.
    dim : int, default 32
        Output dimension, >= 1.
    hidden : int, default 128
        Hidden width of the untrained encoder (not for random-projection), >= 1.
    seed : int, default 0
        Seeds the projection or the encoder's weights, >= 0.
    """

    type: Annotated[Literal["random-projection", "untrained-encoder"], BeforeValidator(_lower)]
    dim: _PositiveInt = 32
    hidden: _PositiveInt = 128
    seed: Annotated[_Int, Field(ge=0), _Expect("an integer >= 0")] = 0

    @model_validator(mode="after")
    def _check_hidden(self) -> "PreprocessingConfig":
        if self.type == "random-projection" and "hidden" in self.model_fields_set:
            raise _problems(_Issue("hidden", "only untrained-encoder takes hidden", self.hidden))
        return self


class DriftConfig(_Section):
    """One drift detector: an item of ``detectors.drift`` (or the whole of it, alone).

    Attributes
    ----------
    type : str, default 'ks'
        One of ``ks``, ``cvm``, ``chisquare`` (feature-wise tests with p-values), ``mmd``,
        ``lsdd`` (multivariate permutation tests), ``psi``, ``jensen-shannon``,
        ``wasserstein`` (feature-wise distances, with thresholds), ``mmd-online``,
        ``cvm-online`` (online, calibrated to an expected run time), ``output-class``,
        ``output-confidence``, ``output-entropy`` (tests on the events' outputs),
        ``tabular`` (a KS or CvM test per numeric column, chi-squared per categorical one, as
        its ``schema`` says), ``alibi``
        (a detector saved by alibi-detect, batch or online; see
        :mod:`detectors.drift.alibi`).
    name : str, default the type
        The ``detector`` label of its metrics and its flag ``drift:<name>``; unique in the list.
    enabled : bool, default true
    path : path
        alibi, required: the directory ``alibi_detect.saving.save_detector`` wrote (with a
        ``config.toml``), relative to the config file. alibi-detect's loader may unpickle
        what it saved: name only directories you trust. Its reference, p_val or ert and
        windows are the ones it was saved with: it is never fitted on ``reference``.
    window : int, default 200
        Batch detectors (and batch alibi ones): events per sliding test window, >= 10.
    p_val : float, default 0.05
        Tests: significance level, in (0, 1).
    correction : {'bonferroni', 'fdr'}, default 'bonferroni'
        Feature-wise tests: multiple-testing correction across features.
    unseen : {'error', 'category'}, default 'error'
        chisquare, tabular: a value the reference never had fails the window's test
        (``error``, counted as a detector error) or counts as evidence of drift
        (``category``).
    column_kinds : list of {'numeric', 'categorical'}
        The key ``schema``; tabular, required: the kind of each tested column (of
        ``features`` when given), which picks its test: ``numeric_test`` or chi-squared.
    numeric_test : {'ks', 'cvm'}, default 'ks'
        tabular: the test of numeric columns.
    threshold : float
        Distances: the distance above which a feature drifted, > 0; default psi 0.2,
        jensen-shannon 0.1, wasserstein 0.1.
    n_permutations : int, default 100
        mmd, lsdd: permutations of the test, >= 1; enough that ``1 / (n + 1) <= p_val``.
    device : {'auto', 'cpu', 'cuda'}, default 'auto'
        mmd, lsdd: where the kernels are computed.
    seed : int, default 0
        mmd, lsdd and online detectors: seeds their randomness, >= 0.
    preprocessing : PreprocessingConfig, optional
        mmd, lsdd, mmd-online: reduce inputs first; see :class:`PreprocessingConfig`.
    ert : float, default 500
        Online detectors: expected run time (events between false alarms), > 1.
    window_size : tuple of int, default (50,) (mmd-online) or (20, 50) (cvm-online)
        Online detectors: events in the test window, >= 2, given as an integer; cvm-online
        also takes a list (several windows, see :class:`~detectors.drift.CVMDriftOnline`).
    n_bootstraps : int, optional
        Online detectors: bootstrap streams for calibration (default the class's rule).
    features : list of int, optional
        Input detectors (and alibi): the column indices of the input row to test (default all).
    outputs : {'probabilities', 'logits', 'labels'}, default 'probabilities'
        Output detectors: what an event's outputs hold (``labels``: output-class only).
    """

    type: Annotated[Literal[TYPES], BeforeValidator(_lower)] = "ks"  # type: ignore[valid-type]
    name: Annotated[str, AfterValidator(_name), _Expect(f"a name of {_NAME_RULE}")] = "ks"
    enabled: bool = True
    path: Annotated[
        Path | None,
        AfterValidator(_alibi_dir),
        _Expect("the path of a directory written by alibi_detect.saving.save_detector"),
    ] = None
    window: Annotated[_Int | None, Field(ge=10), _Expect("an integer >= 10")] = None
    p_val: Annotated[_Float | None, Field(gt=0, lt=1), _Expect("a float in (0, 1)")] = None
    correction: Annotated[Literal["bonferroni", "fdr"] | None, BeforeValidator(_lower)] = None
    unseen: Annotated[Literal["error", "category"] | None, BeforeValidator(_lower)] = None
    # The key is `schema`, an attribute pydantic models already have.
    column_kinds: Annotated[
        tuple[Annotated[Literal["numeric", "categorical"], BeforeValidator(_lower)], ...] | None,
        Field(min_length=1, alias="schema"),
        _Expect("a list of numeric | categorical, one per tested column"),
    ] = None
    numeric_test: Annotated[Literal["ks", "cvm"] | None, BeforeValidator(_lower)] = None
    threshold: Annotated[_Float | None, Field(gt=0), _Expect("a number > 0")] = None
    n_permutations: Annotated[_Int | None, Field(ge=1), _Expect("an integer >= 1")] = None
    device: Annotated[Literal["auto", "cpu", "cuda"] | None, BeforeValidator(_lower)] = None
    seed: Annotated[_Int | None, Field(ge=0), _Expect("an integer >= 0")] = None
    preprocessing: PreprocessingConfig | None = None
    ert: Annotated[_Float | None, Field(gt=1), _Expect("a number > 1")] = None
    window_size: Annotated[
        tuple[_WindowSize, ...] | None,
        BeforeValidator(_window_sizes),
        Field(min_length=1),
        _Expect("an integer >= 2 (cvm-online: or a list of them)"),
    ] = None
    n_bootstraps: Annotated[_Int | None, Field(ge=1), _Expect("an integer >= 1")] = None
    features: Annotated[
        tuple[_Column, ...] | None,
        Field(min_length=1),
        AfterValidator(_features),
        _Expect("a non-empty list of column indices >= 0"),
    ] = None
    outputs: Annotated[
        Literal["probabilities", "logits", "labels"] | None, BeforeValidator(_lower)
    ] = None

    @model_validator(mode="wrap")
    @classmethod
    def _fill_and_check(cls, data: Any, handler: Any) -> "DriftConfig":
        """Fill in the type's defaults, validate, then refuse keys the type does not take."""
        if not isinstance(data, Mapping):
            return handler(data)
        given = {key for key, value in data.items() if value is not None}
        kind = _lower(data.get("type") or "ks")
        filled = dict(data)
        if kind in TYPES:
            filled.setdefault("name", kind)
            for key, value in _defaults(kind).items():
                if filled.get(key) is None:
                    filled[key] = value
        spec = handler(filled)
        foreign = sorted(key for key in given & set(_TAKES) if spec.type not in _TAKES[key])
        issues = [_foreign(key, spec.type, data[key]) for key in foreign]
        issues += _combination_issues(spec)
        if issues:
            raise _problems(*issues)
        return spec

    @property
    def reads(self) -> str:
        """``"outputs"`` for the output detectors, else ``"inputs"``."""
        return "outputs" if self.type in OUTPUT else "inputs"

    @property
    def online(self) -> bool:
        """Online by type; an ``alibi`` detector's kind is known once it is loaded."""
        return self.type in ONLINE

    @property
    def needs_reference(self) -> bool:
        """Whether it is fitted on ``reference``: all but ``alibi``, which brings its own."""
        return self.type != ALIBI


def _defaults(kind: str) -> dict[str, Any]:
    out = {key: value for key, value in _DEFAULTS.items() if kind in _TAKES[key]}
    if kind in THRESHOLDS:
        out["threshold"] = THRESHOLDS[kind]
    if kind in WINDOW_SIZES:
        out["window_size"] = WINDOW_SIZES[kind]
    if kind == ALIBI:  # batch or online is known once loaded: agent.drift fills it then
        del out["window"]
    return out


def _foreign(key: str, kind: str, value: Any) -> _Issue:
    batch = "online" if kind in ONLINE else "batch"
    hint = _ALIBI_HINT if kind == ALIBI else _HINTS.get((key, _kind(kind)))
    hint = hint or _HINTS.get((key, batch))
    message = f"type {kind!r} does not take {key}"
    return _Issue(key, message + (f" ({hint})" if hint else ""), value)


def _combination_issues(spec: DriftConfig) -> list[_Issue]:
    issues = []
    kinds = spec.column_kinds
    if spec.type == TABULAR and kinds is None:
        message = "required by type 'tabular': the kind of each column, numeric or categorical"
        issues.append(_Issue("schema", message))
    elif kinds and spec.features and len(kinds) != len(spec.features):
        message = f"has {len(kinds)} entries but features names {len(spec.features)}"
        issues.append(_Issue("schema", message + " columns: one kind per tested column"))
    if spec.type in PERMUTATION_TESTS and 1.0 / (spec.n_permutations + 1) > spec.p_val:
        need = math.ceil(1.0 / spec.p_val) - 1
        while 1.0 / (need + 1) > spec.p_val:
            need += 1
        message = (
            f"the smallest p-value of a permutation test is 1 / (n_permutations + 1): with "
            f"p_val={spec.p_val} it needs n_permutations >= {need} to ever find drift"
        )
        issues.append(_Issue("n_permutations", message, spec.n_permutations))
    if spec.type == "mmd-online" and len(spec.window_size) != 1:
        issues.append(_Issue("window_size", "mmd-online takes one window size", spec.window_size))
    if spec.type == ALIBI and spec.path is None:
        message = "type 'alibi' needs path: the directory alibi_detect's save_detector wrote"
        issues.append(_Issue("path", message))
    if spec.outputs == "labels" and spec.type != "output-class":
        message = "only output-class reads labels; use probabilities or logits"
        issues.append(_Issue("outputs", message, spec.outputs))
    return issues


def _unique_names(specs: tuple[DriftConfig, ...]) -> tuple[DriftConfig, ...]:
    keyed = [(str(i), spec.name) for i, spec in enumerate(specs)]
    _refuse_duplicate_names(keyed, "detectors.drift.", "its flag is drift:<name>")
    return specs


def _refuse_duplicate_names(keyed: Iterable[tuple[str, str]], where: str, why: str) -> None:
    """Raise one issue per item whose name an earlier one has; ``keyed`` holds (key below the
    validator's location, name), and ``where`` + key is an item's full key path."""
    first: dict[str, str] = {}
    issues = []
    for key, name in keyed:
        if name in first:
            message = f"duplicate of {where}{first[name]}'s name: give each its own name ({why})"
            issues.append(_Issue(f"{key}.name", message, name))
        first.setdefault(name, key)
    if issues:
        raise _problems(*issues)
