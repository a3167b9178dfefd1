"""``RLTuner``: Stable-Baselines3's API over the RL Tuner on envs a user makes (issue 17)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import RLTuner
from agents.rl_tuner import checkpoint as ckpt
from melody_env import ENV_ID

FAST = {"learning_starts": 32, "train_frequency": 16, "batch_size": 4}
"""Hyperparameters that make a few hundred steps learn something."""


def tiny_vec(tiny_rnn, num_envs=4, **kwargs):
    return gym.make_vec(
        ENV_ID, num_envs=num_envs, composition_length=8, reward_rnn=tiny_rnn, **kwargs
    )


def q_weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.agent.q_network.parameters()]


def test_the_issue_example_runs_as_written(tmp_path):
    """The issue's Done-when, verbatim, with the shipped Note RNN."""
    env = gym.make_vec(
        "melody_env/MelodyComposition-v0",
        num_envs=16,
        key="G major",
        reward_weights={"autocorrelation": 0.0},
    )
    model = RLTuner("q", env, seed=0).learn(4096)
    assert model.num_timesteps == 4096 and model.agent.config.total_steps == 4096
    p = tmp_path / "q"
    model.save(p)
    obs, _ = env.reset(seed=0)
    starts = np.ones(16, dtype=bool)
    actions, state = RLTuner.load(p, env=env).predict(obs, None, starts, deterministic=True)
    expected, _ = model.predict(obs, None, starts, deterministic=True)
    assert actions.shape == (16,) and np.array_equal(actions, expected)
    assert len(state) == 2  # (h, c) of the Q-network

    single = gym.make(ENV_ID, key="D minor")
    model = RLTuner("psi", single, seed=0).learn(4096)
    model.save(tmp_path / "psi")
    obs, _ = single.reset(seed=0)
    starts = np.ones(1, dtype=bool)
    action, _ = RLTuner.load(tmp_path / "psi", env=single).predict(obs, None, starts, True)
    assert model.get_env().num_envs == 1 and 0 <= int(action) < 38
    assert int(action) == int(model.predict(obs, None, starts, deterministic=True)[0])


def test_same_seed_same_model(tiny_rnn):
    runs = [
        q_weights(RLTuner("q", tiny_vec(tiny_rnn), seed=3, **FAST).learn(192)) for _ in range(2)
    ]
    other = q_weights(RLTuner("q", tiny_vec(tiny_rnn), seed=4, **FAST).learn(192))
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], other, strict=True))


@pytest.mark.parametrize("algo", ["q", "g"])
def test_save_load_continues_exactly(tiny_rnn, tmp_path, algo):
    """learn(256); save; load; learn(128, reset_num_timesteps=False) == learn(384)."""
    mode = {"reward_mode": "music_theory_only"} if algo == "g" else {}
    straight = RLTuner(algo, tiny_vec(tiny_rnn, **mode), seed=0, **FAST).learn(384)
    first = RLTuner(algo, tiny_vec(tiny_rnn, **mode), seed=0, **FAST).learn(256)
    first.save(tmp_path / "run")
    resumed = RLTuner.load(tmp_path / "run", env=tiny_vec(tiny_rnn, **mode))
    assert resumed.num_timesteps == 256
    resumed.learn(128, reset_num_timesteps=False)
    assert resumed.num_timesteps == 384
    assert all(
        torch.equal(a, b) for a, b in zip(q_weights(straight), q_weights(resumed), strict=True)
    )
    obs, _ = tiny_vec(tiny_rnn).reset(seed=5)
    starts = np.ones(4, dtype=bool)
    for deterministic in (True, False):
        a, _ = straight.predict(obs, None, starts, deterministic=deterministic)
        b, _ = resumed.predict(obs, None, starts, deterministic=deterministic)
        assert np.array_equal(a, b)


def test_load_without_env_rebuilds_the_envs_from_the_checkpoint(tiny_rnn, tmp_path):
    model = RLTuner("q", tiny_vec(tiny_rnn, key="E minor"), seed=0, **FAST).learn(64)
    model.save(tmp_path / "run")
    loaded = RLTuner.load(tmp_path / "run")
    env = loaded.get_env()
    assert env.num_envs == 4 and env.unwrapped.key.name == "E minor"
    assert loaded.config.env.composition_length == 8
    loaded.learn(32, reset_num_timesteps=False)
    assert loaded.num_timesteps == 96


def test_the_reward_is_the_envs_terms_and_weights(tiny_rnn):
    """Every rule weighted 0 (reward_scaler 0, no log p) and one custom term: the replay holds
    exactly the custom term's weighted value."""

    def one(ctx):
        return 1.0

    rewards = {}
    for weight in (1.0, 3.0):
        env = tiny_vec(
            tiny_rnn,
            reward_mode="music_theory_only",
            reward_scaler=0.0,
            reward_terms={"one": one},
            reward_weights={"one": weight},
        )
        model = RLTuner("pure_rl", env, seed=0, **FAST).learn(64)
        replay = model._trainer.replay
        rewards[weight] = replay.rewards[: len(replay)]
    assert np.all(rewards[1.0] == 1.0) and np.all(rewards[3.0] == 3.0)


def test_a_term_weighted_zero_changes_what_is_learned(tiny_rnn):
    def learned(weights):
        env = tiny_vec(tiny_rnn, reward_weights=weights)
        model = RLTuner("q", env, seed=0, **FAST).learn(128)
        return model._trainer.replay.rewards[: len(model._trainer.replay)], q_weights(model)

    rewards, weights = learned(None)
    no_tonic_rewards, no_tonic_weights = learned({"tonic": 0.0})
    assert not np.array_equal(rewards, no_tonic_rewards)
    assert not all(torch.equal(a, b) for a, b in zip(weights, no_tonic_weights, strict=True))


@pytest.mark.parametrize(
    "make",
    [
        lambda rnn: tiny_vec(rnn),
        lambda rnn: gym.make_vec(
            ENV_ID, num_envs=2, vectorization_mode="sync", composition_length=8, reward_rnn=rnn
        ),
        lambda rnn: gym.wrappers.RecordEpisodeStatistics(
            gym.make(ENV_ID, composition_length=8, reward_rnn=rnn)
        ),
    ],
    ids=["native", "sync", "wrapped_single"],
)
def test_the_q_network_starts_as_the_envs_reward_rnn(tiny_rnn, make):
    env = make(tiny_rnn)
    model = RLTuner("q", env, seed=0, **FAST)
    for network in (model.agent.q_network, model.agent.target_q_network, model.agent.reward_rnn):
        assert network is not tiny_rnn
        for name, tensor in tiny_rnn.state_dict().items():
            assert torch.equal(network.state_dict()[name], tensor)
    model.learn(64)  # and it trains on every kind of env
    assert model.num_timesteps == 64


@pytest.mark.parametrize("algo", ["psi", "g"])
def test_the_prior_comes_from_the_env_not_a_second_note_rnn(tiny_rnn, algo, monkeypatch):
    mode = "music_theory_only" if algo == "g" else "music_theory_all"
    env = tiny_vec(tiny_rnn, reward_mode=mode)
    model = RLTuner(algo, env, seed=0, **FAST)

    def forbidden(*args, **kwargs):
        raise AssertionError("the agent's copy of the prior ran during learn()")

    monkeypatch.setattr(model.agent.reward_rnn, "forward", forbidden)
    model.learn(128)
    assert model._trainer.progress.gradient_steps > 0


def test_g_policy_from_the_envs_prior_equals_its_own(tiny_rnn):
    """G-learning acts on G + log p: with the env's log p (training) or its own copy's
    (``predict``), the logits agree."""
    env = tiny_vec(tiny_rnn, reward_mode="music_theory_only", primer_context=1)
    agent = RLTuner("g", env, seed=0, **FAST).agent
    obs, info = env.reset(seed=0)
    starts = np.ones(4, dtype=bool)
    from_env, _ = agent.step(obs, agent.initial_state(4, False), starts, info["prior_log_probs"])
    own, _ = agent.step(obs, agent.initial_state(4), starts)
    assert torch.allclose(from_env, own, atol=1e-5)


def test_callbacks_sb3_style(tiny_rnn):
    from stable_baselines3.common.callbacks import BaseCallback

    class Count(BaseCallback):
        def __init__(self):
            super().__init__()
            self.rounds = 0

        def _on_step(self):
            return True

        def _on_rollout_end(self):
            self.rounds += 1

    count = Count()
    model = RLTuner("q", tiny_vec(tiny_rnn), seed=0, **FAST).learn(96, callback=count)
    assert count.n_calls == 96 // 4  # one call per vector step
    assert count.num_timesteps == 96 and count.rounds == 3 and count.model is model

    calls = []

    def stop_at_once(locals_, globals_):
        calls.append(locals_["num_timesteps"])
        return False

    model = RLTuner("q", tiny_vec(tiny_rnn), seed=0, **FAST).learn(1000, callback=[stop_at_once])
    assert model.num_timesteps == 32  # the round (8 steps of 4 envs) is finished, then stop
    assert calls == list(range(4, 36, 4))


def test_tensorboard_log(tiny_rnn, tmp_path):
    RLTuner("q", tiny_vec(tiny_rnn), seed=0, tensorboard_log=tmp_path / "tb", **FAST).learn(64)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_non_finite_weights_stop_learning(tiny_rnn):
    model = RLTuner("q", tiny_vec(tiny_rnn), seed=0, **FAST)
    with torch.no_grad():
        next(model.agent.target_q_network.parameters()).fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite TD target"):
        model.learn(128)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda rnn: RLTuner("dqn", tiny_vec(rnn)), ValueError, "unknown algorithm 'dqn'"),
        (lambda rnn: RLTuner("q", gym.make("CartPole-v1")), TypeError, "env must be an env id"),
        (lambda rnn: RLTuner("q", 42), TypeError, "got int"),
        (lambda rnn: RLTuner("q", tiny_vec(rnn), gama=0.5), ValueError, "unknown TrainConfig"),
        (lambda rnn: RLTuner("q", tiny_vec(rnn), num_envs=8), ValueError, "belong to the env"),
        (lambda rnn: RLTuner("q", tiny_vec(rnn)).learn(-1), ValueError, "total_timesteps"),
        (lambda rnn: RLTuner("q", tiny_vec(rnn)).learn(8, callback=3), TypeError, "callback"),
    ],
)
def test_clear_one_line_errors(tiny_rnn, call, error, message):
    with pytest.raises(error, match=message) as raised:
        call(tiny_rnn)
    assert "\n" not in str(raised.value)


def test_load_refuses_an_env_of_another_length(tiny_rnn, tmp_path):
    RLTuner("q", tiny_vec(tiny_rnn), seed=0, **FAST).save(tmp_path / "run")
    with pytest.raises(ValueError, match="composition_length is 16, the checkpoint's 8"):
        RLTuner.load(tmp_path / "run", env=gym.make_vec(ENV_ID, 2, composition_length=16))
    with pytest.raises(FileNotFoundError):
        RLTuner.load(tmp_path / "nothing")
    assert ckpt.find_checkpoint(tmp_path / "run").name == "step_000000000"


@pytest.mark.parametrize(("algo", "mode"), [("g", "music_theory_only"), ("q", "music_theory_all")])
def test_configs_of_older_checkpoints_load(algo, mode):
    """Checkpoints written before melody_env.EnvConfig stored five env fields, and the reward
    mode followed the algorithm."""
    from agents.rl_tuner.config import TrainConfig, make_config

    data = make_config("fast", algo).to_dict()
    data["env"] = {
        "composition_length": 16,
        "steps_per_bar": 16,
        "primer_context": 8,
        "key": "G major",
        "reward_scaler": 2.0,
    }
    config = TrainConfig.from_dict(data)
    assert (config.env.reward_mode, config.env.key, config.env.composition_length) == (
        mode,
        "G major",
        16,
    )
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({**data, "colour": 1})


def test_rloo_through_rltuner(tiny_rnn, tmp_path):
    """``RLTuner("rloo", env)`` is :class:`agents.rloo.RLOO` (same shape), and ``RLTuner.load``
    tells its checkpoints from the RL Tuner's."""
    from agents.rloo import RLOO

    env = tiny_vec(tiny_rnn, num_envs=8)
    model = RLTuner("rloo", env, seed=0, num_primers=2).learn(64)
    assert isinstance(model, RLOO) and model.num_timesteps == 64
    model.save(tmp_path / "rloo")
    loaded = RLTuner.load(tmp_path / "rloo", env=env)
    assert isinstance(loaded, RLOO)
    obs, _ = env.reset(seed=0)
    starts = np.ones(8, dtype=bool)
    a, _ = model.predict(obs, None, starts, deterministic=True)
    b, _ = loaded.predict(obs, None, starts, deterministic=True)
    assert np.array_equal(a, b)
    RLTuner("q", env, seed=0).save(tmp_path / "q")
    assert isinstance(RLTuner.load(tmp_path / "q"), RLTuner)
