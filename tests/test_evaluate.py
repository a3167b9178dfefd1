"""evaluate() for the Note RNN, random and SB3 policies; the loader registry; the engines agree."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import melody_env
from melody_env.evaluation import NoteRNNPolicy, RandomPolicy, evaluate, load_policy
from melody_env.evaluation import policies as policies_module
from melody_env.evaluation.evaluate import kl_from_prior, seeded_global_rngs, vector_env_available
from melody_env.evaluation.metrics import score_compositions
from melody_env.evaluation.policies import detect_sb3_algorithm, parse_checkpoint, policy_name
from melody_env.models import NoteRNN, NoteRNNConfig

ENV_ID = melody_env.ENV_ID
RULE_COLUMNS = ("not_in_key", "excessively_repeated", "in_motif", "leaps_resolved", "music_theory")


class OwnNoteRNN(NoteRNNPolicy):
    """A Note RNN policy forced through ``predict`` (no shortcut through the env's prior)."""

    def samples_env_prior(self, reward_rnn):
        return False


def test_note_rnn_policy_is_reproducible_and_has_zero_kl(tiny_rnn):
    first = evaluate(NoteRNNPolicy(), n=40, seed=3, reward_rnn=tiny_rnn, n_bootstrap=0)
    again = evaluate(NoteRNNPolicy(), n=40, seed=3, reward_rnn=tiny_rnn, n_bootstrap=0)
    other = evaluate(NoteRNNPolicy(), n=40, seed=4, reward_rnn=tiny_rnn, n_bootstrap=0)
    assert first.tokens.shape == (40, 32) and first.config["engine"] == "state"
    np.testing.assert_array_equal(first.tokens, again.tokens)
    assert not np.array_equal(first.tokens, other.tokens)
    assert first.summary["kl"].value == pytest.approx(0.0, abs=1e-6)
    assert first.summary["log_prob"].value < 0
    assert len(first.primers) == 40


def test_single_pass_statistics_equal_a_replay_of_the_compositions(tiny_rnn):
    result = evaluate(
        NoteRNNPolicy(), n=30, seed=1, key="E minor", reward_rnn=tiny_rnn, n_bootstrap=0
    )
    replay = score_compositions(result.tokens, "E minor", result.primers, reward_rnn=tiny_rnn)
    for name, column in replay.items():
        np.testing.assert_allclose(result.table[name], column, rtol=1e-6, atol=1e-6, err_msg=name)


def test_predict_path_matches_sampling_from_the_env_prior(tiny_rnn):
    # Greedy decoding is deterministic: the policy's own LSTM, primed from the observation, must
    # pick exactly what the env's reward RNN prefers, primer included.
    primer = [14, 0, 16, 0, 1]
    kwargs = dict(
        n=12, seed=5, reward_rnn=tiny_rnn, primer=primer, deterministic=True, n_bootstrap=0
    )
    shortcut = evaluate(NoteRNNPolicy(), **kwargs)
    own = evaluate(OwnNoteRNN(tiny_rnn), engine="state", **kwargs)
    np.testing.assert_array_equal(shortcut.tokens, own.tokens)
    assert own.summary["kl"].value > 0  # a point mass, KL = -log p(action)


def test_note_rnn_checkpoint_of_the_reward_rnn_takes_the_shortcut(tiny_rnn, tiny_rnn_path):
    policy = load_policy(tiny_rnn_path)
    assert isinstance(policy, NoteRNNPolicy) and policy.samples_env_prior(tiny_rnn)
    other = NoteRNNPolicy(NoteRNN(NoteRNNConfig(hidden_size=16), seed=1))
    assert not other.samples_env_prior(tiny_rnn)
    result = evaluate(other, n=16, reward_rnn=tiny_rnn, n_bootstrap=0, engine="state")
    assert result.summary["kl"].value > 0


def test_random_policy_rates(tiny_rnn):
    result = evaluate(RandomPolicy(), n=300, seed=0, reward_rnn=tiny_rnn, n_bootstrap=200)
    out_of_key = 15 / 38  # five black keys per octave, three octaves, of 38 tokens
    estimate = result.summary["not_in_key"]
    assert estimate.low < estimate.value < estimate.high
    assert abs(estimate.value - out_of_key) < 0.02
    assert result.summary["hold_share"].value == pytest.approx(1 / 38, abs=0.01)
    kl = result.summary["kl"].value  # KL(uniform || p) = -log 38 - mean_a log p(a)
    assert kl > 0
    assert result.summary["duplicates"].value == 0.0


@pytest.mark.skipif(not vector_env_available(), reason="the native vector env is not registered")
def test_vector_and_state_engines_agree(tiny_rnn):
    # The random policy's tokens do not depend on the engine; the primers do, so log p differs.
    kwargs = dict(n=50, seed=2, key="A minor", reward_rnn=tiny_rnn, n_bootstrap=0, batch_size=20)
    state = evaluate(RandomPolicy(), engine="state", **kwargs)
    vector = evaluate(RandomPolicy(), engine="vector", **kwargs)
    np.testing.assert_array_equal(state.tokens, vector.tokens)
    for name in RULE_COLUMNS:
        np.testing.assert_allclose(state.table[name], vector.table[name], err_msg=name)
    replay = score_compositions(vector.tokens, "A minor", vector.primers, reward_rnn=tiny_rnn)
    np.testing.assert_allclose(vector.table["log_prob"], replay["log_prob"], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(
        vector.table["total_reward"], 2 * replay["music_theory"] + replay["log_prob"], atol=1e-3
    )


def make_dqn(reward_rnn):
    from stable_baselines3 import DQN

    env = gym.make(ENV_ID, reward_rnn=reward_rnn)
    return DQN(
        "MlpPolicy",
        env,
        learning_starts=64,
        buffer_size=500,
        batch_size=16,
        train_freq=4,
        policy_kwargs={"net_arch": [32]},
        seed=0,
        device="cpu",
    )


def test_sb3_dqn_model_saved_and_loaded(tiny_rnn, tmp_path):
    model = make_dqn(tiny_rnn)
    result = evaluate(model, n=24, seed=0, reward_rnn=tiny_rnn, n_bootstrap=50, batch_size=12)
    assert result.config["engine"] == ("vector" if vector_env_available() else "state")
    assert result.tokens.shape == (24, 32)
    assert np.isnan(result.summary["kl"].value)  # epsilon-greedy: no distribution to compare
    greedy = evaluate(model, n=8, reward_rnn=tiny_rnn, n_bootstrap=0, deterministic=True)
    assert greedy.summary["kl"].value > 0  # a point mass on the greedy token

    path = tmp_path / "dqn.zip"
    model.save(path)
    assert detect_sb3_algorithm(path) == "sb3-dqn"
    loaded = load_policy(str(path))  # a bare .zip: the algorithm is read from the zip
    again = evaluate(loaded, n=8, reward_rnn=tiny_rnn, n_bootstrap=0, deterministic=True)
    np.testing.assert_array_equal(again.tokens, greedy.tokens)


@pytest.mark.slow
def test_sb3_dqn_trained_for_200_steps(tiny_rnn, tmp_path):
    model = make_dqn(tiny_rnn)
    model.learn(200)
    model.save(tmp_path / "dqn.zip")
    loaded = load_policy(f"sb3-dqn:{tmp_path / 'dqn.zip'}")
    for policy in (model, loaded):
        result = evaluate(
            policy, n=16, seed=0, reward_rnn=tiny_rnn, n_bootstrap=50, deterministic=True
        )
        assert result.tokens.shape == (16, 32)
        assert np.isfinite(result.summary["music_theory"].value)


def test_sb3_ppo_gives_its_distribution_for_the_kl(tiny_rnn, tmp_path):
    from stable_baselines3 import PPO

    env = gym.make(ENV_ID, reward_rnn=tiny_rnn)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=32, seed=0, device="cpu")
    result = evaluate(model, n=16, reward_rnn=tiny_rnn, n_bootstrap=0, engine="state")
    kl = result.summary["kl"].value
    assert np.isfinite(kl) and kl >= 0
    model.save(tmp_path / "ppo.zip")
    assert detect_sb3_algorithm(tmp_path / "ppo.zip") == "sb3-ppo"


def test_other_keys_primers_and_env_kwargs(tiny_rnn):
    result = evaluate(
        RandomPolicy(),
        n=10,
        key="F# major",
        primer=[23, 0],
        reward_rnn=tiny_rnn,
        env_kwargs={"composition_length": 16, "reward_mode": "music_theory_only"},
        n_bootstrap=0,
    )
    assert result.tokens.shape == (10, 16) and result.key.name == "F# major"
    assert all(list(primer) == [23, 0] for primer in result.primers)
    # music_theory_only: the env reward is 2 x r_MT (no log p).
    np.testing.assert_allclose(result.table["total_reward"], 2 * result.table["music_theory"])


def test_bad_arguments(tiny_rnn):
    with pytest.raises(ValueError, match="n must be"):
        evaluate(RandomPolicy(), n=0, reward_rnn=tiny_rnn)
    with pytest.raises(ValueError, match="engine"):
        evaluate(RandomPolicy(), n=2, reward_rnn=tiny_rnn, engine="fast")
    with pytest.raises(TypeError, match="predict"):
        evaluate(object(), n=2, reward_rnn=tiny_rnn)
    with pytest.raises(ValueError, match="env_kwargs"):
        evaluate(RandomPolicy(), n=2, reward_rnn=tiny_rnn, env_kwargs={"colour": 1})

    class Broken:
        def predict(self, observation, state=None, episode_start=None, deterministic=False):
            return np.full(len(observation), 99), state

    with pytest.raises(ValueError, match="outside"):
        evaluate(Broken(), n=2, reward_rnn=tiny_rnn, engine="state")


# --- Policies and loaders -----------------------------------------------------------------------


def test_policies_speak_sb3_predict(tiny_rnn):
    env = gym.make(ENV_ID, reward_rnn=tiny_rnn)
    obs, _ = env.reset(seed=0)
    for policy in (RandomPolicy(seed=0), NoteRNNPolicy(tiny_rnn, seed=0)):
        action, state = policy.predict(obs, deterministic=False)
        assert 0 <= int(action) < 38
        action, _ = policy.predict(obs, state=state, episode_start=np.zeros(1, bool))
        assert 0 <= int(action) < 38
        batch = np.stack([obs, obs])
        actions, _ = policy.predict(batch, state=None, episode_start=np.ones(2, bool))
        assert actions.shape == (2,)
        log_probs = policy.action_log_probs(batch)
        np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        NoteRNNPolicy(tiny_rnn, temperature=0)


def test_parse_and_load_checkpoints(tiny_rnn_path, tmp_path):
    assert parse_checkpoint("random") == ("random", "")
    assert parse_checkpoint("note-rnn") == ("note-rnn", "")
    assert parse_checkpoint(f"note-rnn:{tiny_rnn_path}") == ("note-rnn", tiny_rnn_path)
    assert parse_checkpoint("sb3-qrdqn:a.zip") == ("sb3-qrdqn", "a.zip")
    with pytest.raises(ValueError, match=r"cannot tell what kind of policy 'runs/seed0' is"):
        parse_checkpoint("runs/seed0")  # the env package knows no agent
    assert parse_checkpoint("runs/seed0", {"mine": RandomPolicy}, "mine") == ("mine", "runs/seed0")
    assert isinstance(load_policy("random"), RandomPolicy)
    assert isinstance(load_policy(tiny_rnn_path), NoteRNNPolicy)
    assert policy_name(tiny_rnn_path) == "tiny" and policy_name("random") == "random"
    with pytest.raises(FileNotFoundError, match="not found"):
        load_policy(str(tmp_path / "missing.zip"))
    with pytest.raises(ValueError, match="needs a path"):
        load_policy("sb3-dqn:")
    (tmp_path / "not_sb3.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a Stable-Baselines3"):
        load_policy(str(tmp_path / "not_sb3.zip"))


def test_loaders_are_passed_in(tmp_path):
    """A package of agents adds its kinds by passing loaders (melody_env imports no agent)."""
    loaders = {**policies_module.LOADERS, "mine": lambda path: RandomPolicy(seed=1)}
    (tmp_path / "run").mkdir()
    assert isinstance(load_policy(f"mine:{tmp_path / 'run'}", loaders), RandomPolicy)
    assert isinstance(load_policy(str(tmp_path / "run"), loaders, "mine"), RandomPolicy)
    assert policy_name(str(tmp_path / "run"), loaders, "mine") == "run"
    with pytest.raises(TypeError, match="has no predict"):
        load_policy(f"mine:{tmp_path / 'run'}", {"mine": lambda path: object()})


def test_seeded_global_rngs_restore_the_caller_state():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    with seeded_global_rngs(7):
        inside = torch.rand(1)
    assert torch.equal(torch.rand(1), before)
    with seeded_global_rngs(7):
        assert torch.equal(torch.rand(1), inside)


def test_kl_from_prior():
    uniform = np.full((1, 38), -np.log(38))
    assert kl_from_prior(uniform, uniform)[0] == pytest.approx(0.0)
    point = np.where(np.arange(38) == 3, 0.0, -np.inf)[None]
    assert kl_from_prior(point, uniform)[0] == pytest.approx(np.log(38))


@pytest.mark.slow
def test_sb3_contrib_recurrent_ppo_keeps_its_lstm_state(tiny_rnn, tmp_path):
    from sb3_contrib import RecurrentPPO

    env = gym.make(ENV_ID, reward_rnn=tiny_rnn)
    kwargs = {"lstm_hidden_size": 8, "net_arch": [8]}
    model = RecurrentPPO("MlpLstmPolicy", env, n_steps=32, batch_size=32, policy_kwargs=kwargs)
    result = evaluate(model, n=8, reward_rnn=tiny_rnn, n_bootstrap=0, deterministic=True)
    assert result.tokens.shape == (8, 32) and result.summary["kl"].value > 0
    model.save(tmp_path / "rppo.zip")
    assert detect_sb3_algorithm(tmp_path / "rppo.zip") == "sb3-recurrentppo"
    loaded = load_policy(str(tmp_path / "rppo.zip"))
    again = evaluate(loaded, n=8, reward_rnn=tiny_rnn, n_bootstrap=0, deterministic=True)
    np.testing.assert_array_equal(again.tokens, result.tokens)


@pytest.mark.parametrize(("engine", "greedy_diversity"), [("state", False), ("vector", True)])
def test_progress_reports_the_fraction_of_the_rollouts(tiny_rnn, engine, greedy_diversity):
    fractions = []
    evaluate(
        OwnNoteRNN(tiny_rnn, seed=0),
        n=6,
        batch_size=4,
        reward_rnn=tiny_rnn,
        n_bootstrap=0,
        music=False,
        engine=engine,
        greedy_diversity=greedy_diversity,
        env_kwargs={"composition_length": 4},
        progress=fractions.append,
    )
    passes = 2 if greedy_diversity else 1
    # Batches of 4 and 2 compositions, 4 steps each, per pass: 24 composition-steps a pass.
    steps = [4] * 4 + [2] * 4
    expected = np.cumsum(steps * passes) / (24 * passes)
    np.testing.assert_allclose(fractions, expected)
