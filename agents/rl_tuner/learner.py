"""One gradient step on a batch of whole compositions.

The online and the target network each run over ``primer + actions`` from a zero state (the
states the agent acted from, recomputed with the current weights). With a primer of ``m`` tokens,
output ``m - 1 + t`` is ``Q(s_t, .)`` and output ``m + t`` is ``Q(s_{t+1}, .)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from agents.rl_tuner.agent import RLTunerAgent
from agents.rl_tuner.networks import soft_update
from agents.rl_tuner.replay import CompositionBatch
from agents.rl_tuner.targets import SOFT_ALGORITHMS, td_target


@dataclass(frozen=True)
class StepStats:
    """Scalars of one gradient step."""

    td_loss: float
    q_values: float
    td_target: float
    grad_norm: float


def recompute_scores(
    agent: RLTunerAgent, batch: CompositionBatch
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(Q(s_t, .), Q(s_{t+1}, .) online (detached), Q-(s_{t+1}, .))``, each ``[B, L, 38]``.

    Compositions with primers of different lengths run in one batch per primer length.
    """
    length = batch.actions.shape[1]
    width = batch.primers.shape[1]
    rows_parts, current, next_online, next_target = [], [], [], []
    for primer_length in np.unique(batch.primer_lengths):
        rows = np.flatnonzero(batch.primer_lengths == primer_length)
        sequence = np.concatenate(
            [batch.primers[rows, width - primer_length :], batch.actions[rows]], axis=1
        )
        tokens = torch.from_numpy(sequence)
        online, _ = agent.q_network(tokens)  # [b, m + L, 38]
        with torch.no_grad():
            target, _ = agent.target_q_network(tokens)
        start = int(primer_length) - 1  # output `start` follows the primer: Q(s_0, .)
        rows_parts.append(rows)
        current.append(online[:, start : start + length])
        next_online.append(online[:, start + 1 : start + 1 + length].detach())
        next_target.append(target[:, start + 1 : start + 1 + length])
    if len(rows_parts) == 1:  # the usual case: every primer has the same length
        return current[0], next_online[0], next_target[0]
    order = torch.from_numpy(np.argsort(np.concatenate(rows_parts), kind="stable"))
    return tuple(torch.cat(parts)[order] for parts in (current, next_online, next_target))


def td_loss(
    agent: RLTunerAgent, batch: CompositionBatch, step_mask: np.ndarray, step: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The TD loss over the steps in ``step_mask [B, L]``; also ``Q(s, a)`` and ``y`` there.

    Raises:
        FloatingPointError: a TD target or the loss is NaN or infinite (``step`` names the
            training step in the message).
    """
    config = agent.config
    current, next_online, next_target = recompute_scores(agent, batch)
    actions = torch.from_numpy(batch.actions)
    q_taken = current.gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # [B, L]
    targets = td_target(
        config.algo,
        torch.from_numpy(batch.rewards),
        torch.from_numpy(batch.terminals),
        next_target,
        config.gamma,
        next_prior_log_probs=torch.from_numpy(batch.prior_log_probs),
        next_online_scores=next_online,
        double_dqn=config.double_dqn and config.algo not in SOFT_ALGORITHMS,
    )
    mask = torch.from_numpy(step_mask)
    q_taken, targets = q_taken[mask], targets[mask]
    if not torch.isfinite(targets).all():
        raise FloatingPointError(
            f"non-finite TD target at training step {step}: "
            f"{targets[~torch.isfinite(targets)][:5].tolist()}; stopping before any update"
        )
    if config.loss == "huber":
        loss = F.smooth_l1_loss(q_taken, targets)
    else:
        loss = F.mse_loss(q_taken, targets)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite TD loss {loss.item()} at training step {step}")
    return loss, q_taken.detach(), targets


def gradient_step(
    agent: RLTunerAgent,
    optimizer: torch.optim.Optimizer,
    batch: CompositionBatch,
    step_mask: np.ndarray,
    step: int,
) -> StepStats:
    """Loss, backward, global-norm clipping, Adam, then the soft target update."""
    config = agent.config
    loss, q_taken, targets = td_loss(agent, batch, step_mask, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(agent.q_network.parameters(), config.max_grad_norm)
    if not torch.isfinite(grad_norm):
        raise FloatingPointError(f"non-finite gradient norm at training step {step}")
    optimizer.step()
    soft_update(agent.target_q_network, agent.q_network, config.target_network_update_rate)
    return StepStats(
        float(loss.item()), float(q_taken.mean()), float(targets.mean()), float(grad_norm)
    )
