"""The agent exposes its exact policy, so the evaluation reports KL(pi || Note RNN) for it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.rl_tuner.agent import RLTunerAgent
from agents.rl_tuner.config import make_config
from melody_env.evaluation import evaluate
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig

LENGTH = 6


def make_agent(algo: str, temperature: float = 1.0) -> RLTunerAgent:
    config = make_config(
        "fast", algo, temperature=temperature, env={"composition_length": LENGTH}, seed=0
    )
    return RLTunerAgent(config, NoteRNN(NoteRNNConfig(hidden_size=8), seed=3))


def note_rnn_log_probs(rnn: NoteRNN, primers: list[np.ndarray], tokens: np.ndarray):
    """``log p(. | s_t) [n, L, 38]`` of the Note RNN after the one-token primer and tokens < t."""
    inputs = np.concatenate([np.stack(primers)[:, -1:], tokens[:, :-1]], axis=1)
    with torch.no_grad():
        logits, _ = rnn(torch.from_numpy(inputs))
    return torch.log_softmax(logits.double(), dim=-1).numpy()


@pytest.mark.parametrize(("algo", "temperature"), [("q", 1.0), ("g", 1.0), ("g", 2.0)])
def test_action_log_probs_are_the_softmax_predict_samples_from(algo, temperature):
    agent = make_agent(algo, temperature)
    obs = np.zeros((2, agent.layout.size), np.float32)
    for row, token in enumerate((5, 20)):  # a one-token primer: the last token is the primer
        obs[row, agent.layout.slices["last_token"].start + token] = 1
        obs[row, agent.layout.slices["primer"].stop - 38 + token] = 1
    log_pi = agent.action_log_probs(obs)
    with torch.no_grad():  # by hand: the networks from a zero state on the primer token
        tokens = torch.tensor([[5], [20]])
        scores = agent.q_network(tokens)[0][:, 0].double()
        if algo == "g":
            scores = scores + torch.log_softmax(agent.reward_rnn(tokens)[0][:, 0].double(), -1)
    expected = torch.log_softmax(scores / temperature, -1).numpy()
    np.testing.assert_allclose(log_pi, expected, atol=1e-5)
    np.testing.assert_allclose(np.exp(log_pi).sum(axis=1), 1.0, atol=1e-9)
    # predict draws from exactly this distribution: one uniform per row, inverse CDF.
    uniform = np.random.default_rng(agent.config.seed).random((2, 1))
    cdf = np.cumsum(np.exp(expected), axis=1)
    drawn = (cdf < uniform * cdf[:, -1:]).sum(axis=1)
    actions, _ = agent.predict(obs)
    np.testing.assert_array_equal(actions, drawn)


def test_evaluation_reports_the_agents_kl_and_it_matches_a_hand_computation():
    agent = make_agent("g")
    rnn = agent.reward_rnn
    result = evaluate(
        agent, n=3, seed=0, reward_rnn=rnn, n_bootstrap=0, env_kwargs={"composition_length": LENGTH}
    )
    kl = result.summary["kl"].value
    assert np.isfinite(kl) and kl > 0
    # An untrained G network is a copy of the Note RNN: pi = softmax(G + log p) = softmax(2 l).
    log_p = note_rnn_log_probs(rnn, result.primers, result.tokens)
    logits = note_rnn_log_probs(agent.q_network, result.primers, result.tokens)
    log_pi = torch.log_softmax(torch.from_numpy(logits + log_p), -1).numpy()
    per_step = (np.exp(log_pi) * (log_pi - log_p)).sum(axis=-1)
    assert kl == pytest.approx(per_step.mean(), rel=1e-4)


def test_an_untrained_q_agent_is_the_note_rnn_so_its_kl_is_zero():
    agent = make_agent("q")
    result = evaluate(
        agent,
        n=4,
        seed=1,
        reward_rnn=agent.reward_rnn,
        n_bootstrap=0,
        env_kwargs={"composition_length": LENGTH},
    )
    assert result.summary["kl"].value == pytest.approx(0.0, abs=1e-5)
