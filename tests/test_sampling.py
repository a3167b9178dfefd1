"""The one token sampler (:func:`melody_env.sampling.sample_tokens`), hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from melody_env.sampling import sample_tokens


class FixedUniforms:
    """A generator whose ``random`` returns given uniforms (and counts what it was asked)."""

    def __init__(self, *values: float) -> None:
        self.values = np.array(values, dtype=np.float64)
        self.calls = []

    def random(self, shape):
        self.calls.append(shape)
        return self.values.reshape(shape)


LOG_ODDS_1_3 = np.array([[0.0, np.log(3.0)]])  # probabilities 1/4, 3/4


@pytest.mark.parametrize(
    ("uniform", "temperature", "token"),
    [
        # T = 1: cdf = [1, 4]; u * 4 below 1 -> token 0, else token 1.
        (0.24, 1.0, 0),
        (0.26, 1.0, 1),
        (0.15, 1.0, 0),
        # T = 0.5: scores [0, 2 log 3], probabilities 1/10, 9/10; cdf = [1, 10].
        (0.05, 0.5, 0),
        (0.15, 0.5, 1),
        # T = 2: scores [0, log 3 / 2], probabilities 1 / (1 + sqrt 3) = 0.366.
        (0.36, 2.0, 0),
        (0.37, 2.0, 1),
    ],
)
def test_inverse_cdf_by_hand(uniform, temperature, token):
    rng = FixedUniforms(uniform)
    assert sample_tokens(LOG_ODDS_1_3, rng, temperature).tolist() == [token]
    assert rng.calls == [(1, 1)]  # one uniform per row


def test_logits_and_log_probs_sample_alike():
    """A log-softmax shifts a row by a constant: the same uniforms give the same tokens."""
    logits = np.random.default_rng(1).normal(size=(50, 38)) * 3
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    first = sample_tokens(logits, np.random.default_rng(7))
    second = sample_tokens(log_probs, np.random.default_rng(7))
    np.testing.assert_array_equal(first, second)


def test_frequencies_follow_the_softmax():
    logits = np.array([1.0, 0.0, -1.0, -np.inf])
    tokens = sample_tokens(np.tile(logits, (40_000, 1)), np.random.default_rng(0), 0.8)
    expected = np.exp(logits / 0.8) / np.exp(logits / 0.8).sum()
    np.testing.assert_allclose(np.bincount(tokens, minlength=4) / 40_000, expected, atol=0.01)
    assert tokens.dtype == np.int64 and tokens.max() < 3  # never the -inf token


def test_generator_advances_by_one_uniform_per_row():
    rng, reference = np.random.default_rng(3), np.random.default_rng(3)
    sample_tokens(np.zeros((5, 38)), rng)
    reference.random((5, 1))
    assert rng.random() == reference.random()


def test_one_row_gives_a_scalar_and_inputs_are_left_alone():
    logits = np.array([0.0, 5.0, 0.0])
    token = sample_tokens(logits, FixedUniforms(0.5), 2.0)
    assert token.shape == () and int(token) == 1
    assert logits.tolist() == [0.0, 5.0, 0.0]


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), float("inf"), True, "1"])
def test_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        sample_tokens(np.zeros((1, 38)), np.random.default_rng(0), temperature)


@pytest.mark.parametrize(
    "logits",
    [np.full((2, 3), -np.inf), np.array([[0.0, np.nan, 0.0]]), np.array([[0.0, np.inf]])],
)
def test_rows_without_a_distribution_are_refused(logits):
    with pytest.raises(ValueError, match="logits row 0 has no finite maximum"):
        sample_tokens(logits, np.random.default_rng(0))


def test_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        sample_tokens(np.zeros((2, 2, 2)), np.random.default_rng(0))
