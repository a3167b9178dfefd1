"""TD targets of the four algorithms on hand-made tensors, and the three networks' roles."""

from __future__ import annotations

import math

import pytest
import torch

from agents.rl_tuner.networks import build_networks, soft_update
from agents.rl_tuner.targets import bootstrap_value, policy_scores, td_target
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig

REWARDS = torch.tensor([1.0, -2.0])
NOT_TERMINAL = torch.tensor([False, False])
NEXT_TARGET = torch.tensor([[0.0, 2.0, 1.0], [3.0, -1.0, 0.0]])
NEXT_ONLINE = torch.tensor([[0.0, 1.0, 5.0], [0.0, 4.0, 0.0]])
PRIOR = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]))
GAMMA = 0.5


def lse(values: list[float]) -> float:
    return math.log(sum(math.exp(v) for v in values))


@pytest.mark.parametrize("algo", ["q", "pure_rl"])
def test_q_and_pure_rl_bootstrap_from_the_max(algo):
    y = td_target(algo, REWARDS, NOT_TERMINAL, NEXT_TARGET, GAMMA)
    assert y.tolist() == pytest.approx([1.0 + 0.5 * 2.0, -2.0 + 0.5 * 3.0])


@pytest.mark.parametrize("algo", ["q", "pure_rl"])
def test_double_dqn_evaluates_the_online_argmax_with_the_target_network(algo):
    y = td_target(
        algo,
        REWARDS,
        NOT_TERMINAL,
        NEXT_TARGET,
        GAMMA,
        next_online_scores=NEXT_ONLINE,
        double_dqn=True,
    )
    # online argmax: action 2 (row 0), action 1 (row 1); target values there: 1.0 and -1.0
    assert y.tolist() == pytest.approx([1.0 + 0.5 * 1.0, -2.0 + 0.5 * -1.0])


def test_psi_bootstraps_from_the_log_sum_exp():
    y = td_target("psi", REWARDS, NOT_TERMINAL, NEXT_TARGET, GAMMA)
    expected = [1.0 + 0.5 * lse([0.0, 2.0, 1.0]), -2.0 + 0.5 * lse([3.0, -1.0, 0.0])]
    assert y.tolist() == pytest.approx(expected)


def test_g_bootstraps_from_the_log_sum_exp_of_g_plus_the_prior():
    y = td_target("g", REWARDS, NOT_TERMINAL, NEXT_TARGET, GAMMA, next_prior_log_probs=PRIOR)
    row0 = lse([0.0 + math.log(0.5), 2.0 + math.log(0.25), 1.0 + math.log(0.25)])
    row1 = lse([3.0 + math.log(0.1), -1.0 + math.log(0.1), 0.0 + math.log(0.8)])
    assert y.tolist() == pytest.approx([1.0 + 0.5 * row0, -2.0 + 0.5 * row1], rel=1e-6)


def test_g_with_zero_values_backs_up_log_one():
    """With G- = 0 the soft value is log sum p = 0: y = r."""
    y = td_target("g", REWARDS, NOT_TERMINAL, torch.zeros(2, 3), GAMMA, next_prior_log_probs=PRIOR)
    assert y.tolist() == pytest.approx(REWARDS.tolist(), abs=1e-6)


@pytest.mark.parametrize("algo", ["q", "psi", "g", "pure_rl"])
def test_terminal_steps_do_not_bootstrap_even_from_infinite_values(algo):
    next_target = NEXT_TARGET.clone()
    next_target[1] = float("inf")
    terminals = torch.tensor([False, True])
    y = td_target(algo, REWARDS, terminals, next_target, GAMMA, next_prior_log_probs=PRIOR)
    assert y[1].item() == -2.0
    assert math.isfinite(y[0].item()) and y[0].item() != 1.0


def test_double_dqn_does_not_change_the_soft_backups():
    for algo in ("psi", "g"):
        plain = bootstrap_value(algo, NEXT_TARGET, PRIOR)
        double = bootstrap_value(algo, NEXT_TARGET, PRIOR, NEXT_ONLINE, double_dqn=True)
        assert torch.equal(plain, double)


def test_targets_carry_no_gradient():
    next_target = NEXT_TARGET.clone().requires_grad_(True)
    y = td_target("q", REWARDS, NOT_TERMINAL, next_target, GAMMA)
    assert not y.requires_grad


def test_policy_scores_add_the_prior_for_g_only():
    scores = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.equal(policy_scores("q", scores), scores)
    assert torch.equal(policy_scores("psi", scores), scores)
    assert torch.allclose(policy_scores("g", scores, PRIOR[:1]), scores + PRIOR[:1])
    with pytest.raises(ValueError, match="prior"):
        policy_scores("g", scores)


def test_unknown_algorithm_is_named():
    with pytest.raises(ValueError, match="'dqn'"):
        bootstrap_value("dqn", NEXT_TARGET)


def test_networks_start_equal_and_only_the_q_network_trains():
    note_rnn = NoteRNN(NoteRNNConfig(hidden_size=8), seed=0)
    q_network, target, prior = build_networks(note_rnn)
    for model in (q_network, target, prior):
        for (name, a), b in zip(
            model.state_dict().items(), note_rnn.state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), name
    assert all(p.requires_grad for p in q_network.parameters())
    assert not any(p.requires_grad for p in target.parameters())
    assert not any(p.requires_grad for p in prior.parameters())
    # three independent copies
    assert q_network.head.weight.data_ptr() != target.head.weight.data_ptr()
    assert prior.head.weight.data_ptr() != note_rnn.head.weight.data_ptr()


def test_soft_update_moves_the_target_by_eta():
    note_rnn = NoteRNN(NoteRNNConfig(hidden_size=4), seed=0)
    q_network, target, _ = build_networks(note_rnn)
    with torch.no_grad():
        for parameter in q_network.parameters():
            parameter.add_(1.0)
    before = [p.clone() for p in target.parameters()]
    soft_update(target, q_network, 0.01)
    for old, new, online in zip(before, target.parameters(), q_network.parameters(), strict=True):
        assert torch.allclose(new, 0.99 * old + 0.01 * online, atol=1e-6)
