"""Ray RLlib (new API stack) on the melody env: the two examples, briefly.

Ray pins ``gymnasium==1.2.2``, so these run in a venv of their own (``pip install torch==2.13.0
-e ".[rllib,test]"``; ``.ci/run`` does it after the main suite). They are skipped where Ray is
not importable, and marked slow: starting Ray and its env-runner processes takes a while.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ray.rllib", reason="Ray RLlib is the 'rllib' extra (gymnasium 1.2.2)")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example(name: str):
    """An example module, imported as its script would be (``examples/`` on ``sys.path``)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def ray_session():
    import ray

    yield
    ray.shutdown()


def test_env_id_makes_the_env(tiny_rnn_path):
    common = _example("rllib_common")
    env = common.make_env({"key": "G major", "reward_rnn": tiny_rnn_path})
    obs, info = env.reset(seed=0)
    assert obs.shape == (1620,) and env.action_space.n == 38 and info["key"] == "G major"
    # RLlib's default encoders take float Boxes, not the env's MultiBinary.
    assert obs.dtype == np.float32 and isinstance(env.observation_space, gym.spaces.Box)
    assert env.observation_space.contains(obs)


@pytest.mark.slow
def test_ppo_trains_with_two_env_runners(ray_session, tiny_rnn_path):
    example = _example("rllib_ppo")
    config = example.build_config(
        env_runners=2, envs_per_runner=1, batch=256, reward_rnn=tiny_rnn_path
    )
    assert config.num_env_runners == 2 and config.enable_rl_module_and_learner  # new API stack
    # 2 runners x 1 env x 128 steps: 4 whole compositions each, so episode returns exist.
    history = example.train(config, 1)
    assert history[0]["env_steps"] >= 256
    assert np.isfinite(history[0]["episode_return_mean"])


def test_dqn_lstm_config_is_recurrent(tiny_rnn_path):
    example = _example("rllib_dqn_lstm")
    config = example.build_config(env_runners=2, reward_rnn=tiny_rnn_path)
    config.validate()
    assert config.model_config["use_lstm"] and config.num_env_runners == 2
    assert config.num_envs_per_env_runner == 1  # more fail in Ray 2.60 (see the example)
    assert config.replay_buffer_config["type"] == "EpisodeReplayBuffer"


@pytest.mark.slow
def test_dqn_lstm_trains_with_two_env_runners(ray_session, tiny_rnn_path):
    example = _example("rllib_dqn_lstm")
    config = example.build_config(
        env_runners=2, learning_starts=64, steps_per_iteration=128, reward_rnn=tiny_rnn_path
    )
    history = example.train(config, 2)
    assert [h["env_steps"] for h in history] == [128, 256]  # 2 runners x 2 compositions each
    assert np.isfinite(history[-1]["episode_return_mean"])
    assert np.isfinite(history[-1]["learner"]["qf_loss"])  # the LSTM Q-network was updated
