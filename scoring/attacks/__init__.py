"""Adversarial attacks: pure functions ``attack(model, x, y, *, eps, norm, ...) -> AttackResult``.

Every attack works on batches on the model's device, takes gradients with respect to the
inputs only, attacks only the points still robust, and is dispatched by name through
:data:`ATTACKS` (``run_named("apgd-t", model, x, y, norm="linf", eps=8/255)``).

>>> from scoring.attacks import fgsm, pgd, apgd, cw_l2, square, cascade, ATTACKS
>>> sorted(ATTACKS)
['apgd-ce', 'apgd-dlr', 'apgd-t', 'cascade', 'cw-l2', 'fgsm', 'pgd', 'square']
"""

from scoring.attacks.apgd import apgd
from scoring.attacks.base import AttackResult
from scoring.attacks.cascade import cascade
from scoring.attacks.cw import cw_l2
from scoring.attacks.fgsm import fgsm
from scoring.attacks.pgd import pgd
from scoring.attacks.registry import ATTACKS, AttackSpec, get_attack, run_named
from scoring.attacks.square import square

__all__ = [
    "ATTACKS",
    "AttackResult",
    "AttackSpec",
    "apgd",
    "cascade",
    "cw_l2",
    "fgsm",
    "get_attack",
    "pgd",
    "run_named",
    "square",
]
