"""The envs RLOO trains on: an env id, one melody env, or a vector env of them, read once.

:func:`as_vector_env` turns what a user passes into a vector env of whole leave-one-out groups
and :class:`EnvFacts` (the rows' key, observation layout, reward RNN and reward function);
:func:`fit_config` writes the env's settings into the run's config. See
:mod:`agents.rloo.model` for the rules (groups, keys, single envs).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import torch

from agents.rloo.config import RLOOConfig, default_env
from melody_env.envs.melody_composition import MelodyCompositionEnv
from melody_env.envs.observation import ObservationLayout
from melody_env.envs.vector import MelodyCompositionVectorEnv
from melody_env.models.note_rnn import NoteRNN
from melody_env.music.keys import Key
from melody_env.rewards.composition import RewardFunction
from melody_env.rewards.rules import RULE_NAMES

ENV_FIELDS = ("key", "composition_length", "steps_per_bar", "primer_context", "reward_scaler")
"""``RLOOConfig.env`` fields a given env decides (the env's values are stored in the config)."""


@dataclass(frozen=True)
class EnvFacts:
    """What RLOO reads from an env: its rows' shared settings and its reward RNN."""

    num_envs: int
    key: str
    layout: ObservationLayout
    reward_rnn: NoteRNN
    reward_function: RewardFunction

    def config_values(self) -> dict[str, Any]:
        """The :data:`ENV_FIELDS` as the env has them."""
        return {
            "key": self.key,
            "composition_length": self.layout.composition_length,
            "steps_per_bar": self.layout.steps_per_bar,
            "primer_context": self.layout.primer_context,
            "reward_scaler": self.reward_function.reward_scaler,
        }

    def rule_scales(self) -> dict[str, float]:
        """The env's weight of each of the nine rules (0 where switched off)."""
        weights = self.reward_function.weights
        return {name: weights.get(name, 0.0) for name in RULE_NAMES}


def env_facts(envs: gym.vector.VectorEnv) -> EnvFacts:
    """Read :class:`EnvFacts` from a native or synchronous vector env of melody envs.

    Raises:
        ValueError: not such an env, or rows that differ in key or layout (one line each).
    """
    base = envs.unwrapped
    if isinstance(base, MelodyCompositionVectorEnv):
        rows = [base]
    elif isinstance(base, gym.vector.SyncVectorEnv):
        rows = [env.unwrapped for env in base.envs]
        if not all(isinstance(row, MelodyCompositionEnv) for row in rows):
            raise ValueError(
                "RLOO needs melody envs: the SyncVectorEnv holds "
                f"{sorted({type(row).__name__ for row in rows})}"
            )
    else:
        raise ValueError(
            f"RLOO steps a MelodyCompositionVectorEnv (gym.make_vec) or a SyncVectorEnv of "
            f"MelodyCompositionEnv, got {type(base).__name__}"
        )
    return facts_of_rows(rows, envs.num_envs)


def facts_of_rows(rows: list, num_envs: int) -> EnvFacts:
    """:class:`EnvFacts` of melody envs (single or native vector) that must agree."""
    keys = {row.key.name if isinstance(row.key, Key) else str(row.key).lower() for row in rows}
    if len(keys) > 1:
        raise ValueError(
            f"the env's rows are in different keys {sorted(keys)}: the k rows of a primer must "
            "share their key; give every row the same key (or key='any' to every row)"
        )
    layouts = {row.layout for row in rows}
    if len(layouts) > 1:
        raise ValueError(f"the env's rows have different observation layouts: {layouts}")
    return EnvFacts(
        num_envs=num_envs,
        key=keys.pop(),
        layout=layouts.pop(),
        reward_rnn=rows[0].reward_rnn,
        reward_function=rows[0].reward_function,
    )


def wrap_single_env(env: gym.Env, copies: int) -> gym.vector.SyncVectorEnv:
    """A ``SyncVectorEnv`` of ``copies`` deep copies of ``env`` (its wrappers kept; the reward
    RNN, which keeps no state between calls, shared rather than copied)."""
    shared = {id(env.unwrapped.reward_rnn): env.unwrapped.reward_rnn}
    return gym.vector.SyncVectorEnv(
        [lambda: copy.deepcopy(env, dict(shared)) for _ in range(copies)]
    )


def make_envs(env_id: str, config: RLOOConfig, reward_rnn: NoteRNN) -> gym.vector.VectorEnv:
    """The native vector env of ``env_id`` the config describes, one iteration wide."""
    kwargs = config.env.replace(reward_rnn=reward_rnn).env_kwargs()
    try:
        return gym.make_vec(
            env_id,
            num_envs=config.batch_compositions,
            vectorization_mode="vector_entry_point",
            **kwargs,
        )
    except TypeError as error:  # another env's constructor, given the melody env's arguments
        raise ValueError(f"env id {env_id!r} does not make a melody env: {error}") from error


def as_vector_env(env, config: RLOOConfig) -> tuple[gym.vector.VectorEnv, EnvFacts]:
    """``env`` as a vector env of whole groups, and its facts."""
    if isinstance(env, gym.vector.VectorEnv):
        envs = env
    elif isinstance(env, gym.Env):
        if not isinstance(env.unwrapped, MelodyCompositionEnv):
            raise ValueError(
                f"RLOO needs a MelodyCompositionEnv, got {type(env.unwrapped).__name__}"
            )
        envs = wrap_single_env(env, config.batch_compositions)
    else:
        raise ValueError(
            f"env must be an env id, a MelodyCompositionEnv or a VectorEnv of them, got {env!r}"
        )
    k = config.samples_per_primer
    if envs.num_envs % k:
        raise ValueError(
            f"the vector env's {envs.num_envs} envs are not a multiple of samples_per_primer="
            f"{k}: RLOO writes each primer in {k} rows of one rollout"
        )
    return envs, env_facts(envs)


def fit_config(config: RLOOConfig, facts: EnvFacts, check: bool = False) -> RLOOConfig:
    """The config with the env's settings in ``config.env``, and ``num_primers`` rounded up to
    whole rollouts.

    Raises:
        ValueError: with ``check``, ``config.env`` sets a field of :data:`ENV_FIELDS` (to
            another value than RLOO's default) that differs from the env's, or a reward RNN.
    """
    values = facts.config_values()
    if check:
        default = default_env()
        for name in ENV_FIELDS:
            given = getattr(config.env, name)
            if given != getattr(default, name) and given != values[name]:
                raise ValueError(
                    f"env.{name}={given!r} differs from the env's {values[name]!r}: with an "
                    f"env, RLOO takes {', '.join(ENV_FIELDS)} from it"
                )
        if config.env.reward_rnn is not None:
            raise ValueError("reward_rnn is the env's: RLOO starts from the env's reward RNN")
    groups = facts.num_envs // config.samples_per_primer
    num_primers = math.ceil(config.num_primers / groups) * groups
    return replace(config, env=config.env.replace(**values), num_primers=num_primers)


def same_weights(a: NoteRNN, b: NoteRNN) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return first.keys() == second.keys() and all(
        first[name].shape == second[name].shape and torch.equal(first[name], second[name])
        for name in first
    )
