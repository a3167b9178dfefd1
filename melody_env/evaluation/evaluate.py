"""``evaluate``: sample compositions from any policy, in batches, and compute their statistics.

Two engines run the rollout; both are the env's :class:`~melody_env.envs.composition_state.
CompositionState` underneath, with the same observations (:mod:`melody_env.envs.observation`):

- ``"vector"``: the native vector env, ``gymnasium.make_vec("melody_env/MelodyComposition-v0",
  num_envs=batch_size)``; the finished compositions are then replayed by
  :func:`~melody_env.evaluation.metrics.score_compositions` for the detector counts (log p and
  the env reward are taken from the rollout's ``info``);
- ``"state"``: a batched loop over ``CompositionState`` whose reward function records the
  statistics as it goes (:class:`~melody_env.evaluation.metrics.StatisticsRecorder`), so sampling
  and scoring are one pass. Also the fallback when the vector env is not registered.

``"auto"`` picks ``"state"`` for the policies that sample from the env's own
``prior_log_probs`` (the Note RNN and random baselines; one pass is twice as fast), and the
vector env for the others.

A policy is any object with SB3's ``predict(observation, state, episode_start, deterministic)``;
see :mod:`melody_env.evaluation.policies` for the baselines and the per-step KL from the Note
RNN, computed when the policy's distribution is known.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from melody_env.envs.composition_state import CompositionState
from melody_env.envs.env_config import EnvConfig, load_reward_rnn
from melody_env.envs.observation import ObservationLayout
from melody_env.envs.priming import PrimerSpec, check_primer, resolve_primer
from melody_env.evaluation.metrics import (
    STATISTICS,
    StatisticsRecorder,
    Table,
    composition_columns,
    duplicate_rate,
    score_compositions,
)
from melody_env.evaluation.music_summary import (
    MUSIC_STATISTICS,
    greedy_statistics,
    music_table,
    set_statistics,
)
from melody_env.evaluation.stats import Estimate, summarize
from melody_env.models.note_rnn import NoteRNN
from melody_env.music.encoding import NUM_CLASSES
from melody_env.music.keys import Key

ENV_ID = "melody_env/MelodyComposition-v0"
ENGINES = ("auto", "vector", "state")
EVALUATION_OWN_ARGUMENTS = ("key", "primer", "reward_rnn", "render_mode")
"""The :class:`EnvConfig` fields :func:`evaluate` sets itself (the others are ``env_kwargs``)."""
ENV_KWARGS = tuple(name for name in EnvConfig.field_names() if name not in EVALUATION_OWN_ARGUMENTS)
"""The env arguments :func:`evaluate` takes in ``env_kwargs``."""


@dataclass
class EvaluationResult:
    """What :func:`evaluate` returns.

    Attributes:
        name: the model's column name in reports.
        tokens: ``int64 [n, L]``: the compositions.
        primers: the primer each composition was written after.
        key: the key of all compositions.
        table: per-composition statistics (:mod:`melody_env.evaluation.metrics`), plus ``kl``
            when the policy's distribution is known, and the music columns
            (:func:`~melody_env.evaluation.music_summary.music_table`).
        summary: each statistic with its 95% bootstrap interval, and ``duplicates`` and the
            whole-set music statistics (no interval; ``greedy_*`` when a greedy pass ran).
        seconds: wall time of the rollout and scoring (not of the bootstrap).
        config: the arguments of the evaluation.
        greedy_tokens: the compositions of the greedy pass (``greedy_diversity``), or ``None``.
    """

    name: str
    tokens: np.ndarray
    primers: list[np.ndarray]
    key: Key
    table: Table
    summary: dict[str, Estimate]
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)
    greedy_tokens: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.tokens)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the summary and the configuration (not the per-composition table)."""
        return {
            "name": self.name,
            "n": self.n,
            "key": self.key.name,
            "seconds": self.seconds,
            "config": self.config,
            "statistics": {name: estimate.to_dict() for name, estimate in self.summary.items()},
        }


def vector_env_available() -> bool:
    """Whether ``gymnasium.make_vec`` gives the native vector env for our id."""
    import melody_env  # noqa: F401  (registers the id)

    spec = gym.registry.get(ENV_ID)
    return spec is not None and spec.vector_entry_point is not None


def evaluate(
    policy: Any,
    n: int = 1000,
    seed: int = 0,
    key: str | Key = "C major",
    primer: PrimerSpec = None,
    *,
    reward_rnn: NoteRNN | str | os.PathLike | None = None,
    deterministic: bool = False,
    batch_size: int = 5_000,
    engine: str = "auto",
    n_bootstrap: int = 1000,
    env_kwargs: Mapping[str, Any] | None = None,
    name: str | None = None,
    music: bool = True,
    greedy_diversity: bool = False,
    progress: Callable[[float], None] | None = None,
) -> EvaluationResult:
    """Sample ``n`` compositions from ``policy`` and compute the paper's statistics and more.

    Args:
        policy: an object with SB3's ``predict`` (our agent, an SB3 model, a
            :class:`~melody_env.evaluation.policies.NoteRNNPolicy` or
            :class:`~melody_env.evaluation.policies.RandomPolicy`).
        n: number of compositions (the paper: 100,000 per model).
        seed: seeds the primers and the policy's sampling (same seed, same compositions).
        key: the key of every composition.
        primer: the env's ``primer`` (``None``: one random token, as the paper's "randomly
            initialized compositions").
        reward_rnn: the env's reward RNN (a model, a checkpoint path, or ``None`` for the shipped
            one); it scores log p and is the Note RNN the KL is measured against.
        deterministic: passed to ``predict`` (greedy actions).
        batch_size: compositions composed in lockstep.
        engine: ``"auto"``, ``"vector"`` or ``"state"`` (see the module docstring).
        n_bootstrap: bootstrap resamples for the 95% intervals (0: none).
        env_kwargs: other env arguments (``composition_length``, ``reward_mode``, ...).
        name: the model's name in reports (default: the policy's class name).
        music: add the music rows (:mod:`~melody_env.evaluation.music_summary`: diversity,
            exploit watch, histogram overlaps and the 5-gram judge, a few seconds).
        greedy_diversity: also compose ``n`` compositions with greedy actions (same seed, same
            primers) and report their diversity as ``greedy_*`` (with ``deterministic=True``
            the main pass is greedy and is reused).
        progress: called after each step of the rollouts with the fraction of them done,
            ``(0, 1]`` (composition-steps over all batches and passes); e.g. to drive a
            progress bar. The scoring after the rollouts is not counted.

    Returns:
        An :class:`EvaluationResult`.

    >>> from melody_env.evaluation.policies import RandomPolicy
    >>> from melody_env.models import NoteRNN
    >>> result = evaluate(
    ...     RandomPolicy(), n=20, reward_rnn=NoteRNN(seed=0), n_bootstrap=0, music=False
    ... )
    >>> result.tokens.shape, 0.0 <= result.summary["not_in_key"].value <= 1.0
    ((20, 32), True)
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
    if not hasattr(policy, "predict"):
        raise TypeError(
            f"policy {policy!r} has no predict(observation, state, episode_start, deterministic)"
        )
    env_kwargs = dict(env_kwargs or {})
    unknown = set(env_kwargs) - set(ENV_KWARGS)
    if unknown:
        raise ValueError(f"unknown env_kwargs {sorted(unknown)}; allowed: {list(ENV_KWARGS)}")
    key = Key.from_name(key)
    primer = check_primer(primer)
    rnn = load_reward_rnn(reward_rnn)
    env_config = EnvConfig(key=key, primer=primer, reward_rnn=rnn, **env_kwargs)
    fast = _samples_prior(policy, rnn)
    if engine == "auto":
        engine = "state" if fast or not vector_env_available() else "vector"
    if engine == "vector" and not vector_env_available():
        raise RuntimeError(f"engine='vector' but {ENV_ID} has no vector_entry_point registered")

    start = time.perf_counter()
    passes = 2 if greedy_diversity and not deterministic else 1
    total_units, done_units = passes * n * env_config.composition_length, 0

    def advance(units: int) -> None:
        nonlocal done_units
        done_units += units
        if progress is not None:
            progress(done_units / total_units)

    def compose(greedy: bool):
        rollout = _Rollout(policy, rnn, key, primer, env_config, greedy, fast, seed, advance)
        parts = []
        for batch_index, offset in enumerate(range(0, n, batch_size)):
            size = min(batch_size, n - offset)
            run = rollout.run_state if engine == "state" else rollout.run_vector
            parts.append(run(size, batch_index, batch_size))
        tokens = np.concatenate([part[0] for part in parts])
        primers = [tokens_ for part in parts for tokens_ in part[1]]
        table = {name: np.concatenate([part[2][name] for part in parts]) for name in parts[0][2]}
        return tokens, primers, table

    tokens, primers, table = compose(deterministic)
    greedy_tokens = None
    if greedy_diversity:
        greedy_tokens = tokens if deterministic else compose(True)[0]
    set_level = {}
    if music:
        table.update(music_table(tokens))
        set_level = set_statistics(tokens, key)
        if greedy_tokens is not None:
            set_level.update(greedy_statistics(greedy_tokens))
    seconds = time.perf_counter() - start

    statistics = (*STATISTICS, *MUSIC_STATISTICS) if music else STATISTICS
    summary = summarize(table, statistics, n_bootstrap=n_bootstrap, seed=seed)
    summary["duplicates"] = Estimate(duplicate_rate(tokens))
    for statistic, value in set_level.items():
        summary[statistic] = Estimate(float(value))
    config = {
        "n": int(n),
        "seed": int(seed),
        "key": key.name,
        "primer": None
        if primer is None
        else str(primer if isinstance(primer, (str, os.PathLike)) else list(primer)),
        "deterministic": bool(deterministic),
        "engine": engine,
        "batch_size": int(batch_size),
        "policy": repr(policy) if fast else type(policy).__name__,
        "env_kwargs": {k: v for k, v in env_kwargs.items() if k != "reward_terms"},
        "n_bootstrap": int(n_bootstrap),
        "music": bool(music),
        "greedy_diversity": bool(greedy_diversity),
    }
    return EvaluationResult(
        name=name or type(policy).__name__,
        tokens=tokens,
        primers=primers,
        key=key,
        table=table,
        summary=summary,
        seconds=seconds,
        config=config,
        greedy_tokens=greedy_tokens,
    )


def _samples_prior(policy: Any, reward_rnn: NoteRNN) -> bool:
    """Whether ``policy`` samples from the env's ``prior_log_probs`` (the fast path)."""
    samples_env_prior = getattr(policy, "samples_env_prior", None)
    return (
        callable(samples_env_prior)
        and bool(samples_env_prior(reward_rnn))
        and hasattr(policy, "sample_from_prior")
    )


@contextlib.contextmanager
def seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed Python's, numpy's and torch's global generators inside the block, then restore them
    (SB3's ``predict`` samples from them)."""
    states = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())  # noqa: NPY002
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])  # noqa: NPY002
        torch.random.set_rng_state(states[2])


def policy_log_probs(
    policy: Any, observation: np.ndarray, state: Any, episode_start: np.ndarray
) -> np.ndarray | None:
    """``log pi(. | s) [B, 38]`` when the policy exposes its distribution, else ``None``.

    Our policies define ``action_log_probs``; SB3 actor-critic models (PPO, A2C) give theirs
    through ``policy.get_distribution``. Value-based models (DQN) act greedily or epsilon-greedily
    and have none.
    """
    if callable(getattr(policy, "action_log_probs", None)):
        return np.asarray(policy.action_log_probs(observation, state, episode_start), np.float64)
    sb3_policy = getattr(policy, "policy", None)
    if callable(getattr(sb3_policy, "get_distribution", None)) and state is None:
        with torch.no_grad():
            obs_tensor = sb3_policy.obs_to_tensor(observation)[0]
            try:
                distribution = sb3_policy.get_distribution(obs_tensor).distribution
            except (TypeError, AttributeError):  # e.g. recurrent policies need their LSTM state
                return None
            logits = getattr(distribution, "logits", None)
            if logits is not None and logits.shape[-1] == NUM_CLASSES:
                return torch.log_softmax(logits, -1).cpu().numpy().astype(np.float64)
    return None


def kl_from_prior(log_pi: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """``KL(pi || p) = sum_a pi(a) (log pi(a) - log p(a))`` per row (rounding clipped at 0)."""
    pi = np.exp(log_pi)
    with np.errstate(invalid="ignore"):
        terms = np.where(pi > 0, pi * (log_pi - prior), 0.0)
    return np.maximum(terms.sum(axis=1), 0.0)


def _check_actions(actions: Any, size: int) -> np.ndarray:
    array = np.asarray(actions).reshape(-1)
    if array.shape != (size,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"policy.predict returned {actions!r}; expected {size} integer tokens")
    if array.min() < 0 or array.max() >= NUM_CLASSES:
        raise ValueError(f"policy.predict returned tokens outside [0, {NUM_CLASSES - 1}]: {array}")
    return array.astype(np.int64)


class _Rollout:
    """Runs batches of compositions with one of the two engines."""

    def __init__(
        self, policy, rnn, key, primer, env_config, deterministic, fast, seed, advance
    ) -> None:
        self.policy, self.rnn, self.key, self.primer = policy, rnn, key, primer
        self.advance = advance  # called with the compositions of each step taken
        self.env_config, self.deterministic, self.fast, self.seed = (
            env_config,
            deterministic,
            fast,
            seed,
        )
        self.length = env_config.composition_length
        self.layout = ObservationLayout(
            self.length, env_config.primer_context, env_config.steps_per_bar
        )
        self.reward_function = env_config.reward_function()
        primer_seed, action_seed = np.random.SeedSequence(seed).spawn(2)
        self.primer_rng = np.random.default_rng(primer_seed)
        self.action_rng = np.random.default_rng(action_seed)
        if not fast and callable(getattr(policy, "set_random_seed", None)):
            policy.set_random_seed(seed)  # SB3: seeds its action space (epsilon-greedy draws)

    def _choose(self, obs, prior, policy_state, episode_start):
        """One step's actions, the policy's log-probs (or None) and its new recurrent state."""
        if self.fast:
            actions = self.policy.sample_from_prior(prior, self.action_rng, self.deterministic)
            log_pi = self.policy.log_probs_from_prior(prior, self.deterministic)
            return actions, log_pi, policy_state
        log_pi = None
        if not self.deterministic:
            log_pi = policy_log_probs(self.policy, obs, policy_state, episode_start)
        actions, policy_state = self.policy.predict(
            obs, state=policy_state, episode_start=episode_start, deterministic=self.deterministic
        )
        return actions, log_pi, policy_state

    def _kl(self, log_pi, prior, actions) -> np.ndarray:
        if log_pi is prior:  # the policy is the Note RNN itself
            return np.zeros(len(actions))
        prior = prior.astype(np.float64)
        if self.deterministic and not self.fast:
            return -prior[np.arange(len(actions)), actions]  # a point mass on the action
        if log_pi is None:
            return np.full(len(actions), np.nan)
        return kl_from_prior(np.asarray(log_pi, np.float64), prior)

    def run_state(self, size: int, batch_index: int, batch_size: int):
        recorder = StatisticsRecorder(self.reward_function, size)
        state = CompositionState(size, self.length, self.rnn, recorder)
        primers = [resolve_primer(self.primer, self.key, self.primer_rng) for _ in range(size)]
        keys = [self.key] * size
        state.reset(primers, keys)
        obs = None
        if not self.fast:
            obs = np.zeros((size, self.layout.size), self.layout.space.dtype)
            self.layout.write_reset(obs, primers, keys)
        kl = np.zeros(size)
        policy_state, episode_start = None, np.ones(size, bool)
        with seeded_global_rngs(self.seed + batch_index):
            for step in range(self.length):
                prior = state.next_log_probs
                view = None if obs is None else obs.copy()
                actions, log_pi, policy_state = self._choose(
                    view, prior, policy_state, episode_start
                )
                actions = _check_actions(actions, size)
                kl += self._kl(log_pi, prior, actions)
                episode_start = np.zeros(size, bool)
                state.advance(actions)
                if obs is not None:
                    self.layout.write_step(obs, step, actions)
                self.advance(size)
        tokens = state.tokens.copy()
        table = dict(recorder.columns)
        table.update(composition_columns(tokens))
        table["kl"] = kl
        return tokens, primers, table

    def run_vector(self, size: int, batch_index: int, batch_size: int):
        envs = gym.make_vec(
            ENV_ID,
            num_envs=size,
            vectorization_mode="vector_entry_point",
            config=self.env_config,
        )
        try:
            obs, info = envs.reset(seed=self.seed * 1_000_003 + batch_index * batch_size)
            prior = np.asarray(info["prior_log_probs"])
            primers = [np.asarray(p, np.int64) for p in info["primer"]]
            tokens = np.zeros((size, self.length), np.int64)
            log_prob, total, kl = np.zeros(size), np.zeros(size), np.zeros(size)
            policy_state, episode_start = None, np.ones(size, bool)
            with seeded_global_rngs(self.seed + batch_index):
                for step in range(self.length):
                    actions, log_pi, policy_state = self._choose(
                        obs, prior, policy_state, episode_start
                    )
                    actions = _check_actions(actions, size)
                    kl += self._kl(log_pi, prior, actions)
                    episode_start = np.zeros(size, bool)
                    obs, rewards, _, _, info = envs.step(actions)
                    tokens[:, step] = actions
                    total += rewards
                    log_prob += info["log_prob"]
                    prior = np.asarray(info["prior_log_probs"])
                    self.advance(size)
        finally:
            envs.close()
        table = score_compositions(tokens, self.key, primers, None, self.reward_function)
        table["log_prob"], table["total_reward"], table["kl"] = log_prob, total, kl
        return tokens, primers, table
