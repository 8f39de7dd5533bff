"""Attack and certification speed: robustwatch against torchattacks and ART, in one run.

Runs in the peers virtualenv (``make peers``), never in the main one::

    .peers/bin/python benchmarks/attacks.py                 # CPU, and CUDA when present
    .peers/bin/python benchmarks/attacks.py --models resnet18 --resnet-batch 32 --repeats 5

For each device and model, one batch and one L∞ PGD-``steps`` threat model (same eps, step
size and random-start rule for all) are attacked by

* robustwatch: ``scoring.attacks.pgd`` (fp32; bf16 autocast too, on GPU only by default);
  on the ResNet, also with ``channels_last=False`` (the model's own NCHW layout), to show
  what running the attack in channels-last memory buys;
* torchattacks ``PGD``; ART ``ProjectedGradientDescent`` on a ``PyTorchClassifier``;
* plain torch, the floor: ``steps`` x (forward + backward) and the projection, nothing else;
* torchattacks ``PGD``, scored: with the two forward passes our ``pgd`` runs besides its
  steps (on the clean points, to validate the outputs and find the points already wrong;
  and on the last iterate, to tell which points it broke), for like-for-like answers;
* on GPU, for the ResNet (``--compile``): ours (fp32 and bf16) and torchattacks ``PGD``
  given ``torch.compile(model)``, the same compiled module for all, the first call (which
  compiles) timed apart and printed. Eager bf16 leaves the memory-bound half of a ResNet
  step (batch norm, ReLU, the residual sums) unfused; compiling fuses it.

Models: the digits MLP of the parity tests (trained here in seconds; its timings are mostly
per-step overhead), and a CIFAR-sized ResNet-18 with random weights on random 32x32 images
labelled with its own predictions (only the timings mean something there). Each timing is
the best of ``--repeats`` rounds, implementations interleaved within a round (in a rotated
order from round to round), after a warm-up at the batch's shape; rounds stop early once
``--max-seconds`` is spent. Prints seconds, ratios
(ours / peer and ours / floor; below 1 means ours is faster) and the robust accuracy each
reached, to show they did the same work. On the digits MLP, the Square attack too, ours
against torchattacks' ``Square`` at an equal query budget per point, in seconds and in
microseconds per model query (one input row sent forward). Then randomized-smoothing
certification, ours against ART's ``RandomizedSmoothing.certify`` with the same sigma, n0, n
and batch size, in seconds per image. Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from _peers import (
    ResNet18,
    art_classifier,
    art_pgd,
    art_smoothing,
    load_digits,
    make_mlp,
    plain_pgd,
    robust_accuracy,
    torchattacks_attack,
    train,
)

from scoring import certify
from scoring.attacks import pgd, square
from scoring.inputs import ChannelsLast


@dataclass
class Workload:
    name: str
    model: torch.nn.Module
    x: torch.Tensor
    y: torch.Tensor
    eps: float
    alpha: float


@dataclass
class Timing:
    label: str
    run: Callable[[], Any]
    best: float = float("inf")
    output: Any = None  # what the last run returned
    first: float | None = None  # the first call, timed apart: torch.compile compiles there
    passes: str = ""


def race(timings: list[Timing], device: torch.device, repeats: int, max_seconds: float) -> None:
    """Best wall-clock time of each, over up to ``repeats`` rounds; within a round every
    implementation runs once, in an order rotated from round to round. Rounds stop once the
    timed runs took ``max_seconds`` in all."""
    spent = 0.0
    for i in range(repeats):
        for t in timings[i % len(timings) :] + timings[: i % len(timings)]:
            sync(device)
            start = time.perf_counter()
            t.output = t.run()
            sync(device)
            seconds = time.perf_counter() - start
            t.best, spent = min(t.best, seconds), spent + seconds
        if spent > max_seconds:
            break


@contextlib.contextmanager
def cudnn_autotuned():
    """cuDNN on, picking the fastest convolution algorithm per shape (the warm-up runs pay
    for the search). Not ``torch.backends.cudnn.flags(benchmark=True)``: its other
    arguments default to ``enabled=False``, which runs every convolution without cuDNN."""
    before = torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark
    torch.backends.cudnn.enabled = torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark = before


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def digits_mlp(device: torch.device, n: int, eps: float, steps: int) -> Workload:
    d = load_digits(seed=0)
    model = train(make_mlp(1), d.x_train, d.y_train, epochs=30, seed=1).to(device)
    x, y = d.x_test[:n].to(device), d.y_test[:n].to(device)
    name = f"digits MLP 64-32-10, {x.shape[0]} points"
    return Workload(name, model, x, y, eps, 2.5 * eps / steps)


def resnet18(device: torch.device, n: int, eps: float, alpha: float) -> Workload:
    model = ResNet18(seed=0).to(device).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((n, 3, 32, 32), generator=gen).to(device)
    with torch.no_grad():
        y = model(x).argmax(1)
    name = f"ResNet-18 (random weights), {n} x 3x32x32"
    return Workload(name, model, x, y, eps, alpha)


def bf16(device: torch.device):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def pgd_section(w: Workload, device: torch.device, steps: int, args) -> None:
    m, x, y, eps, alpha = w.model, w.x, w.y, w.eps, w.alpha
    classifier = art_classifier(m, tuple(x.shape[1:]), int(m(x[:1]).shape[1]), str(device))
    ours_result: dict[str, object] = {}

    def ours(
        precision: str, channels_last: bool | None = None, model: Any = m, key: str | None = None
    ) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            r = pgd(
                model,
                x,
                y,
                eps=eps,
                steps=steps,
                step_size=alpha,
                device=device,
                precision=precision,
                channels_last=channels_last,
                seed=0,
            )
            if key is None:
                ours_result[precision if channels_last is None else f"{precision}, own layout"] = r
            else:
                ours_result[key] = r
            return r.x_adv

        return run

    def floor_bf16() -> torch.Tensor:
        with bf16(device):
            return plain_pgd(m, x, y, eps=eps, alpha=alpha, steps=steps)

    timings = [
        Timing("robustwatch pgd", ours("fp32")),
        Timing(
            "torchattacks PGD",
            lambda: torchattacks_attack("PGD", m, x, y, eps=eps, alpha=alpha, steps=steps),
        ),
        Timing(
            "ART ProjectedGradientDescent",
            lambda: art_pgd(
                classifier, x, y, eps=eps, alpha=alpha, steps=steps, batch_size=x.shape[0]
            ),
        ),
        Timing(
            "plain torch (floor)", lambda: plain_pgd(m, x, y, eps=eps, alpha=alpha, steps=steps)
        ),
    ]
    use_bf16 = args.bf16 == "on" or (args.bf16 == "auto" and device.type == "cuda")
    if use_bf16:
        timings += [
            Timing("robustwatch pgd, bf16", ours("bf16")),
            Timing("plain torch (floor), bf16", floor_bf16),
        ]

    def torchattacks_scored() -> torch.Tensor:
        """What our pgd returns besides the points: which were right, which it broke."""
        with torch.no_grad():
            right = m(x).argmax(1) == y
        x_adv = torchattacks_attack("PGD", m, x, y, eps=eps, alpha=alpha, steps=steps)
        with torch.no_grad():
            _ = right & (m(x_adv).argmax(1) != y)
        return x_adv

    scored = Timing("torchattacks PGD, scored", torchattacks_scored)
    timings.append(scored)
    own_layout = []  # ours with the model's weights left in their own (NCHW) layout
    if ChannelsLast(m, x, None).active:  # image inputs to a convolutional model
        own_layout = [Timing("robustwatch pgd, NCHW", ours("fp32", False))]
        if use_bf16:
            own_layout.append(Timing("robustwatch pgd, bf16, NCHW", ours("bf16", False)))
    timings += own_layout
    compiled_rows = []
    if args.compile == "on" or (args.compile == "auto" and device.type == "cuda" and own_layout):
        compiled = torch.compile(m)  # one compiled module for all three rows, as a user would
        compiled_rows = [
            Timing("robustwatch pgd, compiled", ours("fp32", model=compiled, key="fp32, compiled")),
            Timing(
                "torchattacks PGD, compiled",
                lambda: torchattacks_attack(
                    "PGD", compiled, x, y, eps=eps, alpha=alpha, steps=steps
                ),
            ),
        ]
        if use_bf16:
            compiled_rows.insert(
                1,
                Timing(
                    "robustwatch pgd, bf16, compiled",
                    ours("bf16", model=compiled, key="bf16, compiled"),
                ),
            )
        for t in compiled_rows:  # compiling happens in the first call: timed apart
            sync(device)
            start = time.perf_counter()
            t.run()
            sync(device)
            t.first = time.perf_counter() - start
    timings += compiled_rows
    plain_pgd(m, x, y, eps=eps, alpha=alpha, steps=1)  # warm-up at the batch's shape
    race(timings, device, args.repeats, args.max_seconds)
    n = x.shape[0]
    for precision, t in (("fp32", timings[0]), ("bf16", timings[4] if use_bf16 else None)):
        if t is not None:
            r = ours_result[precision]
            t.passes = f"{r.forward_passes:,} fwd / {r.backward_passes:,} bwd rows"
    for t in timings[1:4]:
        t.passes = f"{steps * n:,} fwd+bwd rows"
    if use_bf16:
        timings[5].passes = timings[3].passes
    scored.passes = f"{steps * n:,} fwd+bwd + {2 * n:,} fwd rows"
    for t in own_layout:
        r = ours_result["bf16, own layout" if "bf16" in t.label else "fp32, own layout"]
        t.passes = f"{r.forward_passes:,} fwd / {r.backward_passes:,} bwd rows"
    for t in compiled_rows:
        if t.label.startswith("robustwatch"):
            r = ours_result["bf16, compiled" if "bf16" in t.label else "fp32, compiled"]
            t.passes = f"{r.forward_passes:,} fwd / {r.backward_passes:,} bwd rows"
        else:
            t.passes = timings[1].passes
        t.passes += f"; first call {t.first:.1f} s"

    print(f"\n== {device.type}: {w.name}")
    print(
        f"   PGD-{steps}, L∞ eps {eps:.4g}, step {alpha:.4g}, 1 random start; "
        f"best of up to {args.repeats} rounds"
    )
    print(f"   {'implementation':<30} {'seconds':>9} {'ours ÷ this':>12} {'robust acc':>11}  work")
    ours_fp32, ours_bf16 = timings[0].best, timings[4].best if use_bf16 else None
    for t in timings:
        mine = ours_bf16 if "bf16" in t.label and ours_bf16 is not None else ours_fp32
        if t in compiled_rows:  # compiled against compiled
            mine = t.best if "bf16" in t.label else compiled_rows[0].best
        robust = robust_accuracy(m, t.output, y, x, eps)
        print(f"   {t.label:<30} {t.best:>9.4f} {mine / t.best:>12.2f} {robust:>10.1%}  {t.passes}")
    ratios = ", ".join(
        f"{ours_fp32 / t.best:.2f} of {t.label.split(' (')[0]}" for t in timings[1:4]
    )
    print(f"   ours (fp32) time as a fraction of: {ratios}")
    print(
        f"   ... and of torchattacks PGD, scored: {ours_fp32 / scored.best:.2f} (its PGD, then "
        "a forward pass on the clean points and one on its output: the two that our pgd runs "
        "to tell which points were right and which it broke, and to validate the outputs)"
    )
    if use_bf16:
        print(
            f"   ours bf16 / ours fp32: {timings[4].best / ours_fp32:.2f}; "
            f"bf16 floor / fp32 floor: {timings[5].best / timings[3].best:.2f}"
        )
    if compiled_rows:
        theirs, theirs_compiled = timings[1].best, compiled_rows[-1].best
        mine_fp32 = compiled_rows[0].best
        print(
            f"   torch.compile(model), its compiling (the first call) left out: ours fp32 / "
            f"torchattacks PGD on the same compiled model: {mine_fp32 / theirs_compiled:.2f}; "
            f"ours fp32 compiled / torchattacks PGD as it runs (eager): {mine_fp32 / theirs:.2f}"
        )
        if use_bf16:
            mine_bf16 = compiled_rows[1].best
            print(
                f"   ours bf16 compiled / torchattacks PGD (eager): {mine_bf16 / theirs:.2f}, "
                f"i.e. {theirs / mine_bf16:.2f}x its speed; / torchattacks PGD on the compiled "
                f"model: {mine_bf16 / theirs_compiled:.2f}; / ours bf16 eager: "
                f"{mine_bf16 / ours_bf16:.2f}"
            )
    for t, mine in zip(own_layout, (ours_fp32, ours_bf16), strict=False):
        print(
            f"   channels-last{', bf16' if 'bf16' in t.label else ''}: ours (weights and "
            f"inputs switched to NHWC for the attack) / ours in the model's own NCHW layout: "
            f"{mine / t.best:.2f}"
        )


class Counting(torch.nn.Module):
    """``model`` that counts the input rows sent through it."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        return self.model(x)


def square_section(w: Workload, device: torch.device, args) -> None:
    m, eps, q = w.model, w.eps, args.square_queries
    x, y = w.x[: args.square_points], w.y[: args.square_points]

    def ours(model: Any = m) -> torch.Tensor:
        return square(model, x, y, eps=eps, n_queries=q, device=device, seed=0).x_adv

    def theirs(model: Any = m) -> torch.Tensor:  # one query for the stripes, then q - 1
        return torchattacks_attack("Square", model, x, y, eps=eps, n_queries=q - 1, seed=0)

    timings = [Timing("robustwatch square", ours), Timing("torchattacks Square", theirs)]
    race(timings, device, args.repeats, args.max_seconds)
    print(f"\n== {device.type}: Square, {w.name.split(',')[0]}, {x.shape[0]} points")
    print(
        f"   L∞ eps {eps:.4g}, {q:,} queries per point at most; best of up to {args.repeats} rounds"
    )
    head = f"{'seconds':>9} {'ours ÷ this':>12} {'µs / query':>11} {'robust acc':>11}"
    print(f"   {'implementation':<30} {head}  work")
    for t in timings:
        counted = Counting(m)
        (ours if t is timings[0] else theirs)(counted)  # untimed: the queries each one made
        robust = robust_accuracy(m, t.output, y, x, eps)
        print(
            f"   {t.label:<30} {t.best:>9.4f} {timings[0].best / t.best:>12.2f} "
            f"{t.best / counted.rows * 1e6:>11.2f} {robust:>10.1%}  {counted.rows:,} queries"
        )


def certify_section(w: Workload, device: torch.device, args) -> None:
    m, x = w.model, w.x[: args.certify_images]
    n_classes = int(m(x[:1]).shape[1])
    sigma, n0, n, batch = args.sigma, args.certify_n0, args.certify_n, args.certify_batch
    smoothing = art_smoothing(
        m, tuple(x.shape[1:]), n_classes, sigma=sigma, n0=n0, alpha=0.001, device=str(device)
    )
    certify(m, x[:1], sigma, n0=10, n=100, batch_size=batch, device=device)  # warm-up

    def art() -> tuple[np.ndarray, np.ndarray]:
        np.random.seed(0)  # ART draws its noise from numpy's global generator
        return smoothing.certify(x.detach().cpu().numpy(), n=n, batch_size=batch)

    timings = [
        Timing(
            "robustwatch certify",
            lambda: certify(m, x, sigma, n0=n0, n=n, alpha=0.001, batch_size=batch, device=device),
        ),
        Timing("ART RandomizedSmoothing", art),
    ]
    race(timings, device, args.repeats, args.max_seconds)
    ours, (pred, radius) = timings[0].output, timings[1].output
    t_ours, t_art = timings[0].best, timings[1].best
    k = x.shape[0]
    print(f"\n== {device.type}: certify, {w.name.split(',')[0]}, {k} images")
    print(
        f"   sigma {sigma}, n0 {n0}, n {n:,}, alpha 0.001, batch {batch:,} noisy rows; "
        f"best of up to {args.repeats} rounds"
    )
    print(f"   {'implementation':<30} {'s / image':>10} {'mean radius':>12} {'abstain':>8}")
    for label, seconds, p, r in (
        ("robustwatch certify", t_ours, ours.prediction, ours.radius),
        ("ART RandomizedSmoothing", t_art, pred, radius),
    ):
        print(f"   {label:<30} {seconds / k:>10.4f} {r.mean():>12.4f} {np.mean(p == -1):>8.0%}")
    agree = int((ours.prediction == pred).sum())
    print(f"   ours ÷ ART time: {t_ours / t_art:.3f}; same prediction on {agree}/{k} images")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto: CPU, then CUDA when present",
    )
    parser.add_argument("--models", default="mlp,resnet18", help="comma-separated: mlp, resnet18")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--mlp-eps", type=float, default=0.1)
    parser.add_argument("--mlp-points", type=int, default=597, help="at most 597 test digits")
    parser.add_argument("--resnet-eps", type=float, default=8 / 255)
    parser.add_argument("--resnet-alpha", type=float, default=2 / 255)
    parser.add_argument(
        "--resnet-batch",
        type=int,
        default=None,
        help="images per batch (default: 8 on CPU, 1024 on CUDA: at 256 an H100 waits on "
        "kernel launches, fp32 and bf16 taking the same time per step)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds at most")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=120.0,
        help="stop adding rounds once the timed runs took this long",
    )
    parser.add_argument(
        "--bf16",
        choices=["auto", "on", "off"],
        default="auto",
        help="also time precision='bf16' (auto: on GPU only)",
    )
    parser.add_argument(
        "--compile",
        choices=["auto", "on", "off"],
        default="auto",
        help="also time our pgd and torchattacks' PGD on torch.compile(model) (auto: on GPU, "
        "for the ResNet; on CPU inductor compiles C++ kernels for minutes)",
    )
    parser.add_argument("--square-queries", type=int, default=1000, help="per point")
    parser.add_argument("--square-points", type=int, default=200)
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument(
        "--certify-images", type=int, default=None, help="default: 20 on CPU, 100 on CUDA"
    )
    parser.add_argument("--certify-n0", type=int, default=100)
    parser.add_argument("--certify-n", type=int, default=10_000)
    parser.add_argument("--certify-batch", type=int, default=10_000)
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: its own)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    logging.getLogger("art").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="art")
    devices = [torch.device("cpu")] if args.device != "cuda" else []
    if args.device != "cpu" and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    elif args.device == "cuda":
        parser.error("--device cuda, but CUDA is not available here")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
        f"CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}"
    )
    if torch.cuda.is_available():  # "fp32" below means what these say
        print(
            f"cuDNN {torch.backends.cudnn.version()}; TF32 in convolutions: "
            f"{torch.backends.cudnn.allow_tf32}, in matrix products: "
            f"{torch.backends.cuda.matmul.allow_tf32}"
        )
    for device in devices:
        gpu = device.type == "cuda"
        with cudnn_autotuned() if gpu else contextlib.nullcontext():
            if "mlp" in models:
                w = digits_mlp(device, args.mlp_points, args.mlp_eps, args.steps)
                pgd_section(w, device, args.steps, args)
                square_section(w, device, args)
            if "resnet18" in models:
                batch = args.resnet_batch or (1024 if gpu else 8)
                w = resnet18(device, batch, args.resnet_eps, args.resnet_alpha)
                pgd_section(w, device, args.steps, args)
            images = args.certify_images or (100 if gpu else 20)
            d = load_digits(seed=0)
            noisy = train(make_mlp(4), d.x_train, d.y_train, epochs=30, seed=4, noise=args.sigma)
            w = Workload(
                "digits MLP trained with noise",
                noisy.to(device),
                d.x_test[:images].to(device),
                d.y_test[:images].to(device),
                0,
                0,
            )
            certify_section(w, device, args)
            if gpu and "resnet18" in models:
                w = resnet18(device, images, args.resnet_eps, args.resnet_alpha)
                certify_section(w, device, args)


if __name__ == "__main__":
    main()
