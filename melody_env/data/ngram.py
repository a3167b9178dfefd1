"""Smoothed n-gram baselines for the Note RNN: interpolated modified Kneser-Ney (Chen & Goodman).

Every melody is scored from its start: its context is padded with ``order - 1`` BOS symbols
(index 38, never predicted). A melody's first token is given, not predicted (the LSTM has no
input to predict it from), so an n-gram model fits and scores exactly the tokens the LSTM
scores: every token but the first of each melody. The
predicted distribution always covers the 38 tokens and sums to 1: the highest order uses raw
counts, lower orders continuation counts (in how many distinct contexts a suffix occurs), each
order keeps three discounts (for counts 1, 2, 3+), and the lowest order is interpolated with the
uniform distribution.

N-grams are stored as sorted int64 codes (symbols in base 39) and looked up with
``np.searchsorted``: no Python dictionaries, and scoring is vectorised over positions.

>>> model = KneserNeyModel(order=3).fit([np.array([14, 0, 16, 0] * 8)])
>>> probs = model.distribution([14, 0])
>>> round(float(probs.sum()), 6), int(probs.argmax())
(1.0, 16)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from melody_env.music.encoding import NUM_CLASSES

BOS = NUM_CLASSES
"""Padding symbol before a melody's first token."""
BASE = NUM_CLASSES + 1
MAX_ORDER = 12  # 39**12 < 2**63


@dataclass
class _Level:
    """Statistics of one order k (contexts of k - 1 symbols)."""

    grams: np.ndarray  # sorted unique codes of k-grams
    counts: np.ndarray  # their (raw or continuation) counts
    contexts: np.ndarray  # sorted unique codes of (k-1)-symbol contexts
    totals: np.ndarray  # sum of counts per context
    gamma_mass: np.ndarray  # D1*N1(h.) + D2*N2(h.) + D3*N3+(h.) per context
    discounts: np.ndarray  # [0, D1, D2, D3]


def _codes(windows: np.ndarray) -> np.ndarray:
    """Base-39 code of each row of ``windows [N, k]`` (first column most significant)."""
    codes = np.zeros(len(windows), dtype=np.int64)
    for column in range(windows.shape[1]):
        codes = codes * BASE + windows[:, column]
    return codes


MIN_DISCOUNT = 0.1
"""Floor of every discount. Chen & Goodman's estimate falls to 0 or below on degenerate counts
(e.g. n-grams of a policy collapsed onto a few tunes, where most counts are large); a context
whose every continuation then has a zero discount would keep no back-off mass, and a token it
never saw would get probability 0 (an infinite cross-entropy). The floor keeps every
probability positive."""


def _discounts(counts: np.ndarray) -> np.ndarray:
    """Chen & Goodman's D1, D2, D3+ from counts of counts, clipped to
    ``[MIN_DISCOUNT, i)``."""
    n = [int(np.sum(counts == i)) for i in range(1, 5)]
    y = n[0] / (n[0] + 2 * n[1]) if n[0] + n[1] > 0 else 0.5
    discounts = [0.0]
    for i in range(1, 4):
        d = i - (i + 1) * y * n[i] / n[i - 1] if n[i - 1] > 0 else 0.5 * i
        discounts.append(float(np.clip(d, MIN_DISCOUNT, i - 1e-3)))
    return np.array(discounts)


def _padded_windows(melodies: Sequence[np.ndarray], width: int) -> np.ndarray:
    """``[targets, width]``: each target token (every token but a melody's first) with the
    ``width - 1`` symbols before it, BOS-padded."""
    rows = []
    for melody in melodies:
        padded = np.concatenate([np.full(width - 1, BOS), np.asarray(melody, dtype=np.int64)])
        rows.append(np.lib.stride_tricks.sliding_window_view(padded, width)[1:])
    if not rows:
        return np.zeros((0, width), dtype=np.int64)
    return np.concatenate(rows).astype(np.int64)


class KneserNeyModel:
    """Interpolated modified Kneser-Ney n-gram model over the 38 melody tokens.

    Args:
        order: n, the number of symbols in an n-gram (1 = unigram), 1 to 12.
    """

    def __init__(self, order: int) -> None:
        if not isinstance(order, int) or not 1 <= order <= MAX_ORDER:
            raise ValueError(f"n-gram order must be an integer in [1, {MAX_ORDER}], got {order!r}")
        self.order = order
        self.levels: list[_Level] = []

    def fit(self, melodies: Sequence[np.ndarray]) -> KneserNeyModel:
        """Count the n-grams of ``melodies`` (token arrays). Returns ``self``."""
        windows = _padded_windows(melodies, self.order)
        if len(windows) == 0:
            raise ValueError("cannot fit an n-gram model on no tokens")
        if windows[:, -1].max() >= NUM_CLASSES or windows.min() < 0:
            raise ValueError(f"melody tokens must be in [0, {NUM_CLASSES - 1}]")
        self.levels = []
        # Raw counts for the top order; for lower orders, continuation counts from the order above.
        grams, counts = np.unique(_codes(windows), return_counts=True)
        for k in range(self.order, 0, -1):
            self.levels.insert(0, self._level(grams, counts))
            if k > 1:
                grams, counts = np.unique(grams % BASE ** (k - 1), return_counts=True)
        return self

    @staticmethod
    def _level(grams: np.ndarray, counts: np.ndarray) -> _Level:
        discounts = _discounts(counts)
        contexts, inverse = np.unique(grams // BASE, return_inverse=True)
        totals = np.bincount(inverse, weights=counts, minlength=len(contexts))
        gamma_mass = np.bincount(
            inverse, weights=discounts[np.minimum(counts, 3)], minlength=len(contexts)
        )
        return _Level(grams, counts.astype(np.float64), contexts, totals, gamma_mass, discounts)

    def _distributions(self, histories: np.ndarray) -> np.ndarray:
        """``[N, 38]`` next-token probabilities after ``histories [N, order - 1]``."""
        if not self.levels:
            raise ValueError("the n-gram model is not fitted; call fit() first")
        n = len(histories)
        probs = np.full((n, NUM_CLASSES), 1.0 / NUM_CLASSES)
        words = np.arange(NUM_CLASSES, dtype=np.int64)
        for k, level in enumerate(self.levels, start=1):
            context = _codes(histories[:, histories.shape[1] - (k - 1) :])
            ci = np.searchsorted(level.contexts, context)
            ci = np.minimum(ci, len(level.contexts) - 1)
            seen = level.contexts[ci] == context
            total = np.where(seen, level.totals[ci], 0.0)
            grams = context[:, None] * BASE + words[None, :]
            gi = np.minimum(np.searchsorted(level.grams, grams), len(level.grams) - 1)
            count = np.where(level.grams[gi] == grams, level.counts[gi], 0.0)
            discount = level.discounts[np.minimum(count, 3).astype(np.int64)]
            safe_total = np.where(seen, total, 1.0)[:, None]
            higher = np.maximum(count - discount, 0.0) / safe_total
            backoff = level.gamma_mass[ci][:, None] / safe_total
            probs = np.where(seen[:, None], higher + backoff * probs, probs)
        return probs

    def _token_probs(self, windows: np.ndarray) -> np.ndarray:
        """``[N]`` probability of each window's last symbol after the ``order - 1`` before it:
        the same interpolation as :meth:`_distributions`, for one token per row."""
        if not self.levels:
            raise ValueError("the n-gram model is not fitted; call fit() first")
        histories, words = windows[:, :-1], windows[:, -1]
        probs = np.full(len(windows), 1.0 / NUM_CLASSES)
        for k, level in enumerate(self.levels, start=1):
            context = _codes(histories[:, histories.shape[1] - (k - 1) :])
            ci = np.minimum(np.searchsorted(level.contexts, context), len(level.contexts) - 1)
            seen = level.contexts[ci] == context
            grams = context * BASE + words
            gi = np.minimum(np.searchsorted(level.grams, grams), len(level.grams) - 1)
            count = np.where(level.grams[gi] == grams, level.counts[gi], 0.0)
            discount = level.discounts[np.minimum(count, 3).astype(np.int64)]
            safe_total = np.where(seen, level.totals[ci], 1.0)
            higher = np.maximum(count - discount, 0.0) / safe_total
            backoff = level.gamma_mass[ci] / safe_total
            probs = np.where(seen, higher + backoff * probs, probs)
        return probs

    def log_probs(self, melodies: Sequence[np.ndarray]) -> np.ndarray:
        """Natural-log probability of every token but the first of each of ``melodies``, in
        melody order (as :meth:`predict`, without the argmax; much faster)."""
        windows = _padded_windows(melodies, self.order)
        if len(windows) and (windows.min() < 0 or windows[:, -1].max() >= NUM_CLASSES):
            raise ValueError(f"melody tokens must be in [0, {NUM_CLASSES - 1}]")
        return np.log(self._token_probs(windows))

    def distribution(self, history: Sequence[int]) -> np.ndarray:
        """Next-token probabilities (38) after ``history`` (a melody prefix, BOS-padded)."""
        context = np.concatenate(
            [np.full(self.order - 1, BOS), np.asarray(history, dtype=np.int64)]
        )[len(history) :]
        return self._distributions(context[None, :])[0]

    def predict(
        self, melodies: Sequence[np.ndarray], chunk: int = 20000
    ) -> tuple[np.ndarray, np.ndarray]:
        """Score every token but the first of each of ``melodies``, from the melody's start.

        Returns:
            ``(log_probs, argmax)``: per token, in melody order, the natural-log probability of the
            actual token and the most probable token.
        """
        windows = _padded_windows(melodies, self.order)
        log_probs = np.empty(len(windows))
        argmax = np.empty(len(windows), dtype=np.int64)
        for start in range(0, len(windows), chunk):
            block = windows[start : start + chunk]
            probs = self._distributions(block[:, :-1])
            log_probs[start : start + len(block)] = np.log(
                probs[np.arange(len(block)), block[:, -1]]
            )
            argmax[start : start + len(block)] = probs.argmax(axis=1)
        return log_probs, argmax
