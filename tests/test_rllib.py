"""Ray RLlib (new API stack) on the melody env: the two examples, briefly.

Ray pins ``gymnasium==1.2.2``, so these run in a venv of their own (``pip install torch==2.13.0
-e ".[rllib,test]"``; ``.ci/run`` does it after the main suite). They are skipped where Ray is
not importable, and marked slow: starting Ray and its env-runner processes takes a while.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.rllib", reason="Ray RLlib is the 'rllib' extra (gymnasium 1.2.2)")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ray_session():
    import ray

    yield
    ray.shutdown()


def test_registered_env_creator(tiny_rnn_path):
    example = _example("rllib_ppo")
    env = example.make_env({"key": "G major", "reward_rnn": tiny_rnn_path})
    obs, info = env.reset(seed=0)
    assert obs.shape == (1620,) and env.action_space.n == 38 and info["key"] == "G major"


@pytest.mark.slow
def test_ppo_trains_with_two_env_runners(ray_session, tiny_rnn_path):
    example = _example("rllib_ppo")
    config = example.build_config(env_runners=2, batch=256, reward_rnn=tiny_rnn_path)
    assert config.num_env_runners == 2 and config.enable_rl_module_and_learner  # new API stack
    # 2 runners x 1 env x 128 steps: 4 whole compositions each, so episode returns exist.
    history = example.train(
        1, env_runners=2, batch=256, envs_per_runner=1, reward_rnn=tiny_rnn_path
    )
    assert history[0]["env_steps"] >= 256
    assert np.isfinite(history[0]["episode_return_mean"])


def test_dqn_lstm_config_is_recurrent(tiny_rnn_path):
    example = _example("rllib_dqn_lstm")
    config = example.build_config(env_runners=2, reward_rnn=tiny_rnn_path)
    config.validate()
    assert config.model_config["use_lstm"] and config.num_env_runners == 2
    assert config.replay_buffer_config["type"] == "EpisodeReplayBuffer"


@pytest.mark.slow
@pytest.mark.skip(
    reason="Ray 2.60: sampling with DQN's default LSTM RLModule raised 'cannot select an axis "
    "to squeeze out' in RemoveSingleTsTimeRankFromBatch on the env runners (4 envs each); not "
    "resolved yet, see examples/rllib_dqn_lstm.py"
)
def test_dqn_lstm_trains_with_two_env_runners(ray_session, tiny_rnn_path):
    example = _example("rllib_dqn_lstm")
    history = example.train(
        3, env_runners=2, envs_per_runner=1, learning_starts=64, reward_rnn=tiny_rnn_path
    )
    assert history[-1]["env_steps"] > 64 and history[-1]["learner"]
