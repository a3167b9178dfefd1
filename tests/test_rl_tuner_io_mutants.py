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


def test_a_stored_config_gets_its_algorithms_reward_mode_only_when_it_has_none():
    # Stored before the reward mode was part of env: the algorithm's (G sees music theory only).
    assert TrainConfig.from_dict({"algo": "g"}).env.reward_mode == "music_theory_only"
    assert TrainConfig.from_dict({"algo": "g", "env": {}}).env.reward_mode == "music_theory_only"
    assert TrainConfig.from_dict({}).env.reward_mode == "music_theory_all"  # the default algo, q
    # A stored mode is kept, whatever the algorithm's default.
    stored = {"algo": "g", "env": {"reward_mode": "music_theory_all"}}
    assert TrainConfig.from_dict(stored).env.reward_mode == "music_theory_all"
    with pytest.raises(ValueError):
        TrainConfig.from_dict(["algo", "q"])


def test_loading_tensors_names_their_source(tiny_rnn_path):
    from agents.rl_tuner.agent import RLTunerAgent
    from melody_env.models.note_rnn import NoteRNN
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(tiny_rnn_path)
    agent = RLTunerAgent(config, NoteRNN.load(tiny_rnn_path))
    with pytest.raises(ValueError, match=r"^tensors \(q_network\.\*\) does not match"):
        agent.load_named_tensors({})
    with pytest.raises(ValueError, match=r"^my\.safetensors \(q_network\.\*\)"):
        agent.load_named_tensors({}, source="my.safetensors")


def test_train_prints_its_messages_with_print_only(tiny_rnn_path, tmp_path, capsys):
    from agents.rl_tuner.trainer import train
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(tiny_rnn_path, total_steps=64, eval_every=64, eval_compositions=8)
    train(config, tmp_path / "quiet", log=lambda message: None)
    assert capsys.readouterr().out == ""
    train(config, tmp_path / "loud")
    assert capsys.readouterr().out.startswith("eval @ 0: r_MT/step ")


def test_a_resumed_optimizer_has_the_settings_it_was_saved_with(tiny_rnn_path, tmp_path):
    from agents.rl_tuner.checkpoint import load_checkpoint
    from agents.rl_tuner.trainer import Trainer, train
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(tiny_rnn_path, total_steps=128)
    train(config, tmp_path / "run", log=lambda message: None)
    fresh = Trainer(config, None).optimizer.param_groups[0]
    resumed = Trainer(load_checkpoint(tmp_path / "run").config, tmp_path / "run", resume=True)
    group = resumed.optimizer.param_groups[0]
    assert group["betas"] == fresh["betas"] and isinstance(group["betas"], tuple)
    assert {k: v for k, v in group.items() if k not in ("params", "lr")} == {
        k: v for k, v in fresh.items() if k not in ("params", "lr")
    }


def test_load_agent_loads_an_rloo_run_as_its_policy(tiny_rnn_path, tmp_path):
    from agents.rl_tuner.checkpoint import load_agent
    from agents.rloo.config import RLOOConfig, default_env
    from agents.rloo.policy import RLOOPolicy
    from agents.rloo.run import train

    config = RLOOConfig(
        env=default_env().replace(reward_rnn=tiny_rnn_path, composition_length=8),
        num_primers=4,
        samples_per_primer=2,
        total_steps=64,
        summary_compositions=0,
        eval_num_envs=8,
    )
    train(config, tmp_path / "rloo", log=lambda message: None)
    policy = load_agent(tmp_path / "rloo")
    assert isinstance(policy, RLOOPolicy) and policy.config == config
