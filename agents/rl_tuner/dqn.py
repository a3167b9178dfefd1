"""The RL Tuner's recurrent DQN, top to bottom: one round of acting, learning as transitions
come in, and storing the finished compositions (CleanRL's ``dqn.py``, for whole compositions).

A *round* (:func:`play_round`):

1. **Act.** The ``N`` vector envs are reset with the round's seeds; the agent writes ``N``
   compositions, one batched forward of its Q-network per step
   (:class:`~agents.rl_tuner.rollout.VectorComposer`, :meth:`RLTunerAgent.step
   <agents.rl_tuner.agent.RLTunerAgent.step>`), exploring epsilon-greedily with a linearly
   annealed epsilon or by Boltzmann sampling (:func:`select_actions`). The env returns the
   reward (its own terms and weights) and the prior's log-probabilities
   (``info["prior_log_probs"]``), which G-learning's policy and targets use: the Note RNN runs
   once per step, in the env.
2. **Learn.** Once ``learning_starts`` transitions are in, every ``train_frequency``
   transitions (:func:`learn_step`): sample ``batch_size`` whole compositions from the replay,
   rerun the online and target networks over ``primer + actions`` (:func:`recompute_scores`:
   ``Q(s_t, .)``, ``Q(s_{t+1}, .)`` and ``Q-(s_{t+1}, .)`` with the current weights, so no
   stale LSTM state), form the TD target ``y = r + gamma * V(s')`` of the algorithm
   (:func:`~agents.rl_tuner.targets.td_target`: max, Double DQN, or the log-sum-exp backups of
   Psi and G), take a Huber or MSE loss on the chosen steps (:func:`td_loss`; a non-finite
   target, loss or gradient stops training: the NaN guard), clip the gradient norm, step Adam
   at the (possibly annealed, :func:`learning_rate`) step size and let the target network
   follow softly (:func:`gradient_step`).
3. **Store.** The finished compositions enter the replay whole, in the reference key
   (:meth:`CompositionReplay.add <agents.rl_tuner.replay.CompositionReplay.add>`).

Beside it: :mod:`~agents.rl_tuner.networks` (the three Note RNN copies),
:mod:`~agents.rl_tuner.targets` (the four algorithms' targets), :mod:`~agents.rl_tuner.replay`,
:mod:`~agents.rl_tuner.rollout` (acting in a vector env), :mod:`~agents.rl_tuner.agent`
(``predict``). :mod:`~agents.rl_tuner.trainer` runs rounds and adds evaluation, logging and
checkpoints; :class:`agents.RLTuner` is the API.

>>> linear_epsilon(0, start=1.0, end=0.1, duration=100), linear_epsilon(50, 1.0, 0.1, 100)
(1.0, 0.55)
>>> linear_epsilon(1000, 1.0, 0.1, 100)
0.1
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F

from agents.rl_tuner.agent import RLTunerAgent
from agents.rl_tuner.config import TrainConfig
from agents.rl_tuner.networks import soft_update
from agents.rl_tuner.replay import CompositionBatch, CompositionReplay
from agents.rl_tuner.rollout import Compositions, VectorComposer, round_seeds
from agents.rl_tuner.targets import SOFT_ALGORITHMS, td_target
from melody_env.sampling import sample_tokens

# ---------------------------------------------------------------- 1. acting: exploration


def linear_epsilon(step: int, start: float, end: float, duration: int) -> float:
    """Epsilon after ``step`` training transitions: from ``start`` down to ``end`` linearly over
    ``duration`` transitions, then ``end``. Only training actions advance ``step`` (the original
    also counted the actions of its evaluation compositions)."""
    if duration <= 0:
        return end
    fraction = min(step / duration, 1.0)
    return round(start + fraction * (end - start), 12)


def select_actions(
    logits: np.ndarray,
    mode: str,
    epsilon: float,
    temperature: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Exploratory actions from policy logits ``[n, num_actions]``.

    ``"egreedy"``: with probability ``epsilon`` a uniformly random token, else the argmax.
    ``"boltzmann"``: a sample from ``softmax(logits / temperature)``; no epsilon.
    """
    n, num_actions = logits.shape
    if mode == "boltzmann":
        return sample_tokens(logits, rng, temperature)
    if mode != "egreedy":
        raise ValueError(f"unknown exploration mode {mode!r}; choose egreedy or boltzmann")
    explore = rng.random(n) < epsilon
    random_actions = rng.integers(0, num_actions, n)
    return np.where(explore, random_actions, logits.argmax(axis=1)).astype(np.int64)


def epsilon(config: TrainConfig, step: int) -> float:
    """Epsilon-greedy's epsilon after ``step`` training transitions (0 for Boltzmann)."""
    if config.exploration != "egreedy":
        return 0.0
    return linear_epsilon(step, config.start_epsilon, config.end_epsilon, config.exploration_steps)


def learning_rate(config: TrainConfig, step: int) -> float:
    """The step size after ``step`` transitions: constant, or linearly annealed from
    ``learning_rate`` to ``final_learning_rate`` at ``total_steps``."""
    if config.final_learning_rate is None:
        return config.learning_rate
    fraction = min(step / max(config.total_steps, 1), 1.0)
    return config.learning_rate + fraction * (config.final_learning_rate - config.learning_rate)


@dataclass
class Run:
    """What one round reads and changes: the run's config, counters, envs, networks, optimiser,
    replay and exploration generator (:class:`~agents.rl_tuner.trainer.Trainer` holds them)."""

    config: TrainConfig
    progress: Any
    """:class:`~agents.rl_tuner.trainer.Progress`: ``global_step``, ``train_credit``, ..."""
    envs: gym.vector.VectorEnv
    agent: RLTunerAgent
    optimizer: torch.optim.Optimizer
    replay: CompositionReplay
    rng: np.random.Generator


# ---------------------------------------------------------------- the round


def play_round(
    run: Run,
    on_learn: Callable[[StepStats], None] | None = None,
    on_step: Callable[[], bool] | None = None,
) -> tuple[Compositions | None, bool]:
    """One round: act in every env until the compositions end, learning as transitions come
    in; then store the finished compositions.

    Args:
        run: the state the round advances.
        on_learn: called with each gradient step's :class:`StepStats` (logging).
        on_step: called after each vector step; ``False`` asks training to stop (at the end
            of this round, so the replay holds whole compositions).

    Returns:
        The compositions finished in this round (``None`` if none) and whether ``on_step`` asked
        to stop.
    """
    config, progress = run.config, run.progress
    composer = VectorComposer(run.envs, run.agent, config.env.composition_length)
    composer.reset(round_seeds(config.seed, "train", progress.rounds, config.num_envs))
    finished_parts, stop = [], False

    def choose(logits: np.ndarray) -> np.ndarray:
        current = epsilon(config, progress.global_step)
        return select_actions(logits, config.exploration, current, config.temperature, run.rng)

    while not composer.round_done:
        # 1. act: one token per env, the env's reward and prior recorded
        recorded, finished = composer.step(choose)
        progress.global_step += recorded
        if on_step is not None and on_step() is False:
            stop = True
        if finished is not None:
            finished_parts.append(finished)
        # 2. learn: a gradient step per ``train_frequency`` transitions
        if progress.global_step >= config.learning_starts and len(run.replay):
            progress.train_credit += recorded
            while progress.train_credit >= config.train_frequency:
                progress.train_credit -= config.train_frequency
                stats = learn_step(run)
                if on_learn is not None:
                    on_learn(stats)
    if not finished_parts:
        return None, stop
    # 3. store: whole compositions, in the reference key
    finished = Compositions.concatenate(finished_parts)
    terminals = np.zeros(finished.actions.shape, dtype=bool)
    terminals[:, -1] = True
    for row in range(len(finished)):
        run.replay.add(
            finished.primers[row, -finished.primer_lengths[row] :],
            finished.actions[row],
            finished.rewards[row],
            finished.prior_log_probs[row],
            terminals[row],
            finished.key_of(row),
        )
    return finished, stop


# ---------------------------------------------------------------- 2. learning


def learn_step(run: Run) -> StepStats:
    """Sample whole compositions (and the steps of each in the loss) and take a gradient step
    at the current learning rate."""
    config, progress = run.config, run.progress
    for group in run.optimizer.param_groups:
        group["lr"] = learning_rate(config, progress.global_step)
    batch = run.replay.sample(config.batch_size)
    mask = run.replay.sample_steps(config.batch_size, config.transitions_per_composition)
    with torch.enable_grad():
        stats = gradient_step(run.agent, run.optimizer, batch, mask, progress.global_step)
    progress.gradient_steps += 1
    return stats


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
