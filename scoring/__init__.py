"""Pure robustness scoring: adversarial attacks, certification, reports and score history.

No Kafka, no Prometheus, no threads; usable alone from a notebook.

>>> from scoring import evaluate, certify, load_model
>>> from scoring.attacks import fgsm, pgd, apgd, cw_l2, square
"""

from scoring.attacks import ATTACKS, AttackResult
from scoring.certify import ABSTAIN, CertifyResult, certify, predict
from scoring.evaluate import SUITES, evaluate
from scoring.inputs import Normalized
from scoring.models import compile_model, load_model
from scoring.report import AttackScore, CurvePoint, RobustnessReport, save_curve_png, to_markdown

__all__ = [
    "ABSTAIN",
    "ATTACKS",
    "SUITES",
    "AttackResult",
    "AttackScore",
    "CertifyResult",
    "CurvePoint",
    "Normalized",
    "RobustnessReport",
    "certify",
    "compile_model",
    "evaluate",
    "load_model",
    "predict",
    "save_curve_png",
    "to_markdown",
]
