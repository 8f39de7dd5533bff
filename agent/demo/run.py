"""The demo: broker, model, traffic and agent on this machine, with a live summary."""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from prometheus_client import CollectorRegistry

from agent.config import config_from_dict
from agent.demo import traffic
from agent.demo.broker import LocalBroker
from agent.demo.model import DigitsModel, load_digits_split

log = logging.getLogger(__name__)

#: Seconds of clean traffic, then of drifted traffic, repeating.
PHASE_SECONDS = 20.0
#: Share of the events that are an attacker's probes.
ATTACK_SHARE = 0.02
TOPIC = "inference.digits"


def _drifted(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A world that moved on: a dimmer, noisier scanner (pixels in [0, 16])."""
    return np.clip(0.6 * x + rng.normal(0.0, 2.0, size=x.shape), 0.0, 16.0)


def _probe(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A query of a black-box attack around ``x``: a few pixels pushed by 2 grey levels."""
    step = rng.choice([-2.0, 0.0, 2.0], size=x.shape, p=[0.01, 0.98, 0.01])
    return np.clip(x + step, 0.0, 16.0)


class TrafficGenerator(threading.Thread):
    """Play a model server: score digits and write request/response CloudEvents to Kafka.

    Clean traffic draws the held-out digits (the same distribution as the reference) from
    twenty clients; drifted traffic passes them through :func:`_drifted`. One record in a
    hundred is broken, and one client, ``mallory``, runs a query attack throughout: small
    probes around one digit (``attack_base``), ``ATTACK_SHARE`` of the traffic.
    """

    def __init__(
        self,
        bootstrap: str,
        model: DigitsModel,
        x: np.ndarray,
        attack_base: np.ndarray,
        rate: float,
        stop: threading.Event,
    ):
        super().__init__(name="demo-traffic", daemon=True)
        self.bootstrap, self.model, self.x, self.rate, self.stop = bootstrap, model, x, rate, stop
        self.attack_base = attack_base
        self.sent = 0
        self.drifted = False
        self.started_at = time.monotonic()

    def run(self) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=10)
        rng = np.random.default_rng(0)
        tick = 0.1
        per_tick = max(1, round(self.rate * tick))
        next_tick = time.monotonic()
        try:
            while not self.stop.is_set():
                elapsed = time.monotonic() - self.started_at
                self.drifted = int(elapsed // PHASE_SECONDS) % 2 == 1
                rows = self.x[rng.integers(0, len(self.x), size=per_tick)]
                if self.drifted:
                    rows = _drifted(rows, rng)
                clients = [f"app-{i}" for i in rng.integers(0, 20, size=per_tick)]
                for i in np.flatnonzero(rng.random(per_tick) < ATTACK_SHARE).tolist():
                    rows[i], clients[i] = _probe(self.attack_base, rng), "mallory"
                probs = self.model.predict_proba(rows)
                for row, p, client in zip(rows.round(3), probs.round(4), clients, strict=True):
                    self.sent += 1
                    event_id = f"demo-{self.sent}"
                    if self.sent % 100 == 0:  # now and then a broken record: a dead letter
                        producer.send(TOPIC, key=event_id.encode(), value=b"{oops")
                        continue
                    for key, value, headers in traffic.kserve_cloudevents(
                        event_id, row, p, model="digits", client_id=client
                    ):
                        producer.send(TOPIC, key=key, value=value, headers=headers)
                next_tick += tick
                self.stop.wait(max(0.0, next_tick - time.monotonic()))
        finally:
            producer.close(timeout=5)


def _summary(registry: CollectorRegistry, generator: TrafficGenerator, url: str, last: dict) -> str:
    def value(name: str, **labels) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    dead_letters = sum(
        sample.value
        for family in registry.collect()
        if family.name == "robustwatch_dead_letters"
        for sample in family.samples
        if sample.name.endswith("_total")
    )

    processed = value("robustwatch_events_total", model="digits", outcome="processed")
    now = time.monotonic()
    rate = (processed - last.get("processed", 0.0)) / max(1e-9, now - last.get("t", now - 1))
    last.update(processed=processed, t=now)
    drift = value("robustwatch_drift_detected", model="digits", detector="ks")
    p_value = registry.get_sample_value(
        "robustwatch_drift_p_value", {"model": "digits", "detector": "ks"}
    )
    p_text = "warming up" if p_value is None else f"p={p_value:.2g}"
    squeeze = value("robustwatch_flags_total", model="digits", detector="adversarial:squeeze")
    suspects = value("robustwatch_query_attack_suspects")
    return (
        f"traffic {'DRIFTED' if generator.drifted else 'clean  '} | "
        f"processed {processed:7.0f} ({rate:6.0f}/s) | "
        f"dead letters {dead_letters:4.0f} | "
        f"drift:ks {'YES' if drift else 'no '} ({p_text}) | "
        f"adversarial:squeeze {squeeze:5.0f} | query-attack suspects {suspects:.0f} | "
        f"metrics {url}"
    )


def run_demo(duration: float | None, rate: float, metrics_port: int, stop: threading.Event) -> int:
    """Run everything until ``stop`` is set or ``duration`` seconds passed; returns 0."""
    from agent.runner import Agent

    out = sys.stdout
    out.write("robustwatch demo: training a digits classifier... ")
    out.flush()
    split = load_digits_split(seed=0)
    model = DigitsModel.train(split.x_train, split.y_train, seed=0)
    out.write(f"test accuracy {model.accuracy(split.x_test, split.y_test):.1%}\n")
    with TemporaryDirectory(prefix="robustwatch-demo-") as tmp, LocalBroker() as broker:
        reference = Path(tmp) / "reference.npz"
        # Held-out digits, not the training set: the model is overconfident on what it was
        # trained on, and per-input detectors calibrated there would fire too often.
        half = len(split.x_test) // 2
        x_ref, x_live = split.x_test[:half], split.x_test[half:]
        probabilities = model.predict_proba(x_ref)
        np.savez(reference, x=x_ref, y=split.y_test[:half], outputs=probabilities)
        model_path = Path(tmp) / "digits.pt"
        model.save_torchscript(str(model_path))
        salt = secrets.token_hex(16)  # a deployment mounts a secret instead
        squeezing = {"type": "feature-squeezing", "squeezers": ["bit-depth"], "bits": 3}
        squeezing["bounds"] = [0.0, 16.0]
        config = config_from_dict(
            {
                "kafka": {
                    "bootstrap_servers": broker.bootstrap_servers,
                    "topics": [TOPIC],
                    "group_id": "robustwatch-demo",
                    "format": "kserve-cloudevents",
                    "join_ttl_seconds": 5,
                    "consumer": {
                        "max_poll_interval_ms": 3000,
                        "session_timeout_ms": 6000,
                        "heartbeat_interval_ms": 500,
                    },
                },
                "model": {
                    "name": "digits",
                    "version": "demo",
                    "path": str(model_path),
                    "input_shape": [1, 8, 8],
                },
                "reference": {"path": str(reference)},
                "detectors": {
                    # Clean traffic resamples 225 held-out digits, a pool whose own deviation
                    # from the population the test cannot know of, and the window is tested
                    # again every batch: at 0.01 a clean window now and then fails (p ~ 0.008).
                    # Drifted windows score p < 1e-30.
                    "drift": {"window": 200, "p_val": 0.001},
                    "adversarial": [squeezing],
                    "outlier": [{"type": "max-softmax", "outputs": "probabilities"}],
                    "stateful": {
                        "enabled": True,
                        "salt_env": "ROBUSTWATCH_DEMO_SALT",
                        "step": 1.6,  # pixels in [0, 16]
                        "window_size": 4,  # 8x8 inputs
                        "top_k": 30,
                        "match_threshold": 15,
                    },
                },
                "metrics": {"host": "127.0.0.1", "port": metrics_port},
            },
            env={**os.environ, "ROBUSTWATCH_DEMO_SALT": salt},
        )
        agent = Agent(config)
        server = agent.start_metrics_server()
        url = f"http://127.0.0.1:{server.port}/metrics"
        out.write(f"broker on {broker.bootstrap_servers}, metrics on {url}\n")
        out.write(
            f"streaming {rate:.0f} events/s: {PHASE_SECONDS:.0f} s clean, then "
            f"{PHASE_SECONDS:.0f} s drifted, repeating; client mallory runs a query attack "
            "throughout. Ctrl-C stops.\n"
        )
        agent_stop = threading.Event()
        agent_thread = threading.Thread(target=agent.run, args=(agent_stop,), name="agent")
        generator = TrafficGenerator(
            broker.bootstrap_servers, model, x_live, split.x_train[0], rate, agent_stop
        )
        agent_thread.start()
        generator.start()
        deadline = None if duration is None else time.monotonic() + duration
        last: dict = {}
        tty = out.isatty()
        try:
            while not stop.wait(1.0 if tty else 5.0):
                if not agent_thread.is_alive():
                    out.write("\nthe agent stopped unexpectedly\n")
                    break
                line = _summary(agent.registry, generator, url, last)
                out.write(("\r" + line) if tty else (line + "\n"))
                out.flush()
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            agent_stop.set()
            generator.join(10)
            agent_thread.join(15)
            server.stop()
            out.write(f"\nstopped after {generator.sent} events sent.\n")
    return 0
