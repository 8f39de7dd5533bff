"""``robustwatch score``, ``certify`` and ``history`` on a model file and a data file."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from agent.cli import main

pytestmark = pytest.mark.e2e

RESULT_KEYS = {
    "attack", "norm", "eps", "robust_accuracy", "ci95", "attack_success_rate", "seconds",
    "forward_passes", "backward_passes",
}  # fmt: skip
REPORT_KEYS = {
    "model", "n", "labels", "clean_accuracy", "results", "eps50", "device", "precision", "seed",
    "versions",
}  # fmt: skip


def robustwatch(*args) -> subprocess.CompletedProcess:
    """The real entry point in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "agent", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def cli(capsys):
    """The same command line in this process (no interpreter start-up per call)."""

    def run(*args) -> subprocess.CompletedProcess:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse refusing an argument
            code = exc.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A digits MLP exported with torch.export, and a test set in [0, 1] with labels."""
    tmp = tmp_path_factory.mktemp("score")
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x[:1400]), y[:1400]).backward()
        optimiser.step()
    model.eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (x[:4],), dynamic_shapes=({0: batch},))
    torch.export.save(program, tmp / "digits.pt2")
    np.savez(tmp / "test.npz", x=x[1400:].numpy(), y=y[1400:].numpy())
    return tmp


def test_score_writes_the_report_object_and_records_history(files, tmp_path):
    db = tmp_path / "scores.sqlite"
    args = [
        "score", "--model", files / "digits.pt2", "--data", files / "test.npz",
        "--attack", "fgsm", "--attack", "pgd", "--eps", "0.02,0.1", "--steps", "5",
        "--n", "150", "--json", tmp_path / "report.json", "--out", tmp_path / "out",
        "--history-db", db,
    ]  # fmt: skip
    done = robustwatch(*args)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report) >= REPORT_KEYS
    assert report["n"] == 150 and report["labels"] == "provided"
    assert report["model"] == "digits" and report["device"] == "cpu"
    assert len(report["results"]) == 4
    for result in report["results"]:
        assert set(result) >= RESULT_KEYS
        lo, hi = result["ci95"]
        assert 0 <= lo <= result["robust_accuracy"] <= hi <= 1
        assert result["robust_accuracy"] <= report["clean_accuracy"]
    pgd = {r["eps"]: r["robust_accuracy"] for r in report["results"] if r["attack"] == "pgd"}
    assert pgd[0.1] <= pgd[0.02]
    assert (tmp_path / "out" / "report.json").is_file()
    assert "pgd" in (tmp_path / "out" / "summary.md").read_text()
    assert "pgd" in done.stdout

    assert robustwatch(*args).returncode == 0  # a second score of the same model
    history = robustwatch("history", "--db", db, "--model", "digits")
    assert history.returncode == 0, history.stderr
    rows = [line for line in history.stdout.splitlines() if " pgd " in line]
    assert len(rows) == 4  # two scores, two eps each


def test_score_without_labels_uses_the_model_predictions(files, tmp_path, cli):
    data = np.load(files / "test.npz")
    np.save(tmp_path / "x.npy", data["x"][:60])
    done = cli(
        "score", "--model", files / "digits.pt2", "--data", tmp_path / "x.npy",
        "--attack", "fgsm", "--eps", "0.05", "--json", tmp_path / "r.json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["labels"] == "model-predictions" and report["clean_accuracy"] == 1.0


def test_certify_reports_radii_and_certified_accuracy(files, tmp_path, cli):
    done = cli(
        "certify", "--model", files / "digits.pt2", "--data", files / "test.npz",
        "--sigma", "0.25", "--n", "500", "--n0", "50", "--limit", "30",
        "--json", tmp_path / "c.json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["n_inputs"] == 30 and result["n"] == 500
    accuracies = [p["accuracy"] for p in result["certified_accuracy"]]
    assert accuracies == sorted(accuracies, reverse=True)  # larger radius, fewer certified


def test_bad_input_gets_one_clear_message_and_exit_2(files, tmp_path, cli):
    model, data = files / "digits.pt2", files / "test.npz"
    x = np.load(data)["x"]
    np.savez(tmp_path / "big.npz", x=x * 16)
    np.savez(tmp_path / "nox.npz", inputs=x)
    np.savez(tmp_path / "labels.npz", x=x, y=np.full(len(x), 12))
    (tmp_path / "pickled.pt").write_bytes(pickle.dumps({"not": "a model"}))
    cases = [
        (["--data", tmp_path / "missing.npz"], "does not exist"),
        (["--data", data, "--attack", "deepfool"], "deepfool"),
        (["--data", data, "--norm", "l1"], "l1"),
        (["--data", tmp_path / "big.npz"], "range"),
        (["--data", tmp_path / "nox.npz"], "'x'"),
        (["--data", tmp_path / "labels.npz"], "label"),
    ]
    for extra, needle in cases:
        done = cli("score", "--model", model, *extra, "--attack", "fgsm")
        assert done.returncode == 2, (extra, done.stderr)
        assert needle in done.stderr.lower() or needle in done.stderr, (needle, done.stderr)
        assert "Traceback" not in done.stderr
    done = cli("score", "--model", tmp_path / "pickled.pt", "--data", data)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "pickle" in done.stderr.lower() or "torchscript" in done.stderr.lower()


@pytest.fixture
def fresh_dynamo():
    """No compiled graph cached from an earlier test, in memory or on disk."""
    import torch._inductor.config as inductor

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    cache, inductor.fx_graph_cache = inductor.fx_graph_cache, False
    yield inductor
    inductor.fx_graph_cache = cache
    torch._dynamo.reset()


def test_score_compiles_the_model_on_request(files, tmp_path, cli, fresh_dynamo):
    args = [
        "score", "--model", files / "digits.pt2", "--data", files / "test.npz",
        "--attack", "pgd", "--eps", "0.05,0.1", "--steps", "5", "--n", "100",
    ]  # fmt: skip
    plain = cli(*args, "--json", tmp_path / "plain.json")
    assert plain.returncode == 0, plain.stderr
    assert not torch._dynamo.utils.counters["stats"]["unique_graphs"]
    compiled = cli(*args, "--compile", "--json", tmp_path / "compiled.json")
    assert compiled.returncode == 0, compiled.stderr
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # inductor ran it
    want, got = (json.loads((tmp_path / f).read_text()) for f in ("plain.json", "compiled.json"))
    assert got["clean_accuracy"] == want["clean_accuracy"]
    for a, b in zip(got["results"], want["results"], strict=True):
        assert a["eps"] == b["eps"]
        assert a["robust_accuracy"] == pytest.approx(b["robust_accuracy"], abs=0.011)  # a point


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # a TorchScript file
def test_score_compile_failures_are_one_clear_message(
    files, tmp_path, cli, fresh_dynamo, monkeypatch
):
    scripted = tmp_path / "scripted.pt"
    torch.jit.script(torch.nn.Linear(64, 10)).save(str(scripted))
    args = ["--data", files / "test.npz", "--attack", "fgsm", "--eps", "0.1", "--compile"]
    done = cli("score", "--model", scripted, *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "TorchScript" in done.stderr and "without --compile" not in done.stderr
    # a machine without a C++ compiler, where inductor cannot build the CPU kernels
    monkeypatch.setattr(fresh_dynamo.cpp, "cxx", (None, str(tmp_path / "no-such-g++")))
    done = cli("score", "--model", files / "digits.pt2", *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "torch.compile failed" in done.stderr and "without --compile" in done.stderr
    assert "C++ compiler" in done.stderr  # the reason, in its first line
