"""Dispatch of attacks by name: :data:`ATTACKS` and :func:`run_named`.

Names are those of the CLI's ``--attack``: ``fgsm``, ``pgd``, ``apgd-ce``, ``apgd-dlr``,
``apgd-t``, ``cw-l2``, ``square`` and ``cascade``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from scoring.attacks.apgd import apgd
from scoring.attacks.base import AttackResult
from scoring.attacks.cascade import cascade
from scoring.attacks.cw import cw_l2
from scoring.attacks.fgsm import fgsm
from scoring.attacks.pgd import pgd
from scoring.attacks.square import square
from scoring.exceptions import ParameterError, UnknownAttackError, UnknownNormError

__all__ = ["ATTACKS", "SUITES", "AttackSpec", "get_attack", "resolve_attacks", "run_named"]


@dataclass(frozen=True)
class AttackSpec:
    """An attack function with the norms it supports and the arguments its name fixes.

    ``steps_param`` names the parameter that a generic ``steps`` sets (None: no such
    parameter); ``minimal`` marks minimal-perturbation attacks, which take no ``eps``.
    """

    fn: Callable[..., AttackResult]
    norms: tuple[str, ...]
    fixed: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    steps_param: str | None = "steps"
    minimal: bool = False


ATTACKS: dict[str, AttackSpec] = {
    "fgsm": AttackSpec(fgsm, ("linf",), steps_param=None),
    "pgd": AttackSpec(pgd, ("linf", "l2")),
    "apgd-ce": AttackSpec(apgd, ("linf", "l2"), MappingProxyType({"loss": "ce"})),
    "apgd-dlr": AttackSpec(apgd, ("linf", "l2"), MappingProxyType({"loss": "dlr"})),
    "apgd-t": AttackSpec(
        apgd, ("linf", "l2"), MappingProxyType({"loss": "dlr", "n_target_classes": 9})
    ),
    "cw-l2": AttackSpec(cw_l2, ("l2",), minimal=True),
    "square": AttackSpec(square, ("linf",), steps_param=None),
    "cascade": AttackSpec(cascade, ("linf", "l2")),
}


def get_attack(name: str, norm: str) -> AttackSpec:
    """The spec of ``name``, checked to support ``norm``.

    >>> get_attack("pgd", "l2").norms
    ('linf', 'l2')
    >>> get_attack("fgsm", "l2")
    Traceback (most recent call last):
    ...
    scoring.exceptions.UnknownNormError: Attack 'fgsm' supports norm 'linf', not 'l2'. ...
    """
    if norm not in ("linf", "l2"):
        raise UnknownNormError(f"Unknown norm {norm!r}. Choose 'linf' or 'l2'.")
    if name not in ATTACKS:
        raise UnknownAttackError(
            f"Unknown attack {name!r}. Choose among: {', '.join(map(repr, ATTACKS))}."
        )
    spec = ATTACKS[name]
    if norm not in spec.norms:
        alternatives = [n for n, s in ATTACKS.items() if norm in s.norms]
        raise UnknownNormError(
            f"Attack {name!r} supports norm {' or '.join(map(repr, spec.norms))}, not {norm!r}. "
            f"Use another norm, or for {norm!r} one of: {', '.join(map(repr, alternatives))}."
        )
    return spec


SUITES = {"fast": ("fgsm", "pgd"), "standard": ("cascade",)}


def resolve_attacks(attacks: Any, suite: str | None, norm: str) -> tuple[str, ...]:
    """Attack names from ``attacks`` (a name or names) or a ``suite``, checked against ``norm``.

    ``fast`` is FGSM and PGD (PGD alone for L2), ``standard`` the AutoAttack-style cascade;
    ``fast`` when neither is given.

    >>> resolve_attacks(None, None, "l2"), resolve_attacks("apgd-ce", None, "linf")
    (('pgd',), ('apgd-ce',))
    """
    if norm not in ("linf", "l2"):
        raise UnknownNormError(f"Unknown norm {norm!r}. Choose 'linf' or 'l2'.")
    if attacks is not None and suite is not None:
        raise ParameterError("Pass either attacks=[...] or suite=..., not both.")
    if attacks is None:
        if (suite or "fast") not in SUITES:
            raise UnknownAttackError(f"Unknown suite {suite!r}. Choose 'fast' or 'standard'.")
        attacks = tuple(a for a in SUITES[suite or "fast"] if norm in ATTACKS[a].norms)
    names = (attacks,) if isinstance(attacks, str) else tuple(dict.fromkeys(attacks))
    if not names:
        raise ParameterError("attacks is empty: name at least one attack, e.g. ['pgd'].")
    for name in names:
        get_attack(name, norm)
    return names


def run_named(
    name: str,
    model: Any,
    x: Any,
    y: Any,
    *,
    norm: str,
    eps: float | None,
    steps: int | None = None,
    **options: Any,
) -> AttackResult:
    """Run attack ``name``; ``steps`` sets its iteration count, ``options`` its other kwargs.

    >>> import torch
    >>> r = run_named("fgsm", torch.nn.Identity(), torch.tensor([[0.6, 0.4]]), None,
    ...               norm="linf", eps=0.15)
    >>> r.attack, r.success
    ('fgsm', tensor([True]))
    """
    spec = get_attack(name, norm)
    kwargs = {**spec.fixed, **options}
    if steps is not None and spec.steps_param is not None:
        kwargs[spec.steps_param] = steps
    if not spec.minimal:
        kwargs["eps"] = eps
    return replace(spec.fn(model, x, y, norm=norm, **kwargs), attack=name)
