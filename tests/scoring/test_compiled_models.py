"""Attacks and ``evaluate`` take a ``torch.compile``d model, and answer as on the model itself.

On a GPU, compiling the model is what lifts bf16 attacks past twice torchattacks' speed
(benchmarks/attacks.py): eager bf16 leaves batch norm, ReLU and the residual sums unfused.
Here, on CPU, the graphs go through AOTAutograd with eager kernels (``aot_eager``): the
tracing, guards and recompiles a user's compiled model goes through, without the minutes a
C++ build of every kernel takes.
"""

import pytest
import torch

from scoring import evaluate
from scoring.attacks import ATTACKS, run_named
from tests.scoring.test_channels_last import weight_layouts


class CountingBackend:
    """``aot_eager``, counting how often its compiled graphs run: proof that the attack ran
    the compiled model, not an eager fallback."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, gm: torch.fx.GraphModule, example_inputs):
        compiled = torch._dynamo.lookup_backend("aot_eager")(gm, example_inputs)

        def run(*args):
            self.calls += 1
            return compiled(*args)

        return run


@pytest.fixture
def compiled(cnn_model):
    torch._dynamo.reset()  # each test compiles afresh, well inside the recompile limit
    backend = CountingBackend()
    yield torch.compile(cnn_model, backend=backend), backend
    torch._dynamo.reset()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_runs_the_compiled_model_and_answers_the_same(
    cnn_model, batch, compiled, name
):
    model, backend = compiled
    x, y = batch[0][:40], batch[1][:40]
    norm = "l2" if name == "cw-l2" else "linf"
    kw = {"norm": norm, "eps": None if name == "cw-l2" else 0.1, "steps": 5, "seed": 3}
    if name == "square":
        kw["n_queries"] = 100
    if name == "cascade":
        kw["options"] = {"square": {"n_queries": 100}}
    before = weight_layouts(cnn_model)
    eager = run_named(name, cnn_model, x, y, **kw)
    traced = run_named(name, model, x, y, **kw)
    assert backend.calls > 0, "the attack never ran the compiled graphs"
    assert weight_layouts(cnn_model) == before  # channels-last switched through the wrapper, undone
    assert int((eager.success != traced.success).sum()) <= 1  # float sums may differ in order
    assert int(eager.success.sum()) > 0
    assert traced.forward_passes == pytest.approx(eager.forward_passes, rel=0.05)


def test_evaluate_scores_a_compiled_model_as_the_model_itself(cnn_model, batch, compiled):
    model, backend = compiled
    x, y = batch[0][:60], batch[1][:60]
    kw = {"attacks": ["fgsm", "pgd"], "eps": [0.05, 0.1], "steps": 5, "device": "cpu"}
    eager, traced = evaluate(cnn_model, x, y, **kw), evaluate(model, x, y, **kw)
    assert backend.calls > 0
    assert traced.clean_accuracy == eager.clean_accuracy
    got = [r.robust_accuracy for r in traced.results]
    want = [r.robust_accuracy for r in eager.results]
    assert got == pytest.approx(want, abs=1 / 60 + 1e-9)  # a point at most, per (attack, eps)
    assert want[-1] < want[0] < eager.clean_accuracy  # the attacks did break points
