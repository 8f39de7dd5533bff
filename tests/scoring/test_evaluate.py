"""evaluate(): scores, the --json schema, eps auto and eps50, labels, and bad input."""

import copy
import itertools
import json
import math

import numpy as np
import pytest
import torch

from scoring import Normalized, RobustnessReport, evaluate, save_curve_png
from scoring.eps import auto_eps
from scoring.exceptions import (
    InputRangeError,
    MissingDependencyError,
    ModelOutputError,
    ParameterError,
    UnknownAttackError,
    UnknownNormError,
)

GRID = [0.02, 0.05, 0.1, 0.2]
RESULT_KEYS = {
    "attack",
    "norm",
    "eps",
    "robust_accuracy",
    "ci95",
    "attack_success_rate",
    "seconds",
    "forward_passes",
    "backward_passes",
}


@pytest.fixture(scope="module")
def reports(standard_model, robust_model, batch):
    x, y = batch
    kw = {"attacks": ["fgsm", "pgd"], "eps": GRID, "device": "cpu", "steps": 10}
    return (
        evaluate(standard_model, x, y, model_name="standard", **kw),
        evaluate(robust_model, x, y, model_name="robust", **kw),
    )


def _check_schema(d: dict) -> None:
    required = {
        "model",
        "n",
        "labels",
        "clean_accuracy",
        "results",
        "eps50",
        "device",
        "precision",
        "seed",
        "versions",
    }
    assert required <= set(d)
    assert isinstance(d["model"], str) and isinstance(d["n"], int) and d["n"] > 0
    assert d["labels"] in ("provided", "model-predictions")
    assert 0 <= d["clean_accuracy"] <= 1
    assert d["eps50"] is None or isinstance(d["eps50"], float)
    assert d["precision"] in ("fp32", "bf16") and isinstance(d["seed"], int)
    assert {"torch", "robustwatch", "python"} <= set(d["versions"])
    for r in d["results"]:
        assert set(r) == RESULT_KEYS
        assert isinstance(r["attack"], str) and r["norm"] in ("linf", "l2") and r["eps"] > 0
        lo, hi = r["ci95"]
        assert 0 <= lo <= r["robust_accuracy"] <= hi <= 1
        assert r["attack_success_rate"] is None or 0 <= r["attack_success_rate"] <= 1
        assert isinstance(r["forward_passes"], int) and isinstance(r["backward_passes"], int)
    assert json.loads(json.dumps(d)) == d  # plain JSON, round-trips exactly


def test_to_dict_matches_the_score_json_schema(reports):
    standard, _ = reports
    d = standard.to_dict()
    _check_schema(d)
    assert d["labels"] == "provided" and d["n"] == 200 and d["device"] == "cpu"
    assert [(r["attack"], r["eps"]) for r in d["results"]] == [
        (a, e) for a in ("fgsm", "pgd") for e in GRID
    ]
    assert d["config_hash"] == standard.config_hash and len(d["config_hash"]) == 16


def test_scores_are_consistent(reports, standard_model, batch):
    standard, _ = reports
    x, y = batch
    with torch.no_grad():
        clean = float((standard_model(x).argmax(1) == y).float().mean())
    assert standard.clean_accuracy == pytest.approx(clean)
    for attack in ("fgsm", "pgd"):
        curve = [standard.robust_accuracy(attack, "linf", e) for e in GRID]
        assert curve == sorted(curve, reverse=True) and curve[0] <= clean
        s = standard.result(attack, "linf", 0.1)
        assert s.attack_success_rate == pytest.approx(1 - s.n_robust / s.n_correct)
    for c in standard.curve:  # the per-point worst case is below every attack
        assert c.robust_accuracy <= min(
            s.robust_accuracy for s in standard.results if s.eps == c.eps
        )
    assert standard.forward_passes >= sum(s.forward_passes for s in standard.results)
    assert standard.robust_accuracy("pgd", "linf", 0.1 + 1e-12) == standard.robust_accuracy(
        "pgd", "linf", 0.1
    )
    with pytest.raises(ParameterError, match="No result for"):
        standard.robust_accuracy("pgd", "linf", 0.3)


def test_adversarially_trained_model_scores_higher(reports):
    standard, robust = reports
    s, r = standard.result("pgd", "linf", 0.1), robust.result("pgd", "linf", 0.1)
    assert r.ci95[0] > s.ci95[1]  # the 95% intervals do not even overlap
    assert robust.eps50 is not None and standard.eps50 is not None
    assert robust.eps50 > standard.eps50


def test_eps50_interpolates_the_worst_case_curve(reports):
    standard, _ = reports
    half = standard.clean_accuracy / 2
    pts = [(0.0, standard.clean_accuracy)] + [(c.eps, c.robust_accuracy) for c in standard.curve]
    (e0, a0), (e1, a1) = next((p, q) for p, q in itertools.pairwise(pts) if q[1] <= half)
    assert standard.eps50 == pytest.approx(e0 + (a0 - half) * (e1 - e0) / (a0 - a1))


def test_without_labels_the_model_predictions_are_the_reference(standard_model, batch):
    r = evaluate(standard_model, batch[0][:50].numpy(), attacks="pgd", eps=[0.1], device="cpu")
    assert r.labels == "model-predictions" and r.clean_accuracy == 1.0
    assert r.to_dict()["labels"] == "model-predictions"


def test_eps_auto_follows_the_documented_rule(standard_model, batch):
    x, y = batch[0][:40], batch[1][:40]
    r = evaluate(standard_model, x, y, attacks=["fgsm"], device="cpu")
    assert [s.eps for s in r.results] == pytest.approx([k / 255 for k in (1, 2, 4, 8, 16)])
    assert r.config["eps_rule"] == "auto"
    flat = torch.nn.Sequential(torch.nn.Unflatten(1, (1, 8, 8)), standard_model)
    z = (x.reshape(40, 64) - 0.3) / 0.3  # standardised-looking tabular features
    t = evaluate(flat, z, y, attacks=["pgd"], norm="l2", bounds=None, device="cpu", steps=3)
    assert [s.eps for s in t.results] == pytest.approx(list(auto_eps(z, "l2", None)))


def test_cw_reports_its_median_minimal_perturbation(standard_model, batch):
    x, y = batch[0][:60], batch[1][:60]
    r = evaluate(
        standard_model,
        x,
        y,
        attacks=["cw-l2", "pgd"],
        norm="l2",
        eps=[0.5, 1.0],
        device="cpu",
        steps=20,
        options={"cw-l2": {"search_steps": 4}},
    )
    assert 0 < r.median_cw_l2 < math.inf
    cw = [s for s in r.results if s.attack == "cw-l2"]
    assert cw[0].backward_passes > 0 and cw[1].backward_passes == 0  # run once, booked once
    assert cw[0].robust_accuracy >= cw[1].robust_accuracy
    assert "Median minimal L2" in r.to_markdown()


def test_normalisation_is_applied_inside_the_model(standard_model, batch):
    x, y = batch[0][:40], batch[1][:40]
    mean, std = 0.3, 0.4

    def on_standardised(z):  # a model that expects (x - mean) / std
        return standard_model(z * std + mean)

    kw = {"attacks": ["fgsm"], "eps": [0.05, 0.1], "device": "cpu"}
    a = evaluate(on_standardised, x, y, mean=[mean], std=[std], **kw)
    b = evaluate(standard_model, x, y, **kw)
    assert [s.robust_accuracy for s in a.results] == [s.robust_accuracy for s in b.results]
    c = evaluate(Normalized(on_standardised, [mean], [std]), x, y, **kw)
    assert [s.robust_accuracy for s in c.results] == [s.robust_accuracy for s in b.results]


def test_same_seed_same_report_and_bf16_runs(standard_model, batch):
    x, y = batch[0][:40], batch[1][:40]
    kw = {"attacks": ["pgd"], "eps": [0.05, 0.1], "device": "cpu", "steps": 5, "seed": 7}
    a, b = evaluate(standard_model, x, y, **kw), evaluate(standard_model, x, y, **kw)
    assert [s.robust_accuracy for s in a.results] == [s.robust_accuracy for s in b.results]
    assert a.config_hash == b.config_hash
    bf = evaluate(standard_model, x, y, precision="bf16", **kw)
    assert bf.precision == "bf16" and bf.to_dict()["precision"] == "bf16"


def test_train_mode_and_probabilities_are_reported(standard_model, batch):
    x, y = batch[0][:30], batch[1][:30]
    inner = copy.deepcopy(standard_model)
    model = torch.nn.Sequential(inner, torch.nn.Softmax(dim=1)).train()
    inner[1].eval()
    r = evaluate(model, x, y, attacks=["fgsm"], eps=[0.1], device="cpu")
    assert model.training and inner.training and not inner[1].training  # each mode restored
    assert any("train mode" in w for w in r.warnings)
    assert any("probabilities" in w for w in r.warnings)
    assert "- warning: model outputs look like probabilities" in r.to_markdown()


def test_markdown_summary(reports):
    md = reports[0].to_markdown()
    assert md.startswith("### Robustness of `standard` (n=200, labels: provided)")
    assert "| pgd | linf | 0.1 |" in md and md.count("\n| ") == 1 + 8


def test_curve_png_needs_matplotlib(reports, tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="pip install matplotlib"):
            save_curve_png(reports[0], tmp_path / "curve.png")
    else:  # pragma: no cover - matplotlib is optional
        assert save_curve_png(reports[0], tmp_path / "curve.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        ({"attacks": ["pgdd"]}, UnknownAttackError, "Unknown attack 'pgdd'"),
        ({"attacks": ["fgsm"], "norm": "l2"}, UnknownNormError, "supports norm 'linf'"),
        ({"norm": "l1"}, UnknownNormError, "Unknown norm 'l1'"),
        ({"suite": "huge"}, UnknownAttackError, "Unknown suite"),
        ({"attacks": ["pgd"], "suite": "fast"}, ParameterError, "not both"),
        ({"attacks": []}, ParameterError, "attacks is empty"),
        ({"eps": [0.1, -1]}, ParameterError, "positive finite"),
        ({"eps": "big"}, ParameterError, "'auto' or positive"),
        ({"options": {"square": {}}}, ParameterError, "not run"),
        ({"batch_size": 0}, ParameterError, "batch_size"),
    ],
)
def test_bad_parameters_are_clear_errors(kw, error, message, standard_model, batch):
    with pytest.raises(error, match=message):
        evaluate(standard_model, batch[0][:5], batch[1][:5], device="cpu", **kw)


def test_bad_data_and_models_are_clear_errors(standard_model, batch):
    x, y = batch[0][:5], batch[1][:5]
    with pytest.raises(InputRangeError, match="bounds"):
        evaluate(standard_model, x * 255, y, device="cpu")
    with pytest.raises(ModelOutputError):
        evaluate(lambda z: standard_model(z)[:, 0], x, y, device="cpu")
    with pytest.raises(ValueError, match="N >= 1"):
        evaluate(standard_model, np.zeros((0, 1, 8, 8)), device="cpu")
    with pytest.raises(ValueError, match="labels in"):
        evaluate(standard_model, x, y + 10, device="cpu")


def test_report_is_frozen(reports):
    with pytest.raises(AttributeError):
        reports[0].n = 3
    assert isinstance(reports[0], RobustnessReport)
