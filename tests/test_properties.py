"""Property-based tests (hypothesis) of the single and the vector env.

Random configurations (keys, lengths, reward modes, weights, primers) and random actions. CI runs
the ``ci`` profile; ``HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_properties.py``
runs 1,000 examples per property (see benchmarks/RESULTS.md for the latest such run).
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from melody_env import KEY_NAMES, MelodyCompositionEnv
from melody_env.envs.vector import MelodyCompositionVectorEnv
from melody_env.models import NoteRNN, NoteRNNConfig
from melody_env.rewards import BUILTIN_TERMS, REWARD_MODES

settings.register_profile(
    "ci", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

RNN = NoteRNN(NoteRNNConfig(hidden_size=8), seed=0)
TOKENS = st.integers(0, 37)


@st.composite
def configurations(draw):
    weights = draw(
        st.dictionaries(
            st.sampled_from(sorted(BUILTIN_TERMS)),
            st.floats(-10, 10, allow_nan=False, allow_infinity=False),
            max_size=4,
        )
    )
    return {
        "key": draw(st.sampled_from(KEY_NAMES)),
        "composition_length": draw(st.integers(1, 40)),
        "steps_per_bar": draw(st.integers(1, 16)),
        "primer_context": draw(st.integers(0, 8)),
        "reward_mode": draw(st.sampled_from(sorted(REWARD_MODES))),
        "reward_scaler": draw(st.floats(0.01, 10)),
        "reward_weights": weights,
        "primer": draw(st.none() | st.lists(TOKENS, min_size=1, max_size=20)),
        "reward_rnn": RNN,
    }


def play(env, seed, actions):
    obs, info = env.reset(seed=seed)
    trace = [(obs, info["prior_log_probs"])]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs, reward, terminated, truncated, info["log_prob"], info["reward_terms"]))
        if terminated:
            break
    return trace


@given(config=configurations(), seed=st.integers(0, 2**31), data=st.data())
def test_single_env_invariants(config, seed, data):
    env = MelodyCompositionEnv(**config)
    length = config["composition_length"]
    actions = data.draw(st.lists(TOKENS, min_size=length, max_size=length))
    weights = env.reward_function.weights
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    for step, action in enumerate(actions):
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert isinstance(reward, float) and np.isfinite(reward)
        expected = sum(weights[name] * value for name, value in info["reward_terms"].items())
        assert reward == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert terminated == (step == length - 1) and truncated is False
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


@given(config=configurations(), seed=st.integers(0, 2**31), data=st.data())
def test_same_seed_same_episode(config, seed, data):
    actions = data.draw(st.lists(TOKENS, min_size=config["composition_length"], max_size=40))
    first = play(MelodyCompositionEnv(**config), seed, actions)
    second = play(MelodyCompositionEnv(**config), seed, actions)
    for a, b in zip(first, second, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_equal(x, y)


@given(bad=st.integers(38, 10**6) | st.integers(-(10**6), -1) | st.floats() | st.text(max_size=3))
def test_only_documented_errors_for_bad_actions(bad):
    env = MelodyCompositionEnv(reward_rnn=RNN)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action"):
        env.step(bad)


NOT_A_NAME = st.text(alphabet="hijkXYZ#!?_ 0123", min_size=1, max_size=8)
"""Strings that are no key, reward mode or term name (no letter A-G, no known word)."""
BAD_ARGUMENTS = st.one_of(
    st.tuples(st.just("key"), NOT_A_NAME),
    st.tuples(st.just("reward_mode"), NOT_A_NAME),
    st.tuples(st.just("composition_length"), st.integers(max_value=0) | st.integers(10_001, 10**9)),
    st.tuples(st.just("steps_per_bar"), st.integers(max_value=0)),
    st.tuples(st.just("primer_context"), st.integers(max_value=-1)),
    st.tuples(st.just("primer"), st.integers(38, 10**6) | st.integers(-(10**6), -1)),
    st.tuples(st.just("reward_weights"), NOT_A_NAME),
    st.tuples(st.just("reward_weights_value"), st.sampled_from([float("nan"), float("inf")])),
)


@given(bad=BAD_ARGUMENTS, vector=st.booleans())
def test_bad_arguments_raise_value_errors_naming_the_value(bad, vector):
    name, value = bad
    kwargs = {"reward_rnn": RNN}
    if name == "primer":
        kwargs["primer"], shown = [14, value], str(value)
    elif name == "reward_weights":
        kwargs["reward_weights"], shown = {value: 1.0}, repr(value)
    elif name == "reward_weights_value":
        kwargs["reward_weights"], shown = {"key": value}, str(value)
    else:
        kwargs[name], shown = value, repr(value) if isinstance(value, str) else str(value)
    with pytest.raises(ValueError) as error:
        if vector:
            MelodyCompositionVectorEnv(num_envs=2, **kwargs)
        else:
            MelodyCompositionEnv(**kwargs)
    assert shown in str(error.value)


@given(
    config=configurations(), seed=st.integers(0, 2**31), num_envs=st.integers(1, 4), data=st.data()
)
def test_vector_env_matches_single_envs(config, seed, num_envs, data):
    length = config["composition_length"]
    actions = data.draw(
        st.lists(
            st.lists(TOKENS, min_size=num_envs, max_size=num_envs), min_size=length, max_size=length
        )
    )
    vector = MelodyCompositionVectorEnv(num_envs=num_envs, **config)
    singles = [MelodyCompositionEnv(**config) for _ in range(num_envs)]
    obs, _ = vector.reset(seed=seed)
    for index, env in enumerate(singles):
        single_obs, _ = env.reset(seed=seed + index)
        np.testing.assert_array_equal(obs[index], single_obs)
    for step_actions in actions:
        obs, rewards, terminated, _, _ = vector.step(np.array(step_actions))
        assert vector.observation_space.contains(obs) and np.isfinite(rewards).all()
        for index, env in enumerate(singles):
            single_obs, reward, single_terminated, _, _ = env.step(step_actions[index])
            np.testing.assert_array_equal(obs[index], single_obs)
            assert rewards[index] == pytest.approx(reward, rel=1e-5, abs=1e-5)
            assert terminated[index] == single_terminated


def test_registered_vector_entry_point():
    envs = gym.make_vec("melody_env/MelodyComposition-v0", num_envs=3, reward_rnn=RNN)
    assert isinstance(envs.unwrapped, MelodyCompositionVectorEnv)
