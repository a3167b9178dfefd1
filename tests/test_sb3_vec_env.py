"""MelodySB3VecEnv: Stable-Baselines3's VecEnv API over the native vector env."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import (
    VecCheckNan,
    VecEnv,
    VecMonitor,
    VecNormalize,
)

from agents.sb3_vec_env import MelodySB3VecEnv
from melody_env import MelodyCompositionVectorEnv
from melody_env.models import NoteRNN

LENGTH = 8


@pytest.fixture(scope="module")
def rnn() -> NoteRNN:
    return NoteRNN(seed=0)


def test_ppo_learns_on_the_adapter(rnn):
    envs = VecMonitor(MelodySB3VecEnv(num_envs=4, reward_rnn=rnn, composition_length=LENGTH))
    model = PPO("MlpPolicy", envs, n_steps=32, batch_size=64, n_epochs=2, seed=0, device="cpu")
    model.learn(total_timesteps=384)
    assert model.num_timesteps == 384
    assert len(model.ep_info_buffer) == 384 // LENGTH
    action, _ = model.predict(envs.reset(), deterministic=True)
    assert action.shape == (4,)


def test_sb3_vec_env_contract_and_wrappers(rnn):
    adapter = MelodySB3VecEnv(num_envs=3, reward_rnn=rnn, composition_length=LENGTH)
    assert isinstance(adapter, VecEnv)
    assert adapter.observation_space == adapter.env.single_observation_space
    assert adapter.action_space == adapter.env.single_action_space
    # VecNormalize normalizes Box observations only; these are MultiBinary one-hots.
    envs = VecNormalize(VecMonitor(VecCheckNan(adapter, raise_exception=True)), norm_obs=False)
    size = adapter.observation_space.shape[0]
    obs = envs.reset()
    assert obs.shape == (3, size)
    returns = np.zeros(3)
    for step in range(2 * LENGTH):
        actions = np.array([envs.action_space.sample() for _ in range(3)])
        obs, rewards, dones, infos = envs.step(actions)
        assert obs.shape == (3, size) and rewards.shape == (3,) and dones.dtype == bool
        assert len(infos) == 3 and all(isinstance(info, dict) for info in infos)
        returns += envs.get_original_reward()
        assert dones.all() == ((step + 1) % LENGTH == 0)
        if dones.all():
            for index, info in enumerate(infos):
                assert info["terminal_observation"].shape == (size,)
                assert info["TimeLimit.truncated"] is False
                np.testing.assert_allclose(info["episode"]["r"], returns[index], rtol=1e-5)
                assert info["episode"]["l"] == LENGTH
            returns[:] = 0.0
    envs.close()


def test_rewards_and_observations_equal_the_native_env(rnn):
    """Same seeds and actions: the adapter skips the native env's autoreset step."""
    adapter = MelodySB3VecEnv(
        num_envs=3, reward_rnn=rnn, composition_length=LENGTH, reward_terms_in_info=True
    )
    native = MelodyCompositionVectorEnv(3, reward_rnn=rnn, composition_length=LENGTH)
    assert adapter.seed(42) == [42, 43, 44]
    obs = adapter.reset()
    native_obs, native_info = native.reset(seed=42)
    np.testing.assert_array_equal(obs, native_obs)
    np.testing.assert_array_equal(adapter.reset_infos[1]["primer"], native_info["primer"][1])
    actions = np.random.default_rng(0).integers(0, 38, size=(3 * LENGTH, 3))
    for step_actions in actions:
        obs, rewards, dones, infos = adapter.step(step_actions)
        native_obs, native_rewards, terminated, _, native_info = native.step(step_actions)
        np.testing.assert_allclose(rewards, native_rewards, rtol=1e-6, atol=1e-6)
        assert infos[2]["reward_terms"]["key"] == native_info["reward_terms"]["key"][2]
        assert infos[0]["music_theory"] == native_info["music_theory"][0]
        np.testing.assert_array_equal(dones, terminated)
        if terminated.all():
            terminal = np.stack([info["terminal_observation"] for info in infos])
            np.testing.assert_array_equal(terminal, native_obs)
            native_obs, *_ = native.step(step_actions)  # the native env's autoreset step
        np.testing.assert_array_equal(obs, native_obs)


def test_seed_options_and_attribute_access(rnn):
    adapter = MelodySB3VecEnv(num_envs=2, reward_rnn=rnn, render_mode="ansi")
    adapter.set_options([{"key": "G major"}, {"primer": [14, 0]}])
    adapter.reset()
    assert [info["key"] for info in adapter.reset_infos] == ["G major", "C major"]
    assert adapter.reset_infos[1]["primer"].tolist() == [14, 0]
    assert adapter.get_attr("num_envs") == [2, 2]
    assert adapter.get_attr("render_mode", indices=1) == ["ansi"]
    assert adapter.env_is_wrapped(VecMonitor) == [False, False]
    frames = adapter.env_method("render", indices=[1])
    assert len(frames) == 1 and frames[0].startswith("C major")
    adapter.set_attr("qpm", 100.0)
    assert adapter.env.qpm == 100.0
    with pytest.raises(ValueError, match="indices=None"):
        adapter.set_attr("qpm", 90.0, indices=[0])
    with pytest.raises(ValueError, match="not both"):
        MelodySB3VecEnv(adapter.env, num_envs=2)
    with pytest.raises(TypeError, match="unwrapped"):
        MelodySB3VecEnv(object())
