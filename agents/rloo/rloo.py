"""RLOO (REINFORCE leave-one-out) with an exact KL to the Note RNN, top to bottom.

Objective (see :class:`~agents.rloo.config.RLOOConfig`), per composition of ``L`` steps::

    J(pi) = E[ sum_t s * r_MT(s_t, a_t) ] - beta * E[ sum_t KL(pi(.|s_t) || p(.|s_t)) ]

with ``s`` = ``reward_scaler`` (2 = the paper's ``c = 0.5``), ``beta`` = ``kl_coef``, ``pi`` the
policy (a trainable copy of the Note RNN, initialised from it) and ``p`` the frozen Note RNN. The
env ``melody-rl train`` builds runs in ``reward_mode="music_theory_only"`` and returns
``s * r_MT``, the paper's nine rules; on a user's env (:class:`agents.rloo.model.RLOO`) the score
is whatever that env returns (its terms and weights). The KL over all 38 tokens is computed
exactly from ``info["prior_log_probs"]``, the env's reward-RNN log-probs at the next step, so no
second prior runs here. (The paper's reward ``s * r_MT + log p(a)`` plus the policy's entropy is
this objective with ``beta = 1``.)

One iteration:

1. **Rollout.** ``num_primers`` random one-token primers, each written ``k =
   samples_per_primer`` times: the vector env (``num_primers * k`` envs, or a user's ``N``, a
   multiple of ``k``, in ``num_primers * k / N`` rollouts) is reset with each primer's seed
   repeated ``k`` times, so rows ``g*k .. g*k+k-1`` share primer ``g``. The policy samples every
   token (one batched LSTM step per env step, no gradients).
2. **Returns.** With ``credit="reward_to_go"`` a token's return is ``sum_{t' >= t} s*r_MT_t' -
   beta * sum_{t' > t} KL_t'`` (the later KLs only with ``kl_in_reward``); with
   ``credit="composition"`` every token gets the whole composition's return.
3. **Leave-one-out baseline.** Each sample's baseline at step ``t`` is the mean return at ``t`` of
   the other ``k - 1`` samples of its primer: ``A = G - (sum_group G - G) / (k - 1)`` (no critic).
4. **Loss**, averaged over the ``n * L`` tokens and minimised by one Adam step::

       - A_t * log pi(a_t | s_t) + beta * KL(pi(.|s_t) || p(.|s_t)) - entropy_coef * H(pi(.|s_t))

   The KL at ``s_t`` enters with its exact gradient; through ``A`` it also charges a token for
   the KLs of the states it leads to. Together the gradient is that of ``J`` (per token).

Logged each iteration (TensorBoard ``RUN/tensorboard`` when installed, names as TRL's):
``objective/scores`` (``sum_t s * r_MT`` per composition), ``objective/kl`` (``sum_t KL`` per
composition), ``objective/kl_per_step``, ``objective/entropy`` (``sum_t H`` per composition),
``objective/rlhf_reward`` (scores - beta * kl), ``objective/music_theory`` (r_MT per step),
``objective/log_prob`` (log p(a_t) per step under the Note RNN), ``rewards/<rule>`` (per
composition), ``loss/policy``, ``loss/total``, ``loss/grad_norm``, ``charts/learning_rate``,
``charts/SPS``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.rl_tuner.agent import read_primers
from agents.rloo.config import RLOOConfig
from agents.rloo.policy import RLOOPolicy, observed_keys
from melody_env import ENV_ID
from melody_env.models.note_rnn import NoteRNN
from melody_env.music.encoding import NUM_CLASSES
from melody_env.sampling import sample_tokens

PURPOSES = {"train": 0, "summary": 1, "generate": 2}
"""Independent streams of primers and samples, so evaluating never changes training."""


@dataclass
class Rollout:
    """``n`` finished compositions and what the env said about every step.

    Attributes:
        primers: ``int64 [n, P]``: the primer tokens the policy read, right-aligned.
        primer_lengths: ``int64 [n]``.
        actions: ``int64 [n, L]``: the tokens placed.
        scores: ``float64 [n, L]``: the env's reward, ``s * r_MT``.
        music_theory: ``float64 [n, L]``: ``r_MT``.
        log_prob: ``float64 [n, L]``: ``log p(a_t | s_t)`` under the Note RNN.
        prior_log_probs: ``float32 [n, L, 38]``: ``log p(. | s_t)``.
        terms: each rule's unweighted value, ``float64 [n, L]``.
        key_index: ``int64 [n]``, each composition's key (a key-``any`` policy; else ``None``).
    """

    primers: np.ndarray
    primer_lengths: np.ndarray
    actions: np.ndarray
    scores: np.ndarray
    music_theory: np.ndarray
    log_prob: np.ndarray
    prior_log_probs: np.ndarray
    terms: dict[str, np.ndarray]
    key_index: np.ndarray | None = None


def make_envs(config: RLOOConfig, num_envs: int, reward_rnn: NoteRNN) -> gym.vector.VectorEnv:
    """The native vector env of ``num_envs`` melody envs, returning ``s * r_MT``."""
    kwargs = config.env.replace(reward_rnn=reward_rnn).env_kwargs()
    return gym.make_vec(
        ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    )


def round_seeds(config: RLOOConfig, purpose: str, index: int, groups: int, k: int) -> list[int]:
    """Env seeds of round ``index``: ``groups`` primer seeds, each repeated ``k`` times."""
    sequence = np.random.SeedSequence([config.seed, PURPOSES[purpose], index])
    return np.repeat(sequence.generate_state(groups, dtype=np.uint32), k).tolist()


def round_rng(config: RLOOConfig, purpose: str, index: int) -> np.random.Generator:
    """The generator that samples the tokens of round ``index`` (a function of the seed)."""
    return np.random.default_rng(np.random.SeedSequence([config.seed, PURPOSES[purpose], index, 1]))


def rollout(
    policy: RLOOPolicy,
    envs: gym.vector.VectorEnv,
    seeds: list[int],
    rng: np.random.Generator,
    greedy: bool = False,
) -> Rollout:
    """Write one composition per env, sampling from ``policy`` (its argmax with ``greedy``)."""
    obs, info = envs.reset(seed=seeds)
    n, length = envs.num_envs, policy.layout.composition_length
    primers, primer_lengths = read_primers(obs, policy.layout)
    keys = observed_keys(obs, policy.layout) if policy.any_key else None
    log_pi, state = policy.prime(primers, primer_lengths, keys)
    prior = np.asarray(info["prior_log_probs"])
    actions = np.zeros((n, length), dtype=np.int64)
    scores, music_theory, log_prob = (np.zeros((n, length)) for _ in range(3))
    prior_log_probs = np.zeros((n, length, NUM_CLASSES), dtype=np.float32)
    terms: dict[str, np.ndarray] = {}
    for t in range(length):
        tokens = log_pi.argmax(axis=1).astype(np.int64) if greedy else sample_tokens(log_pi, rng)
        prior_log_probs[:, t] = prior
        obs, reward, _, _, info = envs.step(tokens)
        actions[:, t], scores[:, t] = tokens, reward
        music_theory[:, t], log_prob[:, t] = info["music_theory"], info["log_prob"]
        for name, values in info["reward_terms"].items():
            if not name.startswith("_"):  # Gymnasium's "has this key" masks
                terms.setdefault(name, np.zeros((n, length)))[:, t] = values
        prior = np.asarray(info["prior_log_probs"])
        if t + 1 < length:
            log_pi, state = policy.step(tokens, state, t + 1, keys)
    return Rollout(
        primers,
        primer_lengths,
        actions,
        scores,
        music_theory,
        log_prob,
        prior_log_probs,
        terms,
        keys,
    )


def discounted_returns(values: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """``out[:, t] = sum_{t' >= t} gamma ** (t' - t) * values[:, t']``.

    >>> discounted_returns(np.array([[1.0, 2.0, 3.0]]))
    array([[6., 5., 3.]])
    >>> discounted_returns(np.array([[1.0, 2.0, 4.0]]), gamma=0.5)
    array([[3., 4., 4.]])
    """
    if gamma == 1.0:
        return np.cumsum(values[:, ::-1], axis=1)[:, ::-1]
    out = np.empty_like(values, dtype=np.float64)
    running = np.zeros(len(values))
    for t in range(values.shape[1] - 1, -1, -1):
        running = values[:, t] + gamma * running
        out[:, t] = running
    return out


def advantages(scores: np.ndarray, kl: np.ndarray, config: RLOOConfig) -> np.ndarray:
    """Leave-one-out advantages ``[n, L]`` of the compositions (rows grouped by primer).

    Args:
        scores: ``s * r_MT`` of every step, ``[n, L]``, rows ``g*k .. g*k+k-1`` after primer g.
        kl: the exact ``KL(pi || p)`` of every step, ``[n, L]``.
        config: ``samples_per_primer``, ``credit``, ``kl_in_reward``, ``kl_coef`` (and
            ``first_step_kl_coef``), ``gamma`` and ``normalize_advantages``.

    >>> config = RLOOConfig(samples_per_primer=2, kl_coef=1.0)
    >>> advantages(np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[0.0, 0.5], [0.0, 0.0]]), config)
    array([[ 2.5,  2. ],
           [-2.5, -2. ]])
    """
    k = config.samples_per_primer
    weighted_kl = np.asarray(config.kl_weights()[: kl.shape[1]]) * kl  # beta_t * KL_t
    if config.credit == "reward_to_go":
        returns = discounted_returns(scores, config.gamma)
        if config.kl_in_reward:  # the strictly later KLs
            returns = returns - (discounted_returns(weighted_kl, config.gamma) - weighted_kl)
    else:
        total = scores.sum(axis=1) - (weighted_kl.sum(axis=1) if config.kl_in_reward else 0.0)
        returns = np.repeat(total[:, None], scores.shape[1], axis=1)
    grouped = returns.reshape(-1, k, returns.shape[1])
    baseline = (grouped.sum(axis=1, keepdims=True) - grouped) / (k - 1)
    result = (grouped - baseline).reshape(returns.shape)
    if config.normalize_advantages:
        result = result / (result.std() + 1e-8)
    return result


def agent_scores(
    batch: Rollout, config: RLOOConfig, rule_scales: dict[str, float] | None = None
) -> np.ndarray:
    """``[n, L]``: the score the agent maximises: the env's reward, plus with ``rule_weights``
    ``(weight - 1) * scale * rule`` for each listed rule, ``scale`` being the env's weight of
    that rule (``rule_scales``; ``None``: ``reward_scaler`` for every rule, the env that
    :func:`make_envs` builds). A rule the env switched off stays off. In the paper's env this is
    ``s * sum_rule weight * rule`` (unlisted rules weigh 1).

    >>> terms = {"key": np.array([[-1.0]])}
    >>> batch = Rollout(*[None] * 3, np.array([[1.0]]), *[None] * 3, terms=terms)
    >>> agent_scores(batch, RLOOConfig(rule_weights={"key": 3.0}))
    array([[-3.]])
    >>> agent_scores(batch, RLOOConfig(rule_weights={"key": 3.0}), rule_scales={"key": 0.0})
    array([[1.]])
    """
    if not config.rule_weights:
        return batch.scores
    by_scale: dict[float, list[tuple[str, float]]] = {}
    for name, weight in config.rule_weights.items():
        scale = config.env.reward_scaler if rule_scales is None else rule_scales.get(name, 0.0)
        if scale != 0.0 and name in batch.terms:
            by_scale.setdefault(scale, []).append((name, weight))
    scores = batch.scores
    for scale, rules in by_scale.items():  # one group in the paper's env: s * sum(...)
        scores = scores + scale * sum((weight - 1.0) * batch.terms[name] for name, weight in rules)
    return scores


@dataclass
class LossStats:
    """Per-iteration statistics of :func:`rloo_loss` (means over the batch)."""

    policy_loss: float
    total_loss: float
    kl: float
    """``sum_t KL`` per composition."""
    entropy: float
    """``sum_t H(pi(.|s_t))`` per composition."""


def rloo_loss(
    policy: RLOOPolicy,
    batch: Rollout,
    config: RLOOConfig,
    rule_scales: dict[str, float] | None = None,
) -> tuple[torch.Tensor, LossStats]:
    """The loss of step 4 of the module docstring for one batch, and its statistics
    (``rule_scales``: see :func:`agent_scores`)."""
    log_pi = policy.sequence_log_probs(
        batch.primers, batch.primer_lengths, batch.actions, batch.key_index
    )
    prior = torch.from_numpy(batch.prior_log_probs)
    pi = log_pi.exp()
    kl = (pi * (log_pi - prior)).sum(dim=-1)  # [n, L], exact over the 38 tokens
    entropy = -(pi * log_pi).sum(dim=-1)
    scores = agent_scores(batch, config, rule_scales)
    advantage = torch.from_numpy(advantages(scores, kl.detach().double().numpy(), config))
    taken = log_pi.gather(-1, torch.from_numpy(batch.actions)[..., None])[..., 0]
    policy_loss = -(advantage.float() * taken).mean()
    kl_weights = torch.tensor(config.kl_weights()[: kl.shape[1]])
    loss = policy_loss + (kl_weights * kl).mean() - config.entropy_coef * entropy.mean()
    length = batch.actions.shape[1]
    stats = LossStats(
        policy_loss=float(policy_loss.detach()),
        total_loss=float(loss.detach()),
        kl=float(kl.detach().mean()) * length,
        entropy=float(entropy.detach().mean()) * length,
    )
    return loss, stats


def learning_rate(config: RLOOConfig, iteration: int) -> float:
    """Constant, or linear from ``learning_rate`` to ``final_learning_rate`` at the last step."""
    if config.final_learning_rate is None:
        return config.learning_rate
    fraction = iteration / max(config.iterations - 1, 1)
    return config.learning_rate + fraction * (config.final_learning_rate - config.learning_rate)


def make_optimizer(policy: RLOOPolicy, config: RLOOConfig) -> torch.optim.Adam:
    """Adam over the LSTM and head (``learning_rate``) and, if any, the position logits
    (``position_learning_rate``, a second parameter group)."""
    groups = [{"params": list(policy.network.parameters()), "lr": config.learning_rate}]
    if policy.position_logits is not None:
        groups.append({"params": [policy.position_logits], "lr": config.position_learning_rate})
    return torch.optim.Adam(groups)


def train_batch(
    policy: RLOOPolicy, envs: gym.vector.VectorEnv, config: RLOOConfig, iteration: int
) -> Rollout:
    """The compositions of training round ``iteration``: ``num_primers`` primers, ``k`` samples
    each, written ``envs.num_envs`` at a time (a multiple of ``k`` dividing ``num_primers * k``:
    whole groups per rollout), sampled from one generator in turn."""
    seeds = round_seeds(config, "train", iteration, config.num_primers, config.samples_per_primer)
    rng, width = round_rng(config, "train", iteration), envs.num_envs
    parts = [rollout(policy, envs, seeds[i : i + width], rng) for i in range(0, len(seeds), width)]
    return parts[0] if len(parts) == 1 else concatenate(parts)


def iteration_step(
    policy: RLOOPolicy,
    optimizer: torch.optim.Optimizer,
    envs: gym.vector.VectorEnv,
    config: RLOOConfig,
    iteration: int,
    rule_scales: dict[str, float] | None = None,
) -> tuple[Rollout, dict[str, float]]:
    """One iteration: rollout, advantages, loss, one clipped Adam step. Returns the batch and
    the scalars to log (``rule_scales``: see :func:`agent_scores`)."""
    batch = train_batch(policy, envs, config, iteration)
    optimizer.param_groups[0]["lr"] = learning_rate(config, iteration)
    with torch.enable_grad():
        loss, stats = rloo_loss(policy, batch, config, rule_scales)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
    optimizer.step()
    length = batch.actions.shape[1]
    scores = float(batch.scores.sum(axis=1).mean())
    logged = {
        "objective/scores": scores,
        "objective/kl": stats.kl,
        "objective/kl_per_step": stats.kl / length,
        "objective/entropy": stats.entropy,
        "objective/rlhf_reward": scores - config.kl_coef * stats.kl,
        "objective/music_theory": float(batch.music_theory.mean()),
        "objective/log_prob": float(batch.log_prob.mean()),
        "loss/policy": stats.policy_loss,
        "loss/total": stats.total_loss,
        "loss/grad_norm": float(grad_norm),
        "charts/learning_rate": optimizer.param_groups[0]["lr"],
    }
    for name, values in batch.terms.items():
        logged[f"rewards/{name}"] = float(values.sum(axis=1).mean())
    return batch, logged


def concatenate(parts: list[Rollout], count: int | None = None) -> Rollout:
    """The rows of ``parts`` in order, as one rollout (the first ``count`` if given)."""

    def join(arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays)[:count]

    joined: dict[str, Any] = {}
    for field in fields(Rollout):
        values = [getattr(part, field.name) for part in parts]
        if values[0] is None:  # key_index of a one-key policy
            joined[field.name] = None
        elif isinstance(values[0], dict):  # terms
            joined[field.name] = {name: join([v[name] for v in values]) for name in values[0]}
        else:
            joined[field.name] = join(values)
    return Rollout(**joined)


def compose(
    policy: RLOOPolicy,
    envs: gym.vector.VectorEnv,
    count: int,
    config: RLOOConfig,
    purpose: str = "summary",
    greedy: bool = False,
) -> Rollout:
    """``count`` compositions after distinct random primers, reproducibly from the seed."""
    parts, index = [], 0
    while sum(len(part.actions) for part in parts) < count:
        seeds = round_seeds(config, purpose, index, envs.num_envs, 1)
        parts.append(rollout(policy, envs, seeds, round_rng(config, purpose, index), greedy))
        index += 1
    return concatenate(parts, count)


def generate(
    policy: RLOOPolicy, n: int, seed: int = 0, greedy: bool = False, key: str | None = None
) -> np.ndarray:
    """``int64 [n, L]``: ``n`` melodies of a trained policy (``policy.config`` set) after random
    one-token primers, from the ``generate`` stream of ``seed`` (``melody-rl generate``).

    Args:
        key: compose in this key instead of the policy's own; only for a key-``any`` policy,
            which reads each composition's key (a one-key policy's melodies are transposed
            afterwards instead, by the caller).

    Raises:
        ValueError: ``key`` for a policy trained in one key.
    """
    config = replace(policy.config, seed=seed)
    if key is not None:
        if not policy.any_key:
            raise ValueError(
                f"the policy was trained in {config.env.key}: it composes in that key only "
                "(transpose its melodies instead)"
            )
        config = replace(config, env=config.env.replace(key=key))
    envs = make_envs(config, min(n, 64), policy.prior)
    try:
        return compose(policy, envs, n, config, purpose="generate", greedy=greedy).actions
    finally:
        envs.close()


def exact_kl(policy: RLOOPolicy, batch: Rollout) -> np.ndarray:
    """``KL(pi || p)`` at every step of ``batch``, ``[n, L]`` (no gradients)."""
    with torch.no_grad():
        log_pi = policy.sequence_log_probs(
            batch.primers, batch.primer_lengths, batch.actions, batch.key_index
        )
        prior = torch.from_numpy(batch.prior_log_probs)
        return (log_pi.exp() * (log_pi - prior)).sum(dim=-1).double().numpy()
