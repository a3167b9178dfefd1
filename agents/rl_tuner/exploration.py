"""Exploration: epsilon-greedy with a linearly annealed epsilon, or Boltzmann sampling.

>>> linear_epsilon(0, start=1.0, end=0.1, duration=100), linear_epsilon(50, 1.0, 0.1, 100)
(1.0, 0.55)
>>> linear_epsilon(1000, 1.0, 0.1, 100)
0.1
"""

from __future__ import annotations

import numpy as np

from melody_env.sampling import sample_tokens


def linear_epsilon(step: int, start: float, end: float, duration: int) -> float:
    """Epsilon after ``step`` training transitions: from ``start`` down to ``end`` linearly over
    ``duration`` transitions, then ``end``. Only training actions advance ``step`` (the original
    also counted the actions of its evaluation compositions)."""
    if duration <= 0:
        return end
    fraction = min(step / duration, 1.0)
    return round(start + fraction * (end - start), 12)


def select_actions(
    logits: np.ndarray,
    mode: str,
    epsilon: float,
    temperature: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Exploratory actions from policy logits ``[n, num_actions]``.

    ``"egreedy"``: with probability ``epsilon`` a uniformly random token, else the argmax.
    ``"boltzmann"``: a sample from ``softmax(logits / temperature)``; no epsilon.
    """
    n, num_actions = logits.shape
    if mode == "boltzmann":
        return sample_tokens(logits, rng, temperature)
    if mode != "egreedy":
        raise ValueError(f"unknown exploration mode {mode!r}; choose egreedy or boltzmann")
    explore = rng.random(n) < epsilon
    random_actions = rng.integers(0, num_actions, n)
    return np.where(explore, random_actions, logits.argmax(axis=1)).astype(np.int64)
