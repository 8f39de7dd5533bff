"""Noise consistency: the seeded generator and the tie-broken flip fraction."""

import numpy as np
import torch

from detectors.adversarial import NoiseConsistency
from detectors.adversarial.noise_consistency import noise_flips


def test_same_seed_same_answers_different_seed_different(data, model):
    a = NoiseConsistency(model, seed=3).fit(data.x_ref[:100])
    b = NoiseConsistency(model, seed=3).fit(data.x_ref[:100])
    c = NoiseConsistency(model, seed=4).fit(data.x_ref[:100])
    x = data.x_test[:40]
    first = a.score(x)
    np.testing.assert_array_equal(first, b.score(x))
    assert not np.array_equal(first, c.score(x))
    assert not np.array_equal(first, a.score(x)), "the generator moves on between calls"


def test_score_orders_by_flips_then_by_lost_probability():
    k = 8
    det = NoiseConsistency(torch.nn.Identity(), n_samples=k, sigma=0.5, seed=0)
    det.fit(np.random.default_rng(0).normal(size=(100, 2)) + np.array([4.0, 0.0]))
    scores = det.score([[4.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    assert scores[0] < scores[1] < scores[2]
    assert ((scores * (k + 1)) >= 0).all() and ((scores * (k + 1)) <= k + 1).all()


def test_noise_flips_counts_changed_predictions():
    gen = torch.Generator().manual_seed(0)
    flips, p = noise_flips(torch.nn.Identity(), torch.tensor([[10.0, 0.0]]), 0.1, 50, gen)
    assert flips.tolist() == [0] and p.item() > 0.99


def test_generator_lives_on_the_model_device(data, model):
    det = NoiseConsistency(model).fit(data.x_ref[:50])
    assert det._generator.device == next(model.parameters()).device
