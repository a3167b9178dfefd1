"""What a reward term sees at one step: a batch of compositions and the token placed in each."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from melody_env.music import theory
from melody_env.music.encoding import TOKEN_PITCHES
from melody_env.music.keys import Key


@dataclass(frozen=True)
class KeyArrays:
    """The keys of a batch of compositions as arrays (``[B]`` pitch classes, ``[B, 12]`` mask)."""

    tonic: np.ndarray
    mediant: np.ndarray
    dominant: np.ndarray
    scale_mask: np.ndarray

    @classmethod
    def from_keys(cls, keys: list[Key]) -> KeyArrays:
        return cls(
            tonic=np.array([key.tonic for key in keys], dtype=np.int64),
            mediant=np.array([key.mediant for key in keys], dtype=np.int64),
            dominant=np.array([key.dominant for key in keys], dtype=np.int64),
            scale_mask=np.stack([key.scale_mask for key in keys]),
        )


class RewardContext:
    """Inputs of the reward terms for one step of ``B`` compositions (all at the same step).

    Attributes:
        history: ``int [B, t]``: the tokens placed before this step.
        action: ``int [B]``: the token placed now.
        step: ``t``, the 0-based position of ``action`` in the composition.
        length: the composition length (the last step is ``length - 1``).
        keys: the key of each composition.
        previous_token: ``int [B]``: the token before ``action`` (the primer's last at step 0).
        log_prob: ``float [B]``: log p(action | history) under the reward RNN.
        leap_outcome: ``int8 [B]``: :func:`melody_env.music.theory.leap_step`'s outcome for
            ``action`` (computed once per step by the composition state, which owns the memory).

    Derived quantities are computed on first use and shared by the terms.
    """

    def __init__(
        self,
        history: np.ndarray,
        action: np.ndarray,
        step: int,
        length: int,
        keys: KeyArrays,
        previous_token: np.ndarray,
        log_prob: np.ndarray,
        leap_outcome: np.ndarray,
    ) -> None:
        self.history = history
        self.action = action
        self.step = step
        self.length = length
        self.keys = keys
        self.previous_token = previous_token
        self.log_prob = log_prob
        self.leap_outcome = leap_outcome

    @property
    def batch_size(self) -> int:
        return len(self.action)

    @property
    def is_last_step(self) -> bool:
        return self.step == self.length - 1

    @cached_property
    def sequence(self) -> np.ndarray:
        """``int [B, t + 1]``: ``history`` with ``action`` appended."""
        return theory.append_action(self.history, self.action)

    @cached_property
    def pitch(self) -> np.ndarray:
        """``int [B]``: MIDI pitch of ``action`` (``NOT_A_PITCH`` for hold and rest)."""
        return TOKEN_PITCHES[self.action]

    @cached_property
    def interval(self) -> np.ndarray:
        """``int [B]``: :func:`melody_env.music.theory.classify_interval` of ``action``."""
        return theory.classify_interval(
            self.history, self.action, self.keys.tonic, self.keys.mediant, self.keys.dominant
        )

    @cached_property
    def is_repeating(self) -> np.ndarray:
        """``bool [B]``: ``action`` repeats excessively."""
        return theory.is_excessive_repetition(self.history, self.action)

    @cached_property
    def motif_notes(self) -> np.ndarray:
        """``int [B]``: distinct pitches in the last 8 tokens (0 before step 7)."""
        return theory.motif_distinct_notes(self.sequence)
