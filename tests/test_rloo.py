"""RLOO pieces: returns, leave-one-out advantages, the exact KL, the rollout and the policy."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.overrides import apply_overrides, config_from_dict
from agents.rloo import rloo
from agents.rloo.config import RLOOConfig, default_env
from agents.rloo.policy import RLOOPolicy
from melody_env import ENV_ID, EnvConfig
from melody_env.evaluation.evaluate import kl_from_prior
from melody_env.models.note_rnn import NoteRNN

LENGTH_8 = default_env().replace(composition_length=8)


def small_config(reward_rnn=None, key="C major", **overrides) -> RLOOConfig:
    base = dict(
        env=default_env().replace(reward_rnn=reward_rnn, composition_length=8, key=key),
        num_primers=3,
        samples_per_primer=2,
        total_steps=3 * 2 * 8 * 2,
        summary_compositions=0,
        num_samples=0,
        progress_bar=False,
        torch_threads=1,
        first_step_kl_coef=None,
    )
    return RLOOConfig(**(base | overrides))


# --- returns and advantages (hand-computed)


def test_discounted_returns_by_hand():
    values = np.array([[1.0, 2.0, 4.0], [0.0, -1.0, 0.0]])
    assert rloo.discounted_returns(values).tolist() == [[7.0, 6.0, 4.0], [-1.0, -1.0, 0.0]]
    # gamma 0.5: 1 + 0.5 * 2 + 0.25 * 4 = 3; 2 + 0.5 * 4 = 4
    assert rloo.discounted_returns(values, 0.5).tolist() == [[3.0, 4.0, 4.0], [-0.5, -1.0, 0.0]]


def test_leave_one_out_baseline_with_three_samples_by_hand():
    config = RLOOConfig(samples_per_primer=3, kl_coef=0.0)
    # one primer, three one-step compositions scoring 3, 6, 0: baselines (6+0)/2, (3+0)/2, (3+6)/2
    advantage = rloo.advantages(np.array([[3.0], [6.0], [0.0]]), np.zeros((3, 1)), config)
    assert advantage[:, 0].tolist() == [0.0, 4.5, -4.5]


def test_groups_are_consecutive_rows():
    config = RLOOConfig(samples_per_primer=2, kl_coef=0.0)
    scores = np.array([[1.0], [3.0], [10.0], [30.0]])  # primer 0: rows 0-1, primer 1: rows 2-3
    assert rloo.advantages(scores, np.zeros((4, 1)), config)[:, 0].tolist() == [-2, 2, -20, 20]


def test_reward_to_go_charges_only_later_kls():
    config = RLOOConfig(samples_per_primer=2, kl_coef=2.0)
    scores = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    kl = np.array([[0.5, 0.25, 1.0], [0.0, 0.0, 0.0]])
    # row 0's returns: scores-to-go 1, 0, 0 minus 2 * later KLs (1.25, 1.0, 0) = -1.5, -2, 0
    advantage = rloo.advantages(scores, kl, config)
    assert advantage.tolist() == [[-1.5, -2.0, 0.0], [1.5, 2.0, 0.0]]  # k = 2: A = G - G_other
    plain = rloo.advantages(scores, kl, RLOOConfig(samples_per_primer=2, kl_in_reward=False))
    assert plain.tolist() == [[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]


def test_composition_credit_gives_every_step_the_whole_return():
    config = RLOOConfig(
        samples_per_primer=2, kl_coef=1.0, first_step_kl_coef=None, credit="composition"
    )
    scores = np.array([[1.0, 2.0], [0.0, 0.0]])
    kl = np.array([[0.5, 0.5], [0.0, 0.0]])  # row 0's return: 3 - 1 = 2
    assert rloo.advantages(scores, kl, config).tolist() == [[2.0, 2.0], [-2.0, -2.0]]
    # a KL weight of 0.5 on the first step: 3 - (0.5 * 0.5 + 1 * 0.5) = 2.25
    config = RLOOConfig(
        samples_per_primer=2, kl_coef=1.0, first_step_kl_coef=0.5, credit="composition"
    )
    assert rloo.advantages(scores, kl, config).tolist() == [[2.25, 2.25], [-2.25, -2.25]]


def test_normalised_advantages_have_unit_std():
    config = RLOOConfig(samples_per_primer=2, kl_coef=0.0, normalize_advantages=True)
    advantage = rloo.advantages(np.array([[1.0, 5.0], [0.0, 2.0]]), np.zeros((2, 2)), config)
    assert advantage.std() == pytest.approx(1.0)
    assert np.sign(advantage).tolist() == [[1, 1], [-1, -1]]


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="samples_per_primer must be an integer >= 2"):
        RLOOConfig(samples_per_primer=1)
    with pytest.raises(ValueError, match="unknown credit 'episode'"):
        RLOOConfig(credit="episode")
    with pytest.raises(ValueError, match="gamma must be in"):
        RLOOConfig(gamma=1.5)
    with pytest.raises(ValueError, match="kl_coef must be >= 0"):
        RLOOConfig(kl_coef=-0.1)
    with pytest.raises(ValueError, match="unknown RLOOConfig fields"):
        config_from_dict(RLOOConfig, {"kl": 1.0})
    config = RLOOConfig(total_steps=100, num_primers=2, samples_per_primer=2, env=LENGTH_8)
    assert config.iterations == 4  # 100 transitions in batches of 2 * 2 * 8 = 32, rounded up


FORMER_CONFIG = {
    "seed": 0, "total_steps": 1228800, "num_primers": 64, "samples_per_primer": 4,
    "learning_rate": 0.001, "position_logits": True, "position_learning_rate": 0.03,
    "final_learning_rate": None, "kl_coef": 4.0, "first_step_kl_coef": 0.5, "kl_in_reward": True,
    "gamma": 1.0, "credit": "reward_to_go", "normalize_advantages": False, "rule_weights": None,
    "entropy_coef": 0.0, "temperature": 1.0, "max_grad_norm": 1.0, "reward_scaler": 1.5,
    "key": "g major", "composition_length": 16, "steps_per_bar": 16, "primer_context": 4,
    "reward_rnn": "note_rnn.safetensors", "checkpoint_every": 0, "summary_compositions": 1000,
    "eval_num_envs": 500, "num_samples": 16, "torch_threads": 1, "progress_bar": False,
}  # fmt: skip
"""A checkpoint's config as RLOO stored it before ``RLOOConfig.env`` (the env's fields flat)."""


def test_the_former_flat_config_loads_with_its_env_fields_in_env():
    config = RLOOConfig.from_dict(FORMER_CONFIG)
    assert config.env == EnvConfig(
        key="G major",
        composition_length=16,
        primer_context=4,
        reward_mode="music_theory_only",  # the only mode RLOO's env had
        reward_scaler=1.5,
        reward_rnn="note_rnn.safetensors",
    )
    assert (config.kl_coef, config.iterations) == (4.0, 300)  # 1,228,800 / (256 * 16)
    assert len(config.kl_weights()) == 16
    stored = config.to_dict()
    assert "key" not in stored and stored["env"]["key"] == "G major"
    assert RLOOConfig.from_dict(stored) == config
    assert RLOOConfig.from_dict({}) == RLOOConfig()  # the env's mode is RLOO's, not the env's
    assert RLOOConfig.from_dict({"env": {"key": "D minor"}}).env.reward_mode == "music_theory_only"
    with pytest.raises(ValueError, match=r"\['key'\] given both at the top level and in env"):
        RLOOConfig.from_dict({"key": "C major", "env": {"key": "D minor"}})
    with pytest.raises(ValueError, match=r"unknown RLOOConfig fields \['colour'\]"):
        RLOOConfig.from_dict({**FORMER_CONFIG, "colour": 1})


def test_the_env_fields_are_an_env_config():
    assert RLOOConfig().env == EnvConfig(reward_mode="music_theory_only")
    assert RLOOConfig().kl_weights() == [0.5] + [4.0] * 31
    with pytest.raises(ValueError, match="env must be an EnvConfig"):
        RLOOConfig(env={"key": "G major"})
    with pytest.raises(ValueError, match=r"env\.reward_rnn must be a \.safetensors path or None"):
        RLOOConfig(env=EnvConfig(reward_rnn=NoteRNN()))
    with pytest.raises(ValueError, match=r"env\.reward_scaler must be >= 0"):
        RLOOConfig(env=EnvConfig(reward_scaler=-1.0))
    with pytest.raises(ValueError, match="unknown key 'H major'"):
        RLOOConfig.from_dict({"key": "H major"})
    config = apply_overrides(RLOOConfig(), ["env.key=g minor", "env.reward_scaler=1", "kl_coef=2"])
    assert (config.env.key, config.env.reward_scaler, config.kl_coef) == ("G minor", 1.0, 2.0)
    assert config.env.reward_mode == "music_theory_only"
    with pytest.raises(ValueError, match="unknown config field 'key'"):
        apply_overrides(RLOOConfig(), ["key=G major"])


# --- rollout, exact KL and the loss, with the shipped Note RNN


@pytest.fixture(scope="module")
def shipped():
    return NoteRNN.load().eval()


def test_rollout_groups_share_a_primer_and_the_untuned_policy_is_the_prior(shipped):
    config = small_config(num_primers=4, samples_per_primer=3)
    policy = RLOOPolicy.from_config(config, shipped)
    envs = rloo.make_envs(config, config.batch_compositions, shipped)
    seeds = rloo.round_seeds(config, "train", 0, 4, 3)
    batch = rloo.rollout(policy, envs, seeds, rloo.round_rng(config, "train", 0))
    envs.close()
    primers = batch.primers[:, -1].reshape(4, 3)
    assert (primers == primers[:, :1]).all()
    assert len(set(primers[:, 0].tolist())) > 1
    assert batch.scores == pytest.approx(2.0 * batch.music_theory)  # music_theory_only, s = 2
    # policy = Note RNN at the start: its log-probs are the env's prior_log_probs, KL ~ 0
    with torch.no_grad():
        log_pi = policy.sequence_log_probs(batch.primers, batch.primer_lengths, batch.actions)
    np.testing.assert_allclose(log_pi.numpy(), batch.prior_log_probs, atol=1e-4)
    assert rloo.exact_kl(policy, batch).max() < 1e-6
    taken = np.take_along_axis(batch.prior_log_probs, batch.actions[..., None], 2)[..., 0]
    np.testing.assert_allclose(taken, batch.log_prob, atol=1e-4)


@pytest.mark.parametrize("key", ["G major", "E minor", "F# major"])
def test_in_any_key_the_untuned_policy_is_the_env_prior(shipped, key):
    """The policy reads tokens transposed into C major / A minor, as the env's reward RNN."""
    config = small_config(key=key, position_logits=True)
    policy = RLOOPolicy.from_config(config, shipped)
    envs = rloo.make_envs(config, config.batch_compositions, shipped)
    batch = rloo.rollout(
        policy, envs, rloo.round_seeds(config, "train", 0, 3, 2), np.random.default_rng(0)
    )
    envs.close()
    assert rloo.exact_kl(policy, batch).max() < 1e-6
    with torch.no_grad():
        log_pi = policy.sequence_log_probs(batch.primers, batch.primer_lengths, batch.actions)
    np.testing.assert_allclose(log_pi.numpy(), batch.prior_log_probs, atol=1e-4)


def test_loss_kl_is_the_exact_kl_of_the_evaluation(shipped):
    config = small_config(kl_coef=0.7)
    policy = RLOOPolicy.from_config(config, shipped)
    with torch.no_grad():  # move the policy away from the prior
        policy.network.head.bias.add_(torch.linspace(-1.0, 1.0, 38))
    envs = rloo.make_envs(config, config.batch_compositions, shipped)
    batch = rloo.rollout(
        policy, envs, rloo.round_seeds(config, "train", 0, 3, 2), np.random.default_rng(0)
    )
    envs.close()
    with torch.no_grad():
        log_pi = policy.sequence_log_probs(batch.primers, batch.primer_lengths, batch.actions)
    expected = kl_from_prior(
        log_pi.double().numpy().reshape(-1, 38),
        batch.prior_log_probs.astype(np.float64).reshape(-1, 38),
    ).reshape(batch.actions.shape)
    np.testing.assert_allclose(rloo.exact_kl(policy, batch), expected, rtol=1e-4, atol=1e-6)
    assert expected.mean() > 0.01
    # identical samples in a group -> zero advantages: the loss is beta * mean KL exactly
    same = rloo.Rollout(
        *(
            np.repeat(getattr(batch, name)[::2], 2, axis=0)
            for name in (
                "primers",
                "primer_lengths",
                "actions",
                "scores",
                "music_theory",
                "log_prob",
                "prior_log_probs",
            )
        ),
        terms={},
    )
    loss, stats = rloo.rloo_loss(policy, same, config)
    kl = rloo.exact_kl(policy, same)
    assert float(loss.detach()) == pytest.approx(0.7 * kl.mean(), rel=1e-4)
    assert stats.kl == pytest.approx(kl.sum(axis=1).mean(), rel=1e-4)
    free_start = small_config(kl_coef=0.7, first_step_kl_coef=0.0)  # the first step's KL free
    loss, _ = rloo.rloo_loss(policy, same, free_start)
    assert float(loss.detach()) == pytest.approx(0.7 * kl[:, 1:].sum() / kl.size, rel=1e-4)


def test_the_gradient_raises_the_log_prob_of_a_better_token(shipped):
    """One composition scoring more than its twin: the step pushes its tokens up."""
    config = small_config(kl_coef=0.0, learning_rate=1e-2, num_primers=1, samples_per_primer=2)
    policy = RLOOPolicy.from_config(config, shipped)
    envs = rloo.make_envs(config, 2, shipped)
    batch = rloo.rollout(policy, envs, [5, 5], np.random.default_rng(1))
    envs.close()
    batch.scores[:] = 0.0
    batch.scores[0, -1] = 10.0  # row 0 is better: all its tokens get advantage +10
    optimizer = rloo.make_optimizer(policy, config)
    before = policy.sequence_log_probs(batch.primers, batch.primer_lengths, batch.actions)
    loss, _ = rloo.rloo_loss(policy, batch, config)
    loss.backward()
    optimizer.step()
    after = policy.sequence_log_probs(batch.primers, batch.primer_lengths, batch.actions)
    row = torch.arange(batch.actions.shape[1])
    taken = torch.from_numpy(batch.actions[0])
    gained = (after[0, row, taken] - before[0, row, taken]).sum()
    assert float(gained.detach()) > 0


# --- the policy: SB3 predict, action_log_probs, position logits


@pytest.mark.parametrize("key", ["C major", "G major"])
def test_predict_replays_the_rollout_and_action_log_probs_matches(shipped, key):
    config = small_config(position_logits=True, key=key)
    policy = RLOOPolicy.from_config(config, shipped)
    with torch.no_grad():
        policy.position_logits.normal_(0.0, 2.0, generator=torch.Generator().manual_seed(0))
    envs = rloo.make_envs(config, 3, shipped)
    greedy = rloo.rollout(policy, envs, [1, 2, 3], np.random.default_rng(0), greedy=True)
    with torch.no_grad():
        expected = policy.sequence_log_probs(greedy.primers, greedy.primer_lengths, greedy.actions)
    obs, _ = envs.reset(seed=[1, 2, 3])
    state, starts = None, np.ones(3, bool)
    for t in range(config.env.composition_length):
        log_pi = policy.action_log_probs(obs, state, starts)  # must not advance the state
        np.testing.assert_allclose(log_pi, expected[:, t].numpy(), atol=1e-4)
        actions, state = policy.predict(obs, state, starts, deterministic=True)
        assert actions.tolist() == greedy.actions[:, t].tolist()
        starts = np.zeros(3, bool)
        obs, *_ = envs.step(actions)
    envs.close()
    single, single_state = policy.predict(obs[0], None, None, deterministic=True)
    assert np.ndim(single) == 0 and single_state[0].shape == (1, 1, shipped.config.hidden_size)


def test_sequence_log_probs_equal_the_stepwise_ones_with_position_logits(shipped):
    config = small_config(position_logits=True, temperature=0.8)
    policy = RLOOPolicy.from_config(config, shipped)
    with torch.no_grad():
        policy.position_logits.normal_(0.0, 2.0, generator=torch.Generator().manual_seed(1))
    primers = np.array([[0, 0, 0, 0, 0, 0, 0, 14], [0, 0, 0, 0, 0, 0, 16, 18]])
    lengths = np.array([1, 2])
    actions = np.random.default_rng(0).integers(0, 38, size=(2, 8))
    with torch.no_grad():
        whole = policy.sequence_log_probs(primers, lengths, actions).numpy()
    log_pi, state = policy.prime(primers, lengths)
    for t in range(8):
        np.testing.assert_allclose(whole[:, t], log_pi, atol=1e-5)
        log_pi, state = policy.step(actions[:, t], state, t + 1) if t < 7 else (None, state)


def test_predict_rejects_a_wrong_observation(shipped):
    policy = RLOOPolicy.from_config(small_config(), shipped)
    with pytest.raises(ValueError, match="observation must have shape"):
        policy.predict(np.zeros((2, 5), np.int8))


def test_the_vector_env_is_the_native_one(shipped):
    envs = rloo.make_envs(small_config(), 2, shipped)
    assert type(envs.unwrapped).__name__ == "MelodyCompositionVectorEnv"
    assert envs.unwrapped.reward_function.weights == {
        name: 2.0 for name in envs.unwrapped.reward_function.weights
    }
    envs.close()
    assert gym.spec(ENV_ID).vector_entry_point is not None
