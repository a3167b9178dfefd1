"""Behaviour tests of the RL Tuner's I/O modules (config, checkpoint, trainer, rollout, agent,
summary) written against mutmut's survivors (docs/mutation_testing.md)."""

from __future__ import annotations

import dataclasses

import pytest

from agents.rl_tuner.config import TrainConfig, make_config, paper_config
from melody_env import EnvConfig

# The original's training run (../shared/spec/rl_tuner.md §3.3, rl_tuner_train.py and the paper):
# 1M steps, 500k of them exploring epsilon-greedily down to 0.1, gamma 0.5, a minibatch of 32
# every 5 steps from a 100k replay, target update rate 0.01, MSE, no Double DQN, Adam clipped
# at 5; one composition at a time; evaluation every 100k steps, checkpoints every 50k.
PAPER = {
    "preset": "paper",
    "total_steps": 1_000_000,
    "num_envs": 1,
    "gamma": 0.5,
    "learning_rate": 1e-3,
    "batch_size": 32,
    "transitions_per_composition": 1,
    "train_frequency": 5,
    "learning_starts": 32,
    "target_network_update_rate": 0.01,
    "replay_capacity": 100_000,
    "loss": "mse",
    "max_grad_norm": 5.0,
    "double_dqn": False,
    "exploration": "egreedy",
    "start_epsilon": 1.0,
    "end_epsilon": 0.1,
    "exploration_steps": 500_000,
    "eval_every": 100_000,
    "eval_compositions": 100,
    "eval_num_envs": 100,
    "checkpoint_every": 50_000,
}


@pytest.mark.parametrize("algo", ["q", "psi", "g", "pure_rl"])
def test_the_paper_preset_is_the_originals_run(algo):
    config = paper_config(algo)
    assert make_config("paper", algo) == config
    fields = dataclasses.asdict(config)
    assert {name: fields[name] for name in PAPER} == PAPER
    assert type(config.gamma) is float and type(config.double_dqn) is bool
    # Everything else is TrainConfig's default, and the env is the paper's reward for algo.
    mode = "music_theory_only" if algo in ("g", "pure_rl") else "music_theory_all"
    assert config.algo == algo and config.env == EnvConfig(reward_mode=mode)
    assert config == dataclasses.replace(TrainConfig(algo=algo, env=config.env), **PAPER)
