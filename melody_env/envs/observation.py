"""The flat one-hot observation of the melody env, shared by the single and the vector env.

Layout of the binary vector (``MultiBinary``, dtype ``int8``), with ``L = composition_length``,
``P = primer_context`` and ``S = steps_per_bar``:

=====================  ==============  =======================================================
slice                  size            content
=====================  ==============  =======================================================
``last_token``         38              one-hot of the previous token (the last primer token at
                                       step 0); a recurrent agent needs only this slice
``composition``        38 * L          slot i: one-hot of the i-th placed token, zeros for
                                       slots not yet played
``primer``             38 * P          the last P primer tokens, right-aligned, zero-padded
``position``           L               one-hot of the step about to be played (zeros at the end)
``beat``               S               one-hot of that step's position in the bar
``key_tonic``          12              one-hot of the key's tonic pitch class
``key_mode``           2               one-hot of major / minor
=====================  ==============  =======================================================

A flat vector rather than a ``Dict`` or ``MultiDiscrete`` so that every Stable-Baselines3
policy and sb3-contrib's RecurrentPPO take it unchanged (they cast ``MultiBinary`` observations
to float). ``MultiBinary`` rather than a float32 ``Box`` because every entry is 0 or 1: one
byte per entry makes each step's observation a quarter of the memory traffic, and replay or
rollout buffers that store observations (SB3's keep the space's dtype) a quarter of the size.
Code that wants floats wraps the env in ``gymnasium.wrappers.DtypeObservation(env, np.float32)``,
which turns the space into the equivalent ``Box(0, 1, (D,), float32)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np
from gymnasium import spaces

from melody_env.music.encoding import NUM_CLASSES
from melody_env.music.keys import MODES, Key


@dataclass(frozen=True)
class ObservationLayout:
    """Offsets of the observation's slices for one env configuration."""

    composition_length: int
    primer_context: int
    steps_per_bar: int

    @cached_property
    def slices(self) -> dict[str, slice]:
        sizes = {
            "last_token": NUM_CLASSES,
            "composition": NUM_CLASSES * self.composition_length,
            "primer": NUM_CLASSES * self.primer_context,
            "position": self.composition_length,
            "beat": self.steps_per_bar,
            "key_tonic": 12,
            "key_mode": len(MODES),
        }
        offsets, start = {}, 0
        for name, size in sizes.items():
            offsets[name] = slice(start, start + size)
            start += size
        return offsets

    @property
    def size(self) -> int:
        return self.slices["key_mode"].stop

    @property
    def space(self) -> spaces.MultiBinary:
        """The observation space of one composition: ``MultiBinary(size)`` (dtype ``int8``)."""
        return spaces.MultiBinary(self.size)

    def as_batch(self, observation, dtype=None) -> np.ndarray:
        """``observation`` (one ``[size]`` or a batch ``[n, size]``) as a ``[n, size]`` array.

        >>> layout = ObservationLayout(32, 8, 16)
        >>> layout.as_batch(np.zeros(layout.size, np.int8)).shape
        (1, 1620)
        >>> layout.as_batch(np.zeros((2, 5)))
        Traceback (most recent call last):
        ...
        ValueError: observation must have shape [n, 1620] or [1620], got (2, 5)

        Raises:
            ValueError: any other shape (naming it and the allowed ones).
        """
        obs = np.asarray(observation, dtype=dtype)
        if obs.ndim == 1:
            obs = obs[None]
        if obs.ndim != 2 or obs.shape[1] != self.size:
            raise ValueError(
                f"observation must have shape [n, {self.size}] or [{self.size}], "
                f"got {np.asarray(observation).shape}"
            )
        return obs

    def write_reset(
        self, obs: np.ndarray, primers: list[np.ndarray] | np.ndarray, keys: list[Key]
    ) -> None:
        """Fill ``obs [B, size]`` for compositions that start now (``primers``: one token array
        per composition, or an ``int [B, T]`` array)."""
        slices = self.slices
        obs[:] = 0
        rows = np.arange(len(primers))
        width = self.primer_context
        equal_lengths = isinstance(primers, np.ndarray) and primers.ndim == 2
        if equal_lengths or len({len(primer) for primer in primers}) == 1:  # one array op
            stacked = np.asarray(primers) if equal_lengths else np.stack(primers)
            tail = stacked[:, stacked.shape[1] - min(width, stacked.shape[1]) :]
            slots = np.arange(width - tail.shape[1], width)
            obs[rows[:, None], slices["primer"].start + NUM_CLASSES * slots + tail] = 1
            last_tokens = stacked[:, -1]
        else:
            for row, primer in enumerate(primers):
                tail = primer[len(primer) - min(width, len(primer)) :]
                slots = np.arange(width - len(tail), width)
                obs[row, slices["primer"].start + NUM_CLASSES * slots + tail] = 1
            last_tokens = np.array([primer[-1] for primer in primers])
        obs[rows, slices["last_token"].start + last_tokens] = 1
        obs[rows, slices["key_tonic"].start + np.array([key.tonic for key in keys])] = 1
        modes = np.array([MODES.index(key.mode) for key in keys])
        obs[rows, slices["key_mode"].start + modes] = 1
        self._write_position(obs, step=0)

    def write_step(self, obs: np.ndarray, step: int, actions: np.ndarray | int) -> None:
        """Record ``actions`` as the tokens of ``step`` and move the position to ``step + 1``:
        ``obs [B, size]`` and ``actions [B]``, or one composition's ``obs [size]`` and an
        ``int`` token. Only the entries that change are written (a few per composition).

        Raises:
            IndexError: if a token is outside ``[0, 38)`` or ``step`` outside the composition.
            ValueError: if ``obs`` rows are not ``size`` long, or ``actions`` not one per row.
        """
        offsets = self._step_offsets
        if not 0 <= step < self.composition_length:
            raise IndexError(f"step {step} outside [0, {self.composition_length})")
        if obs.shape[-1] != self.size:
            raise ValueError(f"observations have {obs.shape[-1]} entries, the layout {self.size}")
        if obs.ndim == 1:
            _write_step_row(
                obs, step, actions, *offsets, self.steps_per_bar, self.composition_length
            )
        else:
            _write_step_rows(
                obs, step, actions, *offsets, self.steps_per_bar, self.composition_length
            )

    @cached_property
    def _step_offsets(self) -> tuple[int, int, int, int]:
        """Where the slices that a step changes start."""
        slices = self.slices
        names = ("last_token", "composition", "position", "beat")
        return tuple(slices[name].start for name in names)

    def _write_position(self, obs: np.ndarray, step: int) -> None:
        slices = self.slices
        obs[:, slices["position"]] = 0
        obs[:, slices["beat"]] = 0
        if step < self.composition_length:
            obs[:, slices["position"].start + step] = 1
            obs[:, slices["beat"].start + step % self.steps_per_bar] = 1


@numba.njit(cache=True, nogil=True)
def _write_step_row(
    row, step, token, last_token, composition, position, beat, steps_per_bar, length
) -> None:
    _check_token(token)
    _write_unchecked(
        row, step, token, last_token, composition, position, beat, steps_per_bar, length
    )


@numba.njit(cache=True, nogil=True)
def _write_step_rows(
    obs, step, tokens, last_token, composition, position, beat, steps_per_bar, length
) -> None:
    if len(tokens) != obs.shape[0]:
        raise ValueError("one token per observation row")
    for token in tokens:  # all checked before any row changes
        _check_token(token)
    for index in range(len(tokens)):
        _write_unchecked(
            obs[index],
            step,
            tokens[index],
            last_token,
            composition,
            position,
            beat,
            steps_per_bar,
            length,
        )


@numba.njit(cache=True, nogil=True, inline="always")
def _check_token(token) -> None:
    if token < 0 or token >= NUM_CLASSES:  # the writes are not bounds-checked
        raise IndexError("token outside [0, 38)")


@numba.njit(cache=True, nogil=True, inline="always")
def _write_unchecked(
    row, step, token, last_token, composition, position, beat, steps_per_bar, length
) -> None:
    row[last_token : last_token + NUM_CLASSES] = 0
    row[last_token + token] = 1
    row[composition + NUM_CLASSES * step + token] = 1
    row[position + step] = 0
    row[beat + step % steps_per_bar] = 0
    if step + 1 < length:
        row[position + step + 1] = 1
        row[beat + (step + 1) % steps_per_bar] = 1
