"""``agents.rloo.RLOO``: the library class on the envs a user makes (SB3's shape)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.rloo import RLOO
from agents.rloo.checkpoint import find_checkpoint
from melody_env import ENV_ID
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig

TINY = {"composition_length": 8}
"""Envs of 8-step compositions: 2 primers x 4 samples x 8 steps = 64 env steps per iteration."""


def tiny_rnn(seed: int = 0) -> NoteRNN:
    return NoteRNN(NoteRNNConfig(hidden_size=16), seed=seed)


def tiny_vec(num_envs: int = 8, rnn: NoteRNN | None = None, **kwargs) -> gym.vector.VectorEnv:
    kwargs = {**TINY, "reward_rnn": rnn or tiny_rnn(), **kwargs}
    return gym.make_vec(ENV_ID, num_envs=num_envs, **kwargs)


def weights(model: RLOO) -> dict[str, torch.Tensor]:
    state = {f"net.{k}": v for k, v in model.policy.network.state_dict().items()}
    return state | {"position": model.policy.position_logits.detach().clone()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def record(into: list):
    """A callback keeping every iteration's locals."""

    def callback(local, _globals):
        into.append(dict(local))
        return True

    return callback


def test_the_issue_env_with_the_shipped_note_rnn():
    """The issue's env (G major, autocorrelation off, 16 rows) with the shipped Note RNN: the
    policy starts as the env's reward RNN (KL 0 before the first step), whose reward is the
    env's own weighted sum, and learning moves it."""
    envs = gym.make_vec(ENV_ID, num_envs=16, key="G major", reward_weights={"autocorrelation": 0.0})
    model = RLOO(envs, seed=0, num_primers=4)
    rnn = envs.unwrapped.reward_rnn
    assert model.policy.network is not rnn
    assert same(
        {k: v for k, v in model.policy.network.state_dict().items()}, dict(rnn.state_dict())
    )
    seen: list = []
    assert model.learn(4096, callback=record(seen)) is model
    # 4 primers x 4 samples x 32 steps = 512 steps an iteration: 8 iterations
    assert model.num_timesteps == 4096 and len(seen) == 8 and model.config.env.key == "G major"
    assert abs(seen[0]["logged"]["objective/kl"]) < 1e-4 < seen[-1]["logged"]["objective/kl"]
    batch = seen[0]["batch"]
    assert "autocorrelation" not in batch.terms
    expected = sum(
        w * batch.terms[name] for name, w in envs.unwrapped.reward_function.weights.items()
    )
    np.testing.assert_allclose(batch.scores, expected, rtol=1e-12, atol=1e-9)
    assert not same(weights(model), weights(RLOO(envs, seed=0, num_primers=4)))


def test_groups_of_k_rows_share_a_primer_and_the_batch_spans_rollouts():
    seen: list = []
    envs = tiny_vec(8)
    model = RLOO(envs, seed=0, num_primers=4, samples_per_primer=4)
    model.learn(1, callback=record(seen))
    batch = seen[0]["batch"]
    assert batch.actions.shape == (16, 8)  # 4 primers x 4 samples, in 2 rollouts of 8 rows
    primers = batch.primers.reshape(4, 4, -1)
    assert (primers == primers[:, :1]).all()  # the k rows of a group: one primer
    assert len({tuple(group[0]) for group in primers}) > 1
    assert model.num_timesteps == 128  # learn(1) rounds up to one whole iteration


def test_total_timesteps_round_up_to_whole_iterations():
    model = RLOO(tiny_vec(4), seed=0, num_primers=2, samples_per_primer=2)  # 32 steps each
    assert model.learn(33).num_timesteps == 64
    assert model.learn(32, reset_num_timesteps=False).num_timesteps == 96
    assert model.learn(32).num_timesteps == 32  # reset: counted from 0 again
    assert model.progress.iteration == 1


def test_num_primers_rounds_up_to_whole_rollouts():
    model = RLOO(tiny_vec(12), seed=0, num_primers=4, samples_per_primer=4)  # 3 groups a rollout
    assert model.config.num_primers == 6


def test_same_seed_same_model_other_seed_other_model():
    a = RLOO(tiny_vec(8), seed=3, num_primers=2).learn(128)
    b = RLOO(tiny_vec(8), seed=3, num_primers=2).learn(128)
    c = RLOO(tiny_vec(8), seed=4, num_primers=2).learn(128)
    assert same(weights(a), weights(b)) and not same(weights(a), weights(c))


def test_save_load_round_trip_and_continuing_is_exact(tmp_path):
    envs = tiny_vec(8, key="E minor")
    model = RLOO(envs, seed=0, num_primers=2).learn(64)
    model.save(tmp_path / "m")
    loaded = RLOO.load(tmp_path / "m", env=envs)
    assert loaded.config == model.config and loaded.num_timesteps == 64
    assert same(weights(loaded), weights(model))
    obs, _ = envs.reset(seed=5)
    starts = np.ones(8, dtype=bool)
    for deterministic in (True, False):
        model.set_random_seed(1)
        loaded.set_random_seed(1)
        first, _ = model.predict(obs, None, starts, deterministic=deterministic)
        second, _ = loaded.predict(obs, None, starts, deterministic=deterministic)
        assert np.array_equal(first, second)
    # learn(64) + save + load + learn(64, reset=False) == learn(128)
    loaded.learn(64, reset_num_timesteps=False)
    straight = RLOO(envs, seed=0, num_primers=2).learn(128)
    assert same(weights(loaded), weights(straight))
    assert find_checkpoint(tmp_path / "m").name == "step_000000064"


def test_a_model_loaded_without_an_env_predicts_and_asks_for_one_to_learn(tmp_path):
    envs = tiny_vec(8)
    RLOO(envs, seed=0, num_primers=2).learn(64).save(tmp_path / "m")
    loaded = RLOO.load(tmp_path / "m")
    assert loaded.get_env() is None
    obs, _ = envs.reset(seed=0)
    action, state = loaded.predict(obs[0], deterministic=True)
    assert action.shape == () and state[0].shape == (1, 1, 16)
    with pytest.raises(ValueError, match="has no env"):
        loaded.learn(64)
    with pytest.raises(ValueError, match="key 'G major' differs from the model's 'C major'"):
        loaded.set_env(tiny_vec(8, key="G major"))
    loaded.set_env(ENV_ID)  # the config's env, scored by the checkpoint's prior
    assert loaded.get_env().num_envs == 8 and loaded.learn(64).num_timesteps == 64


def test_a_single_env_with_the_shipped_note_rnn_is_wrapped_in_copies():
    single = gym.make(ENV_ID, key="D minor")
    model = RLOO(single, seed=0, num_primers=2)
    envs = model.get_env()
    assert isinstance(envs, gym.vector.SyncVectorEnv) and envs.num_envs == 8
    rows = [env.unwrapped for env in envs.envs]
    assert all(row is not single.unwrapped for row in rows)
    assert all(row.reward_rnn is single.unwrapped.reward_rnn for row in rows)  # shared
    seen: list = []
    model.learn(256, callback=record(seen))  # 2 primers x 4 samples x 32 steps
    assert model.num_timesteps == 256 and model.config.env.key == "D minor"
    assert abs(seen[0]["logged"]["objective/kl"]) < 1e-4
    obs, _ = single.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert single.action_space.contains(int(action))


def test_a_sync_vector_env_is_used_as_is():
    rnn = tiny_rnn()
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make(ENV_ID, key="F# major", reward_rnn=rnn, **TINY) for _ in range(4)]
    )
    seen: list = []
    model = RLOO(envs, seed=0, num_primers=2).learn(64, callback=record(seen))
    assert model.get_env() is envs and model.config.env.key == "F# major"
    assert abs(seen[0]["logged"]["objective/kl"]) < 1e-5  # the policy starts as the env's RNN


def test_the_agents_rule_weights_scale_the_envs_weights():
    """``rule_weights`` multiply the env's weight of a rule: a rule the env switched off stays
    off, whatever the agent's weight."""
    seen: list = []
    envs = tiny_vec(8, reward_weights={"key": 0.0})
    RLOO(envs, seed=0, num_primers=2, rule_weights={"key": 5.0, "tonic": 3.0}).learn(
        64, callback=record(seen)
    )
    from agents.rloo.rloo import agent_scores

    local = seen[0]
    batch, model = local["batch"], local["self"]
    scores = agent_scores(batch, model.config, model._facts.rule_scales())
    np.testing.assert_allclose(scores, batch.scores + 2.0 * 2.0 * batch.terms["tonic"])


def test_refusals_are_one_line():
    cases = [
        (lambda: RLOO(tiny_vec(6), seed=0), "6 envs are not a multiple of samples_per_primer=4"),
        (lambda: RLOO(tiny_vec(8), seed=0, learning_rat=1e-3), r"fields \['learning_rat'\]"),
        (lambda: RLOO(tiny_vec(8), seed=0, kl_coef=-1.0), "kl_coef must be >= 0"),
        (lambda: RLOO(tiny_vec(8), seed=0, key="G major"), "differs from the env's 'C major'"),
        (lambda: RLOO(gym.make("CartPole-v1"), seed=0), "needs a MelodyCompositionEnv"),
        (lambda: RLOO(42, seed=0), "env must be an env id"),
        (lambda: RLOO("CartPole-v1", seed=0), "'CartPole-v1' does not make a melody env"),
    ]
    rnn = tiny_rnn()
    mixed = gym.vector.SyncVectorEnv(
        [
            lambda key=key: gym.make(ENV_ID, key=key, reward_rnn=rnn, **TINY)
            for key in ("C major", "G major")
        ]
        * 2
    )
    cases.append((lambda: RLOO(mixed, seed=0, samples_per_primer=2), "rows are in different keys"))
    for make, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            make()
        assert "\n" not in str(error.value), message


def test_a_callback_returning_false_stops_after_that_iteration():
    model = RLOO(tiny_vec(8), seed=0, num_primers=2)
    model.learn(640, callback=lambda local, _globals: local["iteration"] < 2)
    assert model.progress.iteration == 3 and model.num_timesteps == 192


def test_tensorboard_log_gets_the_objective(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = RLOO(tiny_vec(8), seed=0, num_primers=2, tensorboard_log=tmp_path / "tb")
    model.learn(128)
    model.writer.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"objective/kl", "objective/scores", "loss/total", "charts/SPS"} <= set(tags)
    assert [event.step for event in events.Scalars("objective/kl")] == [64, 128]


def test_key_any_groups_share_a_key_and_the_untuned_policy_is_the_envs_prior():
    """With the shipped Note RNN: every row reads its own key (C major, A minor or another),
    the k rows of a primer share the key their env drew, and the untuned policy is the env's
    prior in each (KL 0), which a policy reading one key for all would not be."""
    envs = gym.make_vec(ENV_ID, num_envs=16, key="any", composition_length=16)
    seen: list = []
    model = RLOO(envs, seed=0, num_primers=4).learn(1, callback=record(seen))
    batch = seen[0]["batch"]
    keys = batch.key_index.reshape(4, 4)
    assert (keys == keys[:, :1]).all() and len(set(keys[:, 0])) > 1
    assert abs(seen[0]["logged"]["objective/kl"]) < 1e-4
    assert model.config.env.key == "any" and model.policy.position_logits.shape == (2, 16, 38)


def test_key_any_predict_replays_the_rollout_and_sequence_log_probs_match():
    """Trained (random) per-mode position logits: predict from observations replays a greedy
    rollout, and the whole-sequence log-probs (the loss's) equal the stepwise ones."""
    from agents.rloo import rloo

    envs = tiny_vec(8, key="any")
    policy = RLOO(envs, seed=0, num_primers=2).policy
    with torch.no_grad():
        policy.position_logits.normal_(0.0, 2.0, generator=torch.Generator().manual_seed(0))
    seeds = [11, 11, 12, 12, 13, 13, 14, 14]
    greedy = rloo.rollout(policy, envs, seeds, np.random.default_rng(0), greedy=True)
    assert len(set(greedy.key_index)) > 1
    with torch.no_grad():
        whole = policy.sequence_log_probs(
            greedy.primers, greedy.primer_lengths, greedy.actions, greedy.key_index
        )
    obs, _ = envs.reset(seed=seeds)
    state, starts = None, np.ones(8, bool)
    for t in range(8):
        np.testing.assert_allclose(
            policy.action_log_probs(obs, state, starts), whole[:, t].numpy(), atol=1e-4
        )
        actions, state = policy.predict(obs, state, starts, deterministic=True)
        assert actions.tolist() == greedy.actions[:, t].tolist()
        starts = np.zeros(8, bool)
        obs, *_ = envs.step(actions)
    with pytest.raises(ValueError, match="needs each composition's key"):
        policy.prime(greedy.primers, greedy.primer_lengths)


def test_key_any_position_logits_are_per_mode_over_the_reference_tokens():
    """A minor-mode logit for reference token 2 at step 0 makes every minor-key composition
    start on the token its key reads as 2, and no major-key one."""
    from agents.rloo import rloo
    from melody_env.music.transposition import READING_TABLES

    envs = tiny_vec(16, key="any")
    policy = RLOO(envs, seed=0, num_primers=4).policy
    with torch.no_grad():
        policy.position_logits[1, 0, 2] = 100.0
    greedy = rloo.rollout(policy, envs, list(range(16)), np.random.default_rng(0), greedy=True)
    reference = READING_TABLES[greedy.key_index, greedy.actions[:, 0]]
    minor = greedy.key_index >= 12
    assert minor.any() and (~minor).any()
    assert (reference[minor] == 2).all() and (reference[~minor] != 2).all()


def test_verbose_prints_a_line_per_iteration(capsys):
    RLOO(tiny_vec(4), seed=0, num_primers=2, samples_per_primer=2, verbose=1).learn(64)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["rloo iteration 1/2", "rloo iteration 2/2"]
    assert all("r_MT/step" in line and "KL/step" in line for line in lines)
