"""TD targets and policies of the four algorithms (spec §3.1), with terminal masking.

With ``r`` the env reward, ``gamma`` the discount, ``Q-`` the target network's outputs at the
next state ``s'`` and ``log p`` the frozen prior's log-probabilities at ``s'``:

- ``q``: reward ``s * r_MT + log p(a)``; ``y = r + gamma * max_a' Q-(s', a')``; policy: argmax
  (or softmax) of Q.
- ``psi``: same reward; ``y = r + gamma * logsumexp_a' Psi-(s', a')``; policy: softmax of Psi.
- ``g``: reward ``s * r_MT``; ``y = r + gamma * logsumexp_a' (G-(s', a') + log p(a' | s'))``;
  policy ``p * exp(G)``, i.e. softmax of ``G + log p``.
- ``pure_rl`` (the paper's "RL only"): reward ``s * r_MT``; target and policy as ``q``.

At the last step of a composition (``terminal``) the bootstrap term is dropped: ``y = r``.
Double DQN (``q`` and ``pure_rl``) lets the online network choose ``a'`` and the target
network value it; the soft backups of ``psi`` and ``g`` have no argmax to decouple.

>>> next_q = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
>>> td_target("q", torch.tensor([1.0, 1.0]), torch.tensor([False, True]), next_q, gamma=0.5)
tensor([2.5000, 1.0000])
"""

from __future__ import annotations

import torch

SOFT_ALGORITHMS = ("psi", "g")
"""Algorithms with a log-sum-exp backup (Double DQN does not apply)."""


def policy_scores(
    algo: str, scores: torch.Tensor, prior_log_probs: torch.Tensor | None = None
) -> torch.Tensor:
    """The logits of the agent's policy: ``G + log p`` for ``g``, the network's scores otherwise.

    Acting greedily takes their argmax; sampling draws from their softmax.
    """
    if algo == "g":
        if prior_log_probs is None:
            raise ValueError("G-learning's policy needs the prior's log-probabilities")
        return scores + prior_log_probs
    return scores


def bootstrap_value(
    algo: str,
    next_target_scores: torch.Tensor,
    next_prior_log_probs: torch.Tensor | None = None,
    next_online_scores: torch.Tensor | None = None,
    double_dqn: bool = False,
) -> torch.Tensor:
    """The value of the next state, ``[...]`` from scores ``[..., num_actions]``.

    Args:
        algo: ``"q"``, ``"psi"``, ``"g"`` or ``"pure_rl"``.
        next_target_scores: the target network's outputs at ``s'``.
        next_prior_log_probs: the frozen prior's log-probabilities at ``s'`` (``g`` only).
        next_online_scores: the online network's outputs at ``s'`` (Double DQN only).
        double_dqn: evaluate the online argmax with the target network (``q``, ``pure_rl``).
    """
    if algo == "psi":
        return torch.logsumexp(next_target_scores, dim=-1)
    if algo == "g":
        if next_prior_log_probs is None:
            raise ValueError("the G-learning target needs the prior's log-probabilities at s'")
        return torch.logsumexp(next_target_scores + next_prior_log_probs, dim=-1)
    if algo not in ("q", "pure_rl"):
        raise ValueError(f"unknown algo {algo!r}; choose one of q, psi, g, pure_rl")
    if double_dqn:
        if next_online_scores is None:
            raise ValueError("Double DQN needs the online network's scores at s'")
        best = next_online_scores.argmax(dim=-1, keepdim=True)
        return next_target_scores.gather(-1, best).squeeze(-1)
    return next_target_scores.max(dim=-1).values


def td_target(
    algo: str,
    rewards: torch.Tensor,
    terminals: torch.Tensor,
    next_target_scores: torch.Tensor,
    gamma: float,
    next_prior_log_probs: torch.Tensor | None = None,
    next_online_scores: torch.Tensor | None = None,
    double_dqn: bool = False,
) -> torch.Tensor:
    """``y = r + gamma * V(s')``, with ``V(s') = 0`` where ``terminals`` (no gradient flows).

    The bootstrap is masked with ``torch.where`` rather than multiplied by ``1 - terminal``, so a
    meaningless (even infinite) value computed past the end cannot leak in.
    """
    with torch.no_grad():
        value = bootstrap_value(
            algo, next_target_scores, next_prior_log_probs, next_online_scores, double_dqn
        )
        return rewards + gamma * torch.where(terminals, torch.zeros_like(value), value)
