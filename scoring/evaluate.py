"""One robustness evaluation of a model on a sample: :func:`evaluate`."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from scoring._validation import check_int, check_precision
from scoring.attacks.registry import SUITES, resolve_attacks
from scoring.eps import eps50, eps_grid
from scoring.exceptions import ParameterError
from scoring.inputs import (
    Normalized,
    as_inputs,
    as_labels,
    check_bounds,
    check_logits,
    eval_mode,
    placed,
    resolve_device,
)
from scoring.report import CurvePoint, RobustnessReport
from scoring.stats import wilson_interval
from scoring.sweep import score, sweep

__all__ = ["SUITES", "evaluate"]


def _versions() -> dict[str, str]:
    try:
        own = importlib.metadata.version("robustwatch")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
        own = "unknown"
    return {
        "robustwatch": own,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def evaluate(
    model: Any,
    x: Any,
    y: Any = None,
    attacks: str | Sequence[str] | None = None,
    norm: str = "linf",
    eps: Any = "auto",
    device: Any = "auto",
    seed: int = 0,
    *,
    suite: str | None = None,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    mean: Any = None,
    std: Any = None,
    steps: int | None = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    batch_size: int = 256,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    model_name: str | None = None,
    progress: Callable[[str, float | None, int, int], None] | None = None,
) -> RobustnessReport:
    """Clean and robust accuracy of ``model`` on ``(x, y)`` under each attack and eps.

    For every attack and every eps of the grid (ascending), the attack runs only on points
    still robust at the previous eps (an adversarial point stays one in a larger ball), so
    each curve is monotone. Robust accuracy is ``#robust / N`` with a 95% Wilson interval;
    the attack success rate is the fraction broken among the points classified correctly.
    The worst case over attacks (``report.curve``) is per point, and eps50 (the eps at which
    it falls to half the clean accuracy, interpolated) is read off it. A minimal-perturbation
    attack (``cw-l2``) runs once; a point is robust at eps when its minimal perturbation
    exceeds eps, its whole cost is booked on the smallest eps, and the report carries the
    median minimal L2 norm over the correctly classified points (inf when most survive).

    Parameters
    ----------
    model : torch.nn.Module or callable
        Returns logits of shape (N, n_classes). A module in train mode is scored in eval mode
        and restored; a module on another device is moved to ``device`` and moved back. A
        ``torch.compile``d module is scored as the module itself, faster on a GPU once its
        first call has compiled it (see the README's "On a GPU").
    x : array-like of shape (N, ...)
        Inputs in the raw space users reason in, inside ``bounds``.
    y : array-like of shape (N,), optional
        Labels; without them the model's clean predictions are the reference
        (``labels="model-predictions"``, clean accuracy 1).
    attacks : str or sequence of str, optional
        Names from :data:`scoring.attacks.ATTACKS`; ``suite`` when omitted.
    norm : {"linf", "l2"}, default="linf"
    eps : "auto", float or sequence of float, default="auto"
        Radii in input units; ``"auto"`` follows the rule of :mod:`scoring.eps`.
    device : "auto", str or torch.device, default="auto"
        "auto" is CUDA when available, else CPU.
    seed : int, default=0
        Every random draw derives from it (per attack, eps and batch).
    suite : {"fast", "standard"}, optional
        ``fast``: FGSM and PGD (PGD only for L2); ``standard``: the AutoAttack-style cascade.
        Default ``fast`` when neither ``attacks`` nor ``suite`` is given.
    bounds : (float, float) or None, default=(0.0, 1.0)
        Valid input range; None for unbounded features.
    mean, std : array-like, optional
        Normalisation the model expects, applied inside a :class:`~scoring.inputs.Normalized`
        wrapper so that eps is measured in raw input units.
    steps : int, optional
        Iterations of the iterative attacks; each attack's default when omitted.
    precision : {"fp32", "bf16"}, default="fp32"
    channels_last : bool, optional
        Attack convolutional models in channels-last memory, as in
        :func:`scoring.attacks.fgsm`; default: for (N, C, H, W) inputs to a model with 4-D
        weights.
    batch_size : int, default=256
        Points per attack call.
    options : mapping of attack name to keyword arguments, optional
        E.g. ``{"pgd": {"restarts": 3}, "square": {"n_queries": 1000}}``.
    model_name : str, optional
        Name in the report; the model's class name when omitted.
    progress : callable, optional
        Called as ``progress(attack, eps, done, total)`` after each batch of each attack
        (``eps`` is None for minimal-perturbation attacks), e.g. to draw a progress bar.

    Returns
    -------
    RobustnessReport

    Examples
    --------
    >>> model = torch.nn.Identity()  # logits are the inputs: margins 0.2 and 0.4
    >>> x, y = torch.tensor([[0.6, 0.4], [0.3, 0.7]]), torch.tensor([0, 1])
    >>> r = evaluate(model, x, y, attacks=["fgsm"], eps=[0.05, 0.15, 0.25], device="cpu")
    >>> [round(s.robust_accuracy, 2) for s in r.results], round(r.eps50, 4), r.labels
    ([1.0, 0.5, 0.0], 0.15, 'provided')
    """
    options = dict(options or {})
    names = resolve_attacks(attacks, suite, norm)
    if unknown := set(options) - set(names):
        raise ParameterError(f"options name attacks that are not run: {sorted(unknown)}.")
    check_int("batch_size", batch_size, 1, "evaluate")
    check_int("seed", seed, 0, "evaluate")
    check_precision(precision)
    start = time.perf_counter()
    device = resolve_device(device)
    net = model
    if mean is not None or std is not None:
        net = Normalized(model, 0.0 if mean is None else mean, 1.0 if std is None else std)
    x = as_inputs(x, device)
    check_bounds(x, bounds)
    n = x.shape[0]
    with placed(net, device), eval_mode(net) as notes, torch.no_grad():
        outs = [net(x[i : i + batch_size]) for i in range(0, n, batch_size)]
    for i, out in enumerate(outs):
        check_logits(out, min(batch_size, n - i * batch_size))
    z = torch.cat(outs).float()
    warnings = list(notes + check_logits(z, n))
    labels = "provided" if y is not None else "model-predictions"
    y = z.argmax(1) if y is None else as_labels(y, n, z.shape[1], device)
    correct = z.argmax(1) == y
    grid = eps_grid(eps, x, norm, bounds)
    results, robust_all = [], {e: correct.clone() for e in grid}
    fwd, bwd, cw_median = n, 0, None
    with placed(net, device):
        for a, name in enumerate(names):
            kw = {
                "steps": steps,
                "bounds": bounds,
                "device": device,
                "precision": precision,
                "channels_last": channels_last,
                **options.get(name, {}),
            }
            points, median = sweep(
                name,
                net,
                x,
                y,
                correct,
                grid,
                norm=norm,
                seeds=(seed, a),
                batch_size=batch_size,
                kw=kw,
                progress=progress,
            )
            cw_median = median if median is not None else cw_median
            for e, robust, run in points:
                results.append(score(name, norm, e, robust, correct, run))
                robust_all[e] &= robust
                fwd, bwd, warnings = fwd + run.fwd, bwd + run.bwd, warnings + list(run.warnings)
    clean = float(correct.float().mean())
    curve = tuple(
        CurvePoint(e, int(r.sum()) / n, wilson_interval(int(r.sum()), n))
        for e, r in robust_all.items()
    )
    rule = "auto" if isinstance(eps, str) else "given"
    config = {
        "attacks": list(names),
        "norm": norm,
        "eps": list(grid),
        "eps_rule": rule,
        "steps": steps,
        "bounds": bounds,
        "mean": mean,
        "std": std,
        "precision": precision,
        "seed": seed,
        "batch_size": batch_size,
        "options": options,
    }
    return RobustnessReport(
        model=model_name or getattr(model, "__name__", type(model).__name__),
        n=n,
        labels=labels,
        clean_accuracy=clean,
        clean_ci95=wilson_interval(int(correct.sum()), n),
        norm=norm,
        results=tuple(results),
        curve=curve,
        eps50=eps50(grid, [c.robust_accuracy for c in curve], clean),
        median_cw_l2=cw_median,
        device=str(device),
        precision=precision,
        seed=seed,
        versions=_versions(),
        config=_jsonable(config),
        warnings=tuple(dict.fromkeys(warnings)),
        seconds=time.perf_counter() - start,
        forward_passes=fwd,
        backward_passes=bwd,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value).tolist()
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)
