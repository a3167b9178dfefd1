"""Whole-composition replay recomputes exactly the states the agent acted from; a gradient step
trains only the Q-network; non-finite targets stop training with the step named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.rl_tuner.agent import RLTunerAgent
from agents.rl_tuner.config import make_config
from agents.rl_tuner.dqn import gradient_step, recompute_scores
from agents.rl_tuner.replay import CompositionBatch, CompositionReplay
from agents.rl_tuner.rollout import VectorComposer, make_vector_env, round_seeds
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig

LENGTH = 6


def make_agent(algo="q", **overrides):
    config = make_config(
        "fast",
        algo,
        num_envs=4,
        env={"composition_length": LENGTH, "primer_context": 4},
        **overrides,
    )
    return RLTunerAgent(config, NoteRNN(NoteRNNConfig(hidden_size=16), seed=0))


def play_round(agent, primer=None, explore_seed=0):
    """One round of compositions; also the policy logits the agent acted from at each step."""
    envs = make_vector_env(agent.config, agent.config.num_envs, agent.reward_rnn)
    if primer is not None:
        envs.close()
        import gymnasium as gym

        from melody_env import ENV_ID

        envs = gym.make_vec(
            ENV_ID,
            num_envs=agent.config.num_envs,
            vectorization_mode="sync",
            config=agent.config.env,
            reward_rnn=agent.reward_rnn,
            primer=primer,
        )
    composer = VectorComposer(envs, agent, LENGTH)
    composer.reset(round_seeds(0, "train", 0, agent.config.num_envs))
    rng = np.random.default_rng(explore_seed)
    acted = []

    def choose(logits):
        acted.append(logits.copy())
        return rng.integers(0, 38, len(logits))

    finished = None
    while not composer.round_done:
        _, finished = composer.step(choose)
    return finished, np.stack(acted, axis=1)  # [N, L, 38]


def to_batch(finished) -> CompositionBatch:
    terminals = np.zeros(finished.actions.shape, dtype=bool)
    terminals[:, -1] = True
    return CompositionBatch(
        finished.primers,
        finished.primer_lengths,
        finished.actions,
        finished.rewards,
        finished.prior_log_probs,
        terminals,
    )


@pytest.mark.parametrize("primer", [None, [14, 0, 16, 0, 18]])
def test_replay_recomputes_the_q_values_the_agent_acted_from(primer):
    agent = make_agent("q")
    finished, acted = play_round(agent, primer)
    current, next_online, next_target = recompute_scores(agent, to_batch(finished))
    assert np.allclose(current.detach().numpy(), acted, atol=1e-5)
    # the next state's online scores are the following step's acting scores
    assert np.allclose(next_online[:, :-1].numpy(), acted[:, 1:], atol=1e-5)
    # before any update the target network equals the online network
    assert torch.allclose(next_target, next_online, atol=1e-6)


def test_stored_prior_log_probs_are_the_reward_rnn_after_each_step():
    agent = make_agent("g")
    finished, acted = play_round(agent)
    tokens = torch.from_numpy(np.concatenate([finished.primers[:, -1:], finished.actions], 1))
    with torch.no_grad():
        logits, _ = agent.reward_rnn(tokens)
    log_probs = torch.log_softmax(logits, -1).numpy()
    assert np.allclose(finished.prior_log_probs, log_probs[:, 1:], atol=1e-5)
    # G-learning acts on G + log p(. | s_t)
    q_logits, _ = agent.q_network(tokens)
    expected = (q_logits[:, :-1] + torch.log_softmax(logits[:, :-1], -1)).detach().numpy()
    assert np.allclose(acted, expected, atol=1e-5)


def test_a_gradient_step_trains_only_the_q_network():
    agent = make_agent("g", learning_rate=1e-2, target_network_update_rate=0.5)
    finished, _ = play_round(agent)
    prior_before = [p.clone() for p in agent.reward_rnn.parameters()]
    target_before = [p.clone() for p in agent.target_q_network.parameters()]
    q_before = [p.clone() for p in agent.q_network.parameters()]
    optimizer = torch.optim.Adam(agent.q_network.parameters(), lr=1e-2)
    mask = np.ones(finished.actions.shape, dtype=bool)
    stats = gradient_step(agent, optimizer, to_batch(finished), mask, step=123)
    assert np.isfinite(stats.td_loss)
    for before, after in zip(prior_before, agent.reward_rnn.parameters(), strict=True):
        assert torch.equal(before, after) and after.grad is None
    for before, after, online in zip(
        target_before,
        agent.target_q_network.parameters(),
        agent.q_network.parameters(),
        strict=False,
    ):
        assert torch.allclose(after, 0.5 * before + 0.5 * online, atol=1e-6)
    assert any(
        not torch.equal(b, a) for b, a in zip(q_before, agent.q_network.parameters(), strict=True)
    )


def test_a_non_finite_target_stops_before_any_update_naming_the_step():
    agent = make_agent("q")
    finished, _ = play_round(agent)
    batch = to_batch(finished)
    batch.rewards[0, 2] = np.nan
    q_before = [p.clone() for p in agent.q_network.parameters()]
    optimizer = torch.optim.Adam(agent.q_network.parameters())
    with pytest.raises(FloatingPointError, match="step 4242"):
        gradient_step(agent, optimizer, batch, np.ones(batch.actions.shape, bool), step=4242)
    for before, after in zip(q_before, agent.q_network.parameters(), strict=True):
        assert torch.equal(before, after)


def test_replay_ring_buffer_sampling_and_round_trip(tmp_path):
    replay = CompositionReplay(capacity=3, length=4, primer_width=2, seed=0)
    for index in range(5):
        replay.add(
            np.array([index % 38]),
            np.full(4, index),
            np.full(4, float(index)),
            np.zeros((4, 38)),
            np.array([0, 0, 0, 1], bool),
        )
    assert len(replay) == 3 and replay.transitions == 12
    assert sorted(replay.actions[:, 0].tolist()) == [2, 3, 4]  # the oldest two were overwritten
    batch = replay.sample(3)
    assert sorted(batch.actions[:, 0].tolist()) == [2, 3, 4]  # distinct within a batch
    assert batch.primers.shape == (3, 2) and (batch.primer_lengths == 1).all()
    mask = replay.sample_steps(5, 1)
    assert mask.shape == (5, 4) and (mask.sum(1) == 1).all()
    replay.save(tmp_path / "replay.npz")
    state = replay.state()
    copy = CompositionReplay(capacity=3, length=4, primer_width=2, seed=99)
    copy.load(tmp_path / "replay.npz", state)
    assert np.array_equal(copy.sample(2).actions, replay.sample(2).actions)
    assert copy.position == replay.position and len(copy) == 3
