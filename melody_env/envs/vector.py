"""``MelodyCompositionVectorEnv``: ``N`` melodies composed in lockstep as one batch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pretty_midi
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from melody_env.envs.composition_state import CompositionState
from melody_env.envs.env_config import RENDER_MODES, EnvConfig, set_up_env
from melody_env.envs.melody_composition import check_options
from melody_env.envs.priming import (
    ANY_KEY,
    PrimerSpec,
    check_key,
    check_primer,
    random_primer_token,
    resolve_key,
    resolve_primer,
    stack_primers,
)
from melody_env.models.note_rnn import MAX_BATCH
from melody_env.music.encoding import NOTE_OFF, NUM_CLASSES
from melody_env.music.keys import Key

SeedSpec = int | Sequence[int | None] | None
"""``None`` (keep each env's generator), ``s`` (env ``i`` gets ``s + i``) or one seed per env."""


class MelodyCompositionVectorEnv(VectorEnv):
    """``num_envs`` copies of :class:`~melody_env.MelodyCompositionEnv` stepped as one batch.

    ## Description

    The vector twin of the single env: the same task, rules and reward, computed for all ``N``
    compositions at once by a :class:`~melody_env.envs.composition_state.CompositionState`. The
    rules run in one compiled loop over the batch (:mod:`melody_env.rewards.rule_engine`), which
    the single env steps for a batch of one, so every rule has one implementation. One step runs
    one batched reward-RNN forward, that loop and array operations over the batch, with no
    Python loop over envs. Env ``i`` reset with seed ``s + i`` behaves exactly as
    a single env reset with that seed and given the same actions (up to float32 rounding in the
    reward RNN's log-probs).

    ## Action Space

    ``MultiDiscrete([38] * N)``: one token per env (0 = hold, 1 = rest, 2..37 = MIDI 48..83);
    ``single_action_space`` is ``Discrete(38)``.

    ## Observation Space

    ``Box(0, 1, (N, D), int8)`` (Gymnasium's ``batch_space`` of ``MultiBinary(D)``): the single
    env's flat one-hot observation per env (``D = 1620`` by default, see
    :mod:`melody_env.envs.observation`); ``single_observation_space`` is ``MultiBinary(D)``.

    ## Rewards

    The single env's (see :class:`~melody_env.MelodyCompositionEnv`), as a ``float64 [N]``
    array. ``info`` follows Gymnasium's vector convention (what ``SyncVectorEnv`` builds from the
    single envs' infos): each entry is an array over the envs, with a boolean mask ``_name``
    telling which envs have it (all of them here). After a step: ``info["reward_terms"]`` is a
    dict of ``float64 [N]`` arrays per active term (with their masks), ``info["music_theory"]``
    and ``info["log_prob"]`` are ``float64 [N]`` and ``info["prior_log_probs"]`` is
    ``float32 [N, 38]``. After a reset: ``prior_log_probs``, ``key`` (object array of key names)
    and ``primer`` (``int64 [N, T]``, or an object array of arrays when lengths differ).

    ## Starting State

    Per env, as the single env: a primer (a random token, given tokens or a MIDI file) in a key.

    ## Episode End and Autoreset

    All compositions have the same length, so all envs terminate together, after
    ``composition_length`` steps; there is no truncation. Autoreset is
    ``AutoresetMode.NEXT_STEP``: the step after termination ignores the actions and starts new
    compositions (constructor key and primer, each env's generator continuing), returning their
    first observations, zero rewards, ``False`` flags and the reset ``info``. Partial resets
    (``options["reset_mask"]``) are not supported: the compositions advance in lockstep.

    ## Arguments

    - ``num_envs``: number of compositions ``N``.
    - ``copy`` (``True``): return a new observation array from each ``reset`` and ``step``, as
      Gymnasium's ``SyncVectorEnv(copy=True)``. ``False`` returns the env's own buffer, which
      the next ``step`` or ``reset`` overwrites: faster, for callers that copy what they keep
      (e.g. into a rollout buffer) before stepping again.
    - The single env's arguments, shared by all envs: the fields of
      :class:`~melody_env.envs.env_config.EnvConfig`, as keywords or as ``config=`` (keywords
      override its fields). With ``key="any"``, each env draws its key from its own generator at
      each reset, autoresets included.

    ``reset(seed=s)`` seeds env ``i`` with ``s + i``; ``seed=[s0, s1, ...]`` gives one seed per
    env (``None`` keeps that env's generator). ``reset(options=...)`` overrides for one episode
    ``"key"`` (a name or ``"any"`` for all envs, or a list of ``N``) and ``"primer"`` (one
    primer for all, or a list of ``N`` primers, each ``None``, tokens or a MIDI path).

    ``render()`` returns a tuple of the ``N`` single-env renders; :attr:`compositions`,
    :meth:`to_pretty_midi` and :meth:`to_midi` export the melodies.

    ## Version History

    - v0: first version, parity with ``MelodyCompositionEnv`` v0.

    ## Example

    >>> import gymnasium as gym
    >>> import melody_env
    >>> from melody_env.models import NoteRNN
    >>> envs = gym.make_vec(
    ...     "melody_env/MelodyComposition-v0", num_envs=3, key="G major", reward_rnn=NoteRNN(seed=0)
    ... )
    >>> type(envs).__name__
    'MelodyCompositionVectorEnv'
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape, info["prior_log_probs"].shape
    ((3, 1620), (3, 38))
    >>> obs, rewards, terminated, truncated, info = envs.step(np.array([21, 21, 2]))  # G4 G4 C3
    >>> info["reward_terms"]["tonic"], terminated
    (array([3., 3., 0.]), array([False, False, False]))
    """

    metadata = {
        "render_modes": list(RENDER_MODES),
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        config: EnvConfig | None = None,
        *,
        copy: bool = True,
        **env_arguments: Any,
    ) -> None:
        if (
            not isinstance(num_envs, (int, np.integer))
            or isinstance(num_envs, bool)
            or not 1 <= num_envs <= MAX_BATCH
        ):
            raise ValueError(f"num_envs must be an integer in [1, {MAX_BATCH:,}], got {num_envs!r}")
        self.num_envs = int(num_envs)
        config = set_up_env(self, config, env_arguments)

        self.single_action_space = spaces.Discrete(NUM_CLASSES)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = self.layout.space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

        self._state = CompositionState(
            self.num_envs,
            config.composition_length,
            self.reward_rnn,
            self.reward_function,
            check_finite=True,
        )
        self.copy = bool(copy)
        self._obs = np.zeros(
            (self.num_envs, self.layout.size), dtype=self.single_observation_space.dtype
        )
        self._env_rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._episode_keys = [self.key if isinstance(self.key, Key) else Key()] * self.num_envs
        self._started = False
        self._autoreset = False

    # --- Gymnasium API -------------------------------------------------------------------------

    def reset(
        self, *, seed: SeedSpec = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start ``N`` new compositions; see the class docstring for ``seed`` and ``options``."""
        seeds = self._seed_list(seed)
        keys, primer_specs = self._parse_options(options)
        if isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))
        for index, env_seed in enumerate(seeds):
            if env_seed is not None:
                self._env_rngs[index] = seeding.np_random(env_seed)[0]
        return self._start_episodes(keys, primer_specs)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Place one token per env; the step after termination resets all envs instead."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        tokens = self._check_actions(actions)
        no_flags = np.zeros(self.num_envs, dtype=bool)
        if self._autoreset:
            obs, info = self._start_episodes(
                [self.key] * self.num_envs, [self.primer] * self.num_envs
            )
            return obs, np.zeros(self.num_envs), no_flags, no_flags.copy(), info
        breakdown = self._state.advance(tokens)
        self.layout.write_step(self._obs, self._state.step - 1, tokens)
        # The breakdown's arrays are new and ours (see RewardBreakdown): no copies needed,
        # except of log_prob, which is also the log_prob term's array.
        rewards = np.asarray(breakdown.total, dtype=np.float64)  # finite: the state checked
        mask = np.ones(self.num_envs, dtype=bool)  # every env has every entry
        terms: dict[str, np.ndarray] = {}
        for name, value in breakdown.terms.items():
            terms[name] = np.asarray(value, dtype=np.float64)
            terms[f"_{name}"] = mask
        info = {
            "reward_terms": terms,
            "_reward_terms": mask,
            "music_theory": np.asarray(breakdown.music_theory, dtype=np.float64),
            "_music_theory": mask,
            "log_prob": np.array(breakdown.log_prob, dtype=np.float64),
            "_log_prob": mask,
            "prior_log_probs": np.array(self._state.next_log_probs, dtype=np.float32),
            "_prior_log_probs": mask,
        }
        self._autoreset = self._state.finished
        terminated = np.full(self.num_envs, self._autoreset)
        return self._observations(), rewards, terminated, no_flags, info

    def render(self) -> tuple[Any, ...] | None:
        """The single env's render of each composition (text or RGB piano roll), as a tuple."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        return tuple(self._render_one(index) for index in range(self.num_envs))

    # --- Export --------------------------------------------------------------------------------

    @property
    def compositions(self) -> np.ndarray:
        """``int64 [N, t]``: the tokens placed so far in each env (a copy)."""
        return self._state.composition.copy()

    @property
    def episode_keys(self) -> tuple[str, ...]:
        """The key of each env's current composition."""
        return tuple(key.name for key in self._episode_keys)

    def to_pretty_midi(self, index: int) -> pretty_midi.PrettyMIDI:
        """Env ``index``'s composition so far as a ``pretty_midi.PrettyMIDI`` (at ``qpm``)."""
        from melody_env.io.midi_writer import tokens_to_pretty_midi

        return tokens_to_pretty_midi(self._composition_of(index), qpm=self.qpm)

    def to_midi(self, index: int, path: str | os.PathLike) -> None:
        """Write env ``index``'s composition so far to a MIDI file (atomically)."""
        from melody_env.io.midi_writer import write_midi

        write_midi(path, self._composition_of(index), qpm=self.qpm)

    # --- Internals -----------------------------------------------------------------------------

    def _start_episodes(
        self, key_specs: list[Key | str], primer_specs: list[PrimerSpec]
    ) -> tuple[np.ndarray, dict[str, Any]]:
        # Draws from each env's own generator in the single env's order: the key ("any"), then
        # the primer.
        if ANY_KEY in key_specs:
            keys = [resolve_key(spec, self._env_rng(i)) for i, spec in enumerate(key_specs)]
        else:
            keys = key_specs
        if all(spec is None for spec in primer_specs):  # the default: a random token each
            draws = [random_primer_token(self._env_rng(index)) for index in range(self.num_envs)]
            batch = np.array(draws, dtype=np.int64)[:, None]
        else:
            primers = [
                resolve_primer(spec, key, self._env_rng(index))
                for index, (spec, key) in enumerate(zip(primer_specs, keys, strict=True))
            ]
            stacked = stack_primers(primers)  # int64 [N, T], or None for unequal lengths
            batch = primers if stacked is None else stacked
        self._state.reset(batch, keys)
        self.layout.write_reset(self._obs, batch, keys)
        self._episode_keys = keys
        self._started = True
        self._autoreset = False
        mask = np.ones(self.num_envs, dtype=bool)  # every env has every entry
        key_names = np.empty(self.num_envs, dtype=object)
        key_names[:] = [key.name for key in keys]
        info = {
            "prior_log_probs": np.array(self._state.next_log_probs, dtype=np.float32),
            "_prior_log_probs": mask,
            "key": key_names,
            "_key": mask,
            "primer": _primer_info(batch),
            "_primer": mask,
        }
        return self._observations(), info

    def _observations(self) -> np.ndarray:
        return self._obs.copy() if self.copy else self._obs

    def _env_rng(self, index: int) -> np.random.Generator:
        if self._env_rngs[index] is None:
            self._env_rngs[index] = seeding.np_random()[0]
        return self._env_rngs[index]

    def _seed_list(self, seed: SeedSpec) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            return [int(seed) + index for index in range(self.num_envs)]
        if isinstance(seed, Sequence) and not isinstance(seed, str):
            if len(seed) != self.num_envs:
                raise ValueError(
                    f"a list of seeds needs one per env ({self.num_envs}), got {len(seed)}: "
                    f"{seed!r}"
                )
            for value in seed:
                if value is not None and (
                    not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0
                ):
                    raise ValueError(f"seeds must be non-negative integers or None, got {value!r}")
            return [None if value is None else int(value) for value in seed]
        raise ValueError(
            f"seed must be None, a non-negative integer or a list of {self.num_envs}, got {seed!r}"
        )

    def _parse_options(
        self, options: dict[str, Any] | None
    ) -> tuple[list[Key | str], list[PrimerSpec]]:
        options = check_options(options)
        if "reset_mask" in options:
            raise ValueError(
                "options['reset_mask'] is not supported: the compositions of "
                "MelodyCompositionVectorEnv advance in lockstep, so all envs reset together"
            )
        unknown = set(options) - {"key", "primer"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; allowed: 'key', 'primer'")
        keys = [self.key] * self.num_envs
        if "key" in options:
            value = options["key"]
            if isinstance(value, (str, Key)):
                keys = [check_key(value)] * self.num_envs
            elif isinstance(value, (Sequence, np.ndarray)):
                keys = [check_key(name) for name in self._per_env(value, "key")]
            else:
                raise ValueError(
                    f"options['key'] must be a key name, 'any', or a list of {self.num_envs} of "
                    f"them, got {value!r}"
                )
        primers: list[PrimerSpec] = [self.primer] * self.num_envs
        if "primer" in options:
            value = options["primer"]
            if _is_primer_list(value):
                primers = [check_primer(spec) for spec in self._per_env(value, "primer")]
            else:
                primers = [check_primer(value)] * self.num_envs
        return keys, primers

    def _per_env(self, values: Any, what: str) -> list[Any]:
        values = list(values)
        if len(values) != self.num_envs:
            raise ValueError(
                f"options[{what!r}] as a list needs one entry per env ({self.num_envs}), "
                f"got {len(values)}"
            )
        return values

    def _check_actions(self, actions: Any) -> np.ndarray:
        array = np.asarray(actions)
        if array.shape != (self.num_envs,):
            raise ValueError(
                f"actions must have shape ({self.num_envs},), one token per env; got shape "
                f"{array.shape}: {actions!r}"
            )
        if array.dtype.kind not in "iu":  # signed or unsigned integers
            raise ValueError(
                f"actions must be integer tokens in [0, {NUM_CLASSES - 1}], got dtype "
                f"{array.dtype}: {actions!r}"
            )
        tokens = array.astype(np.int64)  # a copy: the state keeps it
        if (tokens.view(np.uint64) >= NUM_CLASSES).any():  # negative ones wrap around
            env = int(np.flatnonzero((array < 0) | (array >= NUM_CLASSES))[0])
            raise ValueError(
                f"invalid action {array[env]} for env {env}; expected an integer token in "
                f"[0, {NUM_CLASSES - 1}] (0 = hold, 1 = rest, 2..37 = MIDI pitches 48..83)"
            )
        return tokens

    def _composition_of(self, index: int) -> np.ndarray:
        if not 0 <= index < self.num_envs:
            raise IndexError(f"env index {index} out of range [0, {self.num_envs - 1}]")
        return self._state.composition[index].copy()

    def _render_one(self, index: int) -> Any:
        from melody_env.io import render

        tokens = self._state.composition[index]
        key, steps_per_bar = self._episode_keys[index], self.layout.steps_per_bar
        if self.render_mode == "ansi":
            primers = self._state.primers
            primer = primers[index] if len(primers) else None
            return render.render_ansi(tokens, key, self._state.step, steps_per_bar, primer)
        # A fixed-size image: the steps not played yet are drawn as silence (a note-off, holds).
        padded = np.zeros(self._state.length, dtype=np.int64)
        padded[: len(tokens)] = tokens
        if len(tokens) < len(padded):
            padded[len(tokens)] = NOTE_OFF
        return render.render_rgb(padded, key, steps_per_bar)


def _is_primer_list(value: Any) -> bool:
    """Whether a ``primer`` option lists one primer per env rather than being one primer."""
    if value is None or isinstance(value, (str, os.PathLike)):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim == 2
    return isinstance(value, Sequence) and any(
        item is None or isinstance(item, (str, Path, os.PathLike, Sequence, np.ndarray))
        for item in value
    )


def _primer_info(primers: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """``info["primer"]``: an ``int64 [N, T]`` copy, or an object array of ``N`` token arrays
    when the lengths differ."""
    if isinstance(primers, np.ndarray):
        return primers.copy()
    info = np.empty(len(primers), dtype=object)
    for index, primer in enumerate(primers):
        info[index] = np.array(primer, dtype=np.int64)
    return info
