"""``sample_tokens``: the one sampler of tokens from a model's scores, used by every policy.

The agents, the evaluation's Note RNN policy and ``melody-rl sample`` all draw their tokens here,
so the same scores, generator state and temperature give the same tokens wherever they are drawn.
"""

from __future__ import annotations

import math

import numpy as np


def sample_tokens(
    logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0
) -> np.ndarray:
    """One token per row of ``softmax(logits / temperature)``, by inverse CDF.

    The draw, per row ``b``: ``z = logits[b] / temperature - max``, ``cdf = cumsum(exp(z))``,
    ``u = U[0, 1) * cdf[-1]`` (one uniform from ``rng.random``, float64, per row), and the token
    is the number of entries of ``cdf`` below ``u`` (at most ``C - 1``, against rounding). The
    generator advances by exactly ``B`` uniforms, whatever the scores.

    Args:
        logits: ``[B, C]`` (or ``[C]``) unnormalised logits or log-probabilities (a log-softmax
            shifts each row by a constant, which changes nothing); ``-inf`` marks an impossible
            token.
        rng: the generator the uniforms come from.
        temperature: ``> 0``; below 1 sharpens the distribution, above 1 flattens it.

    Returns:
        ``int64 [B]`` tokens (a 0-d array for ``[C]`` scores).

    Raises:
        ValueError: a temperature that is not a finite number > 0, scores that are not 1-D or
            2-D, or a row with NaN, ``+inf`` or no finite score.

    >>> sample_tokens(np.log(np.eye(38)[[3, 7]] + 1e-12), np.random.default_rng(0))
    array([3, 7])
    >>> sample_tokens(np.array([0.0, -np.inf, 0.0]), np.random.default_rng(0)).item() in (0, 2)
    True
    """
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float, np.floating, np.integer))
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    scores = np.asarray(logits, dtype=np.float64)
    if scores.ndim not in (1, 2) or scores.shape[-1] == 0:
        raise ValueError(f"logits must have shape [B, C] or [C] with C >= 1, got {scores.shape}")
    rows = scores.reshape(-1, scores.shape[-1])
    with np.errstate(invalid="ignore"):  # an all -inf row gives NaN, refused below
        scaled = rows / temperature  # a new array: the caller's scores stay as they are
        scaled -= scaled.max(axis=1, keepdims=True)
    cdf = np.cumsum(np.exp(scaled), axis=1)
    total = cdf[:, -1]
    if not (np.isfinite(total).all() and (total > 0).all()):
        row = int(np.flatnonzero(~(np.isfinite(total) & (total > 0)))[0])
        raise ValueError(
            f"logits row {row} has no finite maximum (NaN, +inf or all -inf): {rows[row]!r:.120}"
        )
    uniform = rng.random((len(cdf), 1)) * total[:, None]
    tokens = np.minimum((cdf < uniform).sum(axis=1), rows.shape[1] - 1).astype(np.int64)
    return tokens.reshape(scores.shape[:-1])
