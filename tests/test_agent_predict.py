"""The agent speaks Stable-Baselines3's recurrent ``predict`` protocol."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.rl_tuner.agent import RLTunerAgent
from agents.rl_tuner.config import make_config
from melody_env import ENV_ID
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig


@pytest.fixture(params=["q", "g"])
def agent(request):
    config = make_config("fast", request.param, env={"composition_length": 8})
    return RLTunerAgent(config, NoteRNN(NoteRNNConfig(hidden_size=16), seed=0))


def make_env(agent, primer=None):
    return gym.make(ENV_ID, config=agent.config.env, reward_rnn=agent.reward_rnn, primer=primer)


def test_single_observation_gives_a_scalar_action_and_batched_state(agent):
    env = make_env(agent)
    obs, _ = env.reset(seed=0)
    action, state = agent.predict(obs, deterministic=True)
    assert action.shape == () and np.issubdtype(action.dtype, np.integer)
    assert len(state) == (4 if agent.algo == "g" else 2)
    assert all(s.shape == (1, 1, 16) and isinstance(s, np.ndarray) for s in state)
    env.step(action)  # a valid action for the env


def test_a_full_episode_matches_the_batched_call(agent):
    envs = [make_env(agent) for _ in range(3)]
    observations = [env.reset(seed=seed)[0] for seed, env in enumerate(envs)]
    batch_state, single_states = None, [None] * 3
    for _ in range(8):
        batch_actions, batch_state = agent.predict(
            np.stack(observations), batch_state, deterministic=True
        )
        for index, env in enumerate(envs):
            action, single_states[index] = agent.predict(
                observations[index], single_states[index], deterministic=True
            )
            assert action == batch_actions[index]
            observations[index] = env.step(action)[0]


def test_episode_start_resets_the_state_of_those_envs_only(agent):
    env = make_env(agent)
    obs0, _ = env.reset(seed=1)
    _, fresh = agent.predict(obs0[None], deterministic=True)
    _, state = agent.predict(obs0[None], deterministic=True)
    obs1 = env.step(5)[0]
    _, advanced = agent.predict(obs1[None], state, np.array([False]), deterministic=True)
    obs_both = np.stack([obs0, obs0])
    stacked = tuple(np.concatenate([a, a], axis=1) for a in advanced)
    _, out = agent.predict(obs_both, stacked, np.array([True, False]), deterministic=True)
    assert np.allclose(out[0][:, 0], fresh[0][:, 0], atol=1e-6)  # reset and re-primed
    assert not np.allclose(out[0][:, 1], fresh[0][:, 0], atol=1e-3)  # kept going


def test_the_first_step_has_consumed_the_primer(agent):
    primer = [14, 0, 18, 0, 21]
    env = make_env(agent, primer=primer)
    obs, _ = env.reset(seed=0)
    _, state = agent.predict(obs, deterministic=True)
    with torch.no_grad():
        _, (h, c) = agent.q_network(torch.tensor([primer]))
    assert np.allclose(state[0], h.numpy(), atol=1e-6)
    assert np.allclose(state[1], c.numpy(), atol=1e-6)


def test_sampling_is_reproducible_and_greedy_is_the_argmax(agent):
    env = make_env(agent)
    obs, _ = env.reset(seed=0)
    many = np.repeat(obs[None], 500, axis=0)
    agent.predict_rng = np.random.default_rng(0)
    first, _ = agent.predict(many)
    agent.predict_rng = np.random.default_rng(0)
    second, _ = agent.predict(many)
    assert np.array_equal(first, second) and len(np.unique(first)) > 3
    greedy, _ = agent.predict(many, deterministic=True)
    assert len(np.unique(greedy)) == 1


def test_a_wrong_observation_shape_is_named(agent):
    with pytest.raises(ValueError, match=rf"\[n, {agent.layout.size}\]"):
        agent.predict(np.zeros((2, 5), dtype=np.float32))
