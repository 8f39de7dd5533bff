"""Contract tests every attack passes, and the invariants of each one, on digits models."""

import sys

import pytest
import torch

from scoring.attacks import ATTACKS, apgd, cascade, cw_l2, fgsm, pgd, run_named, square
from scoring.attacks.apgd import checkpoints
from scoring.attacks.square import p_schedule
from scoring.exceptions import ParameterError, UnknownAttackError, UnknownNormError

EPS = {"linf": 0.1, "l2": 0.8}
FAST = {  # small budgets: the contract does not depend on them
    "fgsm": {},
    "pgd": {"steps": 10},
    "apgd-ce": {"steps": 10},
    "apgd-dlr": {"steps": 10},
    "apgd-t": {"steps": 5, "n_target_classes": 3},
    "cw-l2": {"steps": 20, "search_steps": 3},
    "square": {"n_queries": 60},
    "cascade": {
        "steps": 5,
        "options": {"apgd-t": {"n_target_classes": 2}, "square": {"n_queries": 30}},
    },
}
CASES = [(name, norm) for name, spec in ATTACKS.items() for norm in spec.norms]


def _run(name, norm, model, x, y, **kw):
    eps = None if ATTACKS[name].minimal else EPS[norm]
    return run_named(name, model, x, y, norm=norm, eps=eps, **{**FAST[name], **kw})


@pytest.fixture(scope="module")
def small(batch):
    return batch[0][:48], batch[1][:48]


@pytest.mark.parametrize("model_name", ["standard_model", "cnn_model"])
@pytest.mark.parametrize(("name", "norm"), CASES)
def test_contract(name, norm, model_name, small, request):
    """On the MLP, and on the CNN, which attacks run in channels-last memory."""
    standard_model = request.getfixturevalue(model_name)
    x, y = small
    r = _run(name, norm, standard_model, x, y, seed=3)
    n = x.shape[0]
    assert r.attack == name and r.norm == norm
    assert r.x_adv.shape == x.shape and r.success.shape == (n,) and r.success.dtype == torch.bool
    assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1  # inside the input range
    d = (r.x_adv - x).flatten(1)
    norms = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    torch.testing.assert_close(r.norms, norms)
    if not ATTACKS[name].minimal:
        assert bool((norms <= EPS[norm] * (1 + 1e-5) + 1e-6).all())  # inside the eps ball
    with torch.no_grad():
        pred, clean = standard_model(r.x_adv).argmax(1), standard_model(x).argmax(1)
    assert torch.equal(r.success, pred != y)  # success means the fp32 model is fooled
    assert bool(r.success[clean != y].all())  # wrong from the start: broken at no cost
    assert torch.equal(r.x_adv[~r.success], x[~r.success])  # failures return x itself
    assert 0 < r.success[clean == y].float().mean() < 1
    assert r.forward_passes >= n and r.seconds > 0
    assert all(p.grad is None for p in standard_model.parameters())  # input gradients only
    assert (r.queries is not None) == (name in ("square", "cascade"))
    again = _run(name, norm, standard_model, x, y, seed=3)  # seeded: reproducible
    assert torch.equal(again.x_adv, r.x_adv) and again.forward_passes == r.forward_passes


@pytest.mark.parametrize(
    ("attack", "kw"),
    [
        (pgd, {"eps": 0.2, "steps": 20}),
        (pgd, {"eps": 1.5, "norm": "l2", "steps": 20}),
        (apgd, {"eps": 0.2, "steps": 20}),
        (apgd, {"eps": 0.2, "steps": 20, "loss": "dlr"}),
        (cw_l2, {"steps": 30, "search_steps": 3}),
        (square, {"eps": 0.25, "n_queries": 150}),
        (fgsm, {"eps": 0.3}),
    ],
    ids=["pgd", "pgd-l2", "apgd-ce", "apgd-dlr", "cw-l2", "square", "fgsm"],
)
def test_targeted_attacks_reach_their_targets(attack, kw, standard_model, small):
    x, y = small
    target = (y + 1) % 10
    r = attack(standard_model, x, y, target=target, **kw)
    with torch.no_grad():
        pred = standard_model(r.x_adv).argmax(1)
    assert torch.equal(r.success, pred == target)
    assert r.success.float().mean() > 0.2


def test_pgd_more_restarts_are_never_weaker(standard_model, small):
    x, y = small
    one = pgd(standard_model, x, y, eps=0.06, steps=5, restarts=1, seed=1)
    three = pgd(standard_model, x, y, eps=0.06, steps=5, restarts=3, seed=1)
    assert bool((three.success | ~one.success).all())  # every point broken by one stays so
    assert torch.equal(three.x_adv[one.success], one.x_adv[one.success])


def test_pgd_more_steps_are_never_weaker(standard_model, batch):
    x, y = batch
    few = pgd(standard_model, x, y, eps=0.08, steps=5, step_size=0.02, seed=2)
    many = pgd(standard_model, x, y, eps=0.08, steps=20, step_size=0.02, seed=2)
    assert bool((many.success | ~few.success).all())  # same trajectory, continued
    default_few = pgd(standard_model, x, y, eps=0.08, steps=3, seed=2)
    default_many = pgd(standard_model, x, y, eps=0.08, steps=30, seed=2)
    assert default_many.robust_accuracy <= default_few.robust_accuracy


def test_pgd_keeps_the_first_fooling_iterate_not_the_last(standard_model, small):
    x, y = small
    r = pgd(standard_model, x, y, eps=0.3, steps=40, step_size=0.1, seed=0)
    assert r.success.float().mean() > 0.9  # a large step would leave the adversarial region
    with torch.no_grad():
        assert torch.equal(standard_model(r.x_adv).argmax(1) != y, r.success)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_at_eps_zero_breaks_only_what_the_clean_model_gets_wrong(standard_model, small, norm):
    x, y = small
    r = pgd(standard_model, x, y, norm=norm, eps=0.0, steps=5, seed=0)
    with torch.no_grad():
        wrong = standard_model(x).argmax(1) != y
    assert torch.equal(r.x_adv, x) and torch.equal(r.success, wrong)


def test_apgd_checkpoints_follow_the_paper():
    assert checkpoints(100) == (22, 41, 57, 70, 80, 87, 93, 99)
    assert checkpoints(10) == (3, 5, 6, 7, 8, 9, 10)


def test_apgd_is_at_least_as_strong_as_pgd_here(robust_model, batch):
    x, y = batch
    p = pgd(robust_model, x, y, eps=0.1, steps=20, seed=0).robust_accuracy
    a = apgd(robust_model, x, y, eps=0.1, steps=20, seed=0).robust_accuracy
    assert a <= p + 0.02


def test_apgd_t_targets_the_top_wrong_classes_and_counts_any_error(standard_model, small):
    x, y = small
    r = apgd(standard_model, x, y, eps=0.1, loss="dlr", n_target_classes=3, steps=10)
    with torch.no_grad():
        assert torch.equal(standard_model(r.x_adv).argmax(1) != y, r.success)
    with pytest.raises(ParameterError, match="not both"):
        apgd(standard_model, x, y, eps=0.1, n_target_classes=3, target=(y + 1) % 10)


def test_dlr_on_too_few_classes_falls_back_to_ce_with_a_warning():
    x, y = torch.tensor([[0.6, 0.4], [0.2, 0.6]]), torch.tensor([0, 1])
    r = apgd(torch.nn.Identity(), x, y, eps=0.15, loss="dlr", steps=10)
    assert any("used cross-entropy" in w for w in r.warnings)
    assert r.success.tolist() == [True, False]


def test_cw_finds_near_minimal_perturbations_of_a_linear_model():
    x = torch.tensor([[0.6, 0.4], [0.3, 0.6], [0.5, 0.1]])
    y = torch.tensor([0, 1, 0])
    r = cw_l2(torch.nn.Identity(), x, y, steps=200, search_steps=8)
    exact = (x[:, 0] - x[:, 1]).abs() / 2**0.5  # distance to the decision boundary
    assert r.success.all()
    assert bool((r.norms >= exact - 1e-6).all()) and bool((r.norms <= exact * 1.05).all())


def test_cw_minimal_norms_agree_with_pgd(standard_model, batch):
    x, y = batch
    r = cw_l2(standard_model, x, y, steps=50, search_steps=5)
    with torch.no_grad():
        correct = standard_model(x).argmax(1) == y
    median = float(torch.where(r.success, r.norms, torch.inf)[correct].median())
    p = pgd(standard_model, x[correct], y[correct], eps=median, norm="l2", steps=20)
    assert p.robust_accuracy < 0.7  # PGD at the C&W median breaks about half the points


def test_square_counts_queries_and_uses_no_gradients(standard_model, small):
    x, y = small
    r = square(standard_model, x, y, eps=0.1, n_queries=40, seed=0)
    with torch.no_grad():
        clean_ok = standard_model(x).argmax(1) == y
    assert r.backward_passes == 0
    assert bool((r.queries[~clean_ok] == 0).all())
    assert bool((r.queries[clean_ok] >= 1).all()) and int(r.queries.max()) <= 40
    assert int(r.queries.sum()) + x.shape[0] == r.forward_passes
    assert bool((r.queries[clean_ok & ~r.success] == 40).all())


def test_square_p_schedule_halves_at_the_papers_iterations():
    assert p_schedule(0.8, 10, 10_000) == 0.8 and p_schedule(0.8, 11, 10_000) == 0.4
    assert p_schedule(0.8, 9_999, 10_000) == 0.8 / 512
    assert p_schedule(0.8, 5, 1000) == 0.4  # rescaled: iteration 5 of 1000 is 50 of 10,000


def test_square_on_feature_vectors(standard_model, small):
    x, y = small
    flat = torch.nn.Sequential(torch.nn.Unflatten(1, (1, 8, 8)), standard_model)
    r = square(flat, x.reshape(-1, 64), y, eps=0.1, n_queries=60)
    assert bool((r.norms <= 0.1 + 1e-6).all()) and r.success.any()


def test_cascade_is_never_weaker_than_any_of_its_parts(standard_model, small):
    x, y = small
    opts = {"apgd-t": {"n_target_classes": 2}, "square": {"n_queries": 30}}
    c = cascade(standard_model, x, y, eps=0.06, steps=5, options=opts, seed=0)
    for i, name in enumerate(("apgd-ce", "apgd-t", "square")):
        steps = {} if name == "square" else {"steps": 5}
        alone = run_named(
            name, standard_model, x, y, norm="linf", eps=0.06, seed=i, **steps, **opts.get(name, {})
        )
        assert c.robust_accuracy <= alone.robust_accuracy
    first = apgd(standard_model, x, y, eps=0.06, steps=5, seed=0)
    assert bool((c.success | ~first.success).all())  # the first stage's breaks are kept


def test_cascade_skips_square_for_l2_with_a_warning(standard_model, small):
    x, y = small
    r = cascade(
        standard_model,
        x,
        y,
        eps=0.5,
        norm="l2",
        steps=3,
        options={"apgd-t": {"n_target_classes": 1}},
    )
    assert any("'square' does not support norm 'l2'" in w for w in r.warnings)


def test_bf16_precision_decides_success_in_fp32(standard_model, small):
    x, y = small
    r = pgd(standard_model, x, y, eps=0.1, steps=5, precision="bf16")
    with torch.no_grad():
        assert torch.equal(standard_model(r.x_adv).argmax(1) != y, r.success)
    assert r.forward_passes > pgd(standard_model, x, y, eps=0.1, steps=5).forward_passes
    # only the iterates that the autocast logits call fooled pay an fp32 pass, not every step
    fp32_rows = r.forward_passes - r.backward_passes  # clean, final and confirming passes
    assert fp32_rows < 2 * x.shape[0] + r.backward_passes // 2


def test_unknown_attacks_and_norms_are_clear_errors(standard_model, small):
    x, y = small
    with pytest.raises(UnknownAttackError, match=r"Unknown attack 'pgdd'\. Choose among"):
        run_named("pgdd", standard_model, x, y, norm="linf", eps=0.1)
    with pytest.raises(UnknownNormError, match="supports norm 'linf', not 'l2'"):
        run_named("square", standard_model, x, y, norm="l2", eps=0.1)
    with pytest.raises(UnknownNormError, match="'norm' parameter of pgd"):
        pgd(standard_model, x, y, eps=0.1, norm="l1")
    with pytest.raises(ParameterError, match="'steps' parameter of pgd must be an int >= 1"):
        pgd(standard_model, x, y, eps=0.1, steps=0)
    with pytest.raises(UnknownAttackError):
        cascade(standard_model, x, y, eps=0.1, attacks=["apgd-ce", "nope"])


def test_apgd_checkpoint_conditions():
    from scoring.attacks.apgd import _checkpoint

    t = torch.tensor
    s = {  # four points, a span of 10 steps since the last checkpoint
        "ups": t([9.0, 5.0, 9.0, 9.0]),  # loss rose in 9, 5, 9, 9 of the 10 steps
        "halved": t([False, False, False, True]),
        "fmax": t([2.0, 2.0, 1.0, 1.0]),
        "fmax_mark": t([1.0, 1.0, 1.0, 1.0]),  # points 2 and 3 did not improve
        "eta": t([0.5, 0.5, 0.5, 0.5]),
        "xk": t([[0.0], [0.0], [0.0], [0.0]]),
        "xprev": t([[0.5], [0.5], [0.5], [0.5]]),
        "xmax": t([[1.0], [1.0], [1.0], [1.0]]),
        "g": t([[0.0], [0.0], [0.0], [0.0]]),
        "gmax": t([[3.0], [3.0], [3.0], [3.0]]),
        "f": t([0.0, 0.0, 0.0, 0.0]),
    }
    _checkpoint(s, span=10, rho=0.75, rows=(-1, 1))
    # 0: progressing; 1: condition 1 (5 < 7.5); 2: condition 2; 3: halved last time: spared
    assert s["eta"].tolist() == [0.5, 0.25, 0.25, 0.5]
    assert s["xk"][:, 0].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert s["xprev"][:, 0].tolist() == [0.5, 1.0, 1.0, 0.5]  # momentum kept where not reset
    assert s["g"][:, 0].tolist() == [0.0, 3.0, 3.0, 0.0]
    assert s["halved"].tolist() == [False, True, True, False] and s["ups"].sum() == 0


def test_apgd_answers_the_same_when_points_leave_only_at_synced_steps(
    standard_model, small, monkeypatch
):
    """As on an accelerator, where fooled points stay (frozen in the answer) until a synced
    step: the same first fooling iterates, only more rows computed."""
    apgd_module = sys.modules["scoring.attacks.apgd"]  # the package exports the function
    x, y = small
    kw = {"eps": 0.1, "steps": 30, "n_target_classes": 2, "seed": 3}
    eager = [apgd(standard_model, x, y, loss=loss, **kw) for loss in ("ce", "dlr")]
    monkeypatch.setattr(apgd_module, "drops_at_once", lambda device: False)
    lazy = [apgd(standard_model, x, y, loss=loss, **kw) for loss in ("ce", "dlr")]
    for e, z in zip(eager, lazy, strict=True):
        assert e.success.any() and torch.equal(e.success, z.success)
        assert torch.equal(e.x_adv, z.x_adv) and z.forward_passes >= e.forward_passes
    assert sum(z.forward_passes for z in lazy) > sum(e.forward_passes for e in eager)


def test_bf16_apgd_counts_only_what_fp32_confirms(standard_model, small, monkeypatch):
    x, y = small
    apgd_module = sys.modules["scoring.attacks.apgd"]
    for lazy in (False, True):  # points leave at once (CPU), or at synced steps (accelerators)
        if lazy:
            monkeypatch.setattr(apgd_module, "drops_at_once", lambda device: False)
        r = apgd(standard_model, x, y, eps=0.1, steps=20, precision="bf16", seed=1)
        with torch.no_grad():
            assert torch.equal(standard_model(r.x_adv).argmax(1) != y, r.success)
        assert r.success.any()
        assert r.forward_passes - r.backward_passes < 2 * x.shape[0] + r.backward_passes // 2
