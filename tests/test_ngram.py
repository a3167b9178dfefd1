"""Kneser-Ney n-gram baselines: normalisation, a dictionary reference, learnability."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from melody_env.data.ngram import BOS, KneserNeyModel, _discounts
from melody_env.music.encoding import NUM_CLASSES


def random_melodies(count: int, seed: int = 0, vocab: int = NUM_CLASSES) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=int(rng.integers(2, 40))) for _ in range(count)]


def reference_distribution(melodies, order: int, history) -> np.ndarray:
    """Interpolated modified Kneser-Ney written plainly with dictionaries."""
    grams = Counter()
    for melody in melodies:
        padded = [BOS] * (order - 1) + [int(t) for t in melody]
        for end in range(order, len(padded)):  # targets: every token but the first
            grams[tuple(padded[end - order + 1 : end + 1])] += 1
    levels = {order: grams}
    for k in range(order - 1, 0, -1):
        levels[k] = Counter(gram[1:] for gram in levels[k + 1])  # continuation counts
    context = ([BOS] * (order - 1) + [int(t) for t in history])[len(history) :]
    probs = np.full(NUM_CLASSES, 1.0 / NUM_CLASSES)
    for k in range(1, order + 1):
        counts = levels[k]
        d = _discounts(np.array(list(counts.values())))
        h = tuple(context[len(context) - (k - 1) :]) if k > 1 else ()
        by_context = defaultdict(dict)
        for gram, c in counts.items():
            by_context[gram[:-1]][gram[-1]] = c
        followers = by_context.get(h)
        if not followers:
            continue
        total = sum(followers.values())
        gamma = sum(d[min(c, 3)] for c in followers.values()) / total
        new = gamma * probs
        for w, c in followers.items():
            new[w] += max(c - d[min(c, 3)], 0.0) / total
        probs = new
    return probs


@pytest.mark.parametrize("order", [1, 2, 3, 5, 9])
def test_distributions_sum_to_one_and_are_positive(order):
    model = KneserNeyModel(order).fit(random_melodies(60))
    rng = np.random.default_rng(1)
    histories = [[], [5], [0, 0, 0], *(rng.integers(0, 38, size=n).tolist() for n in range(1, 12))]
    for history in histories:
        probs = model.distribution(history)
        assert probs.shape == (NUM_CLASSES,)
        assert abs(probs.sum() - 1.0) < 1e-12
        assert (probs > 0).all()


@pytest.mark.parametrize("order", [1, 2, 4])
def test_matches_dictionary_reference(order):
    melodies = random_melodies(40, seed=3, vocab=6)  # small vocabulary: many repeated contexts
    model = KneserNeyModel(order).fit(melodies)
    for history in ([], [2], [1, 2], [0, 1, 2, 3], melodies[0][:5].tolist()):
        np.testing.assert_allclose(
            model.distribution(history),
            reference_distribution(melodies, order, history),
            rtol=1e-10,
        )


def test_predict_agrees_with_distribution():
    melodies = random_melodies(20, seed=4)
    model = KneserNeyModel(3).fit(melodies)
    log_probs, argmax = model.predict(melodies[:3], chunk=7)
    expected, best = [], []
    for melody in melodies[:3]:
        for t in range(1, len(melody)):
            probs = model.distribution(melody[:t])
            expected.append(np.log(probs[melody[t]]))
            best.append(int(probs.argmax()))
    np.testing.assert_allclose(log_probs, expected)
    assert argmax.tolist() == best


def test_higher_order_fits_a_repetitive_corpus_better():
    # After "2" the next token is ambiguous, after "2 2" too; "x 2 2" decides it (order 4).
    motif = np.array([2, 2, 3, 2, 2, 4, 2, 2, 5])
    rng = np.random.default_rng(0)
    melodies = [np.tile(np.roll(motif, int(rng.integers(9))), 6) for _ in range(30)]
    cross_entropy = {
        order: -KneserNeyModel(order).fit(melodies).predict(melodies)[0].mean()
        for order in (1, 2, 3, 5)
    }
    assert cross_entropy[1] > cross_entropy[2] > cross_entropy[3] > cross_entropy[5]
    assert cross_entropy[5] < 0.3 < cross_entropy[3]


def test_bad_order_and_unfitted_model_are_reported():
    with pytest.raises(ValueError, match="order must be an integer in"):
        KneserNeyModel(0)
    with pytest.raises(ValueError, match="not fitted"):
        KneserNeyModel(2).distribution([3])
