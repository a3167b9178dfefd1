"""Reward arguments of the wrong type get a one-line ValueError naming the argument or term."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import melody_env
from melody_env.rewards.composition import RewardFunction


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reward_scaler": "2.0"}, "reward_scaler must be a finite number, got '2.0'"),
        ({"reward_scaler": True}, "reward_scaler must be a finite number, got True"),
        ({"reward_scaler": float("nan")}, "reward_scaler must be a finite number"),
        ({"weights": "key"}, "reward_weights must be a dict of term name -> weight"),
        ({"weights": {"key": "1"}}, "reward weight of 'key' must be a finite number, got '1'"),
        ({"weights": {"key": float("inf")}}, "reward weight of 'key' must be a finite number"),
        ({"terms": [len]}, "reward_terms must be a dict of term name -> callable"),
        ({"terms": {1: len}}, "reward term names must be strings"),
        ({"mode": ["key"]}, "reward_mode must be a name"),
    ],
)
def test_bad_reward_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(">", ".")):
        RewardFunction(**kwargs)


@pytest.mark.parametrize(
    "returned, message",
    [
        ("abc", "reward term 'mine' returned str 'abc'; it must return one number"),
        ({"a": 1}, "reward term 'mine' returned dict"),
        (np.array([1.0, np.nan]), "reward term 'mine' returned a non-finite value"),
        (np.zeros(3), r"reward term 'mine' returned shape \(3,\)"),
    ],
)
def test_a_bad_term_value_names_the_term(tiny_rnn, returned, message):
    envs = gym.make_vec(
        melody_env.ENV_ID,
        num_envs=2,
        reward_rnn=tiny_rnn,
        reward_terms={"mine": lambda ctx: returned},
    )
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        envs.step(np.array([3, 4]))
