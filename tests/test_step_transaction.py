"""A step that raises changes nothing: the same step retried gives what a clean run gives."""

from __future__ import annotations

import numpy as np
import pytest

from melody_env import MelodyCompositionEnv, MelodyCompositionVectorEnv
from melody_env.models import NoteRNN

LENGTH = 16
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


class FailingTerm:
    """A user reward term worth ``0.25 * action``; at step ``fail_at`` of the first episode
    it raises (``mode="raise"``), returns NaN (``"nan"``, which the reward function refuses)
    or a finite value whose weighted total overflows (``"huge"``), once."""

    def __init__(self, fail_at: int | None, mode: str = "raise") -> None:
        self.fail_at, self.mode, self.failed = fail_at, mode, False

    def __call__(self, context) -> np.ndarray:
        value = 0.25 * np.asarray(context.action, dtype=np.float64)
        if context.step == self.fail_at and not self.failed:
            self.failed = True
            if self.mode == "raise":
                raise RuntimeError("user term failed")
            return value * np.nan if self.mode == "nan" else value + 1e308
        return value


def user_term(term: FailingTerm) -> dict:
    """Env arguments adding ``term`` with weight 10 (so that 1e308 overflows)."""
    return {"reward_terms": {"user": term}, "reward_weights": {"user": 10.0}}


@pytest.fixture(scope="module")
def rnn() -> NoteRNN:
    return NoteRNN.load()


def single_run(rnn, term, actions, key):
    env = MelodyCompositionEnv(
        key=key, reward_rnn=rnn, composition_length=LENGTH, **user_term(term)
    )
    results = [env.reset(seed=5)]
    for step, action in enumerate(actions):
        try:
            results.append(env.step(int(action)))
        except (RuntimeError, ValueError, FloatingPointError):
            assert step == term.fail_at
            assert len(env.composition) == step  # the token was not placed
            results.append(env.step(int(action)))  # the retry
    results.append(env.reset())  # the next episode starts from the same generator state
    return results


def vector_run(rnn, term, actions, key):
    envs = MelodyCompositionVectorEnv(
        3, key=key, reward_rnn=rnn, composition_length=LENGTH, **user_term(term)
    )
    results = [envs.reset(seed=5)]
    for step, step_actions in enumerate(actions):
        try:
            results.append(envs.step(step_actions))
        except (RuntimeError, ValueError, FloatingPointError):
            assert step == term.fail_at
            assert envs.compositions.shape == (3, step)
            results.append(envs.step(step_actions))
    results.append(envs.step(actions[0]))  # the autoreset step
    return results


def assert_same(clean, retried):
    assert len(clean) == len(retried)
    for a, b in zip(clean, retried, strict=True):
        for x, y in zip(a, b, strict=True):
            if isinstance(x, dict):
                assert x.keys() == y.keys()
                for name in x:
                    if isinstance(x[name], dict):
                        for term in x[name]:
                            np.testing.assert_array_equal(x[name][term], y[name][term])
                    else:
                        np.testing.assert_array_equal(x[name], y[name])
            else:
                np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("mode", ["raise", "nan", "huge"])
@pytest.mark.parametrize("key", ["C major", "G minor"])
def test_single_env_retry_is_exact(rnn, mode, key):
    actions = np.random.default_rng(0).integers(0, 38, LENGTH)
    clean = single_run(rnn, FailingTerm(None), actions, key)
    for fail_at in (0, 1, 9, LENGTH - 1):
        retried = single_run(rnn, FailingTerm(fail_at, mode), actions, key)
        assert_same(clean, retried)


@pytest.mark.parametrize("mode", ["raise", "nan", "huge"])
@pytest.mark.parametrize("key", ["C major", "any"])
def test_vector_env_retry_is_exact(rnn, mode, key):
    actions = np.random.default_rng(1).integers(0, 38, (LENGTH, 3))
    clean = vector_run(rnn, FailingTerm(None), actions, key)
    for fail_at in (0, 7, LENGTH - 1):
        retried = vector_run(rnn, FailingTerm(fail_at, mode), actions, key)
        assert_same(clean, retried)


def test_non_finite_reward_names_the_env_and_the_terms(rnn):
    envs = MelodyCompositionVectorEnv(
        3, reward_rnn=rnn, composition_length=LENGTH, **user_term(FailingTerm(2, "huge"))
    )
    envs.reset(seed=0)
    envs.step(np.array([14, 14, 14]))
    envs.step(np.array([0, 0, 0]))
    with pytest.raises(
        FloatingPointError, match=r"non-finite reward inf in env 0 at step 3: .*'user': 1e\+308"
    ):
        envs.step(np.array([16, 16, 16]))
    env = MelodyCompositionEnv(
        reward_rnn=rnn, composition_length=LENGTH, **user_term(FailingTerm(0, "huge"))
    )
    env.reset(seed=0)
    with pytest.raises(
        FloatingPointError, match=r"non-finite reward inf at step 1: .*'user': 1e\+308"
    ):
        env.step(14)
