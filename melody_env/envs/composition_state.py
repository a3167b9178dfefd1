"""State of ``B`` compositions advanced in lockstep: the engine of both the single and the
vector env (the single env is a batch of one), so each rule runs through one code path."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from melody_env.models.note_rnn import NoteRNN
from melody_env.music import theory
from melody_env.music.encoding import NOT_A_PITCH, TOKEN_PITCHES
from melody_env.music.keys import Key
from melody_env.rewards.composition import RewardBreakdown, RewardFunction
from melody_env.rewards.context import KeyArrays, RewardContext


class CompositionState:
    """Tokens, keys, leap memory and reward-RNN state of ``batch_size`` compositions.

    Args:
        batch_size: number of compositions.
        length: tokens per composition.
        reward_rnn: the frozen Note RNN scoring each token.
        reward_function: the weighted reward terms.
    """

    def __init__(
        self,
        batch_size: int,
        length: int,
        reward_rnn: NoteRNN,
        reward_function: RewardFunction,
    ) -> None:
        self.batch_size = batch_size
        self.length = length
        self.reward_rnn = reward_rnn
        self.reward_function = reward_function
        self.tokens = np.zeros((batch_size, length), dtype=np.int64)
        self.step = 0
        self.leap = theory.LeapState.empty(batch_size)
        self.last_pitch = np.full(batch_size, NOT_A_PITCH, dtype=np.int64)
        self.previous_token = np.zeros(batch_size, dtype=np.int64)
        self.keys: list[Key] = []
        self.key_arrays: KeyArrays | None = None
        self.primers: list[np.ndarray] = []
        self.rnn_state = reward_rnn.initial_state(batch_size)
        self.next_log_probs = np.zeros((batch_size, reward_rnn.config.num_classes), np.float32)

    @property
    def finished(self) -> bool:
        return self.step >= self.length

    @property
    def composition(self) -> np.ndarray:
        """``int [B, step]``: the tokens placed so far."""
        return self.tokens[:, : self.step]

    def reset(self, primers: list[np.ndarray], keys: list[Key]) -> None:
        """Start new compositions after ``primers`` (non-empty token arrays) in ``keys``."""
        self.tokens[:] = 0
        self.step = 0
        self.leap.reset()
        self.primers = primers
        self.keys = keys
        self.key_arrays = KeyArrays.from_keys(keys)
        self.previous_token = np.array([primer[-1] for primer in primers], dtype=np.int64)
        # The primer is not part of the composition, so no previous note for the interval rules.
        self.last_pitch[:] = NOT_A_PITCH
        self._prime_reward_rnn(primers)

    def _prime_reward_rnn(self, primers: list[np.ndarray]) -> None:
        # Primers of equal length run as one batch; the default random-note primers are all 1 long.
        rows_by_length = defaultdict(list)
        for row, primer in enumerate(primers):
            rows_by_length[len(primer)].append(row)
        h, c = (tensor.clone() for tensor in self.reward_rnn.initial_state(self.batch_size))
        log_probs = torch.empty(self.batch_size, self.reward_rnn.config.num_classes)
        for rows in rows_by_length.values():
            tokens = torch.from_numpy(np.stack([primers[row] for row in rows]))
            group_log_probs, (group_h, group_c) = self.reward_rnn.prime(tokens)
            index = torch.tensor(rows)
            log_probs[index] = group_log_probs
            h[:, index], c[:, index] = group_h, group_c
        self.rnn_state = (h, c)
        self.next_log_probs = log_probs.numpy()

    def advance(self, actions: np.ndarray) -> RewardBreakdown:
        """Place ``actions [B]`` at the current step; return the rewards they earn."""
        step = self.step
        log_prob = self.next_log_probs[np.arange(self.batch_size), actions]
        leap_outcome, self.leap = theory.leap_step(self.leap, self.last_pitch, actions)
        context = RewardContext(
            history=self.tokens[:, :step],
            action=actions,
            step=step,
            length=self.length,
            keys=self.key_arrays,
            previous_token=self.previous_token,
            log_prob=log_prob,
            leap_outcome=leap_outcome,
        )
        breakdown = self.reward_function(context)
        self.tokens[:, step] = actions
        self.step = step + 1
        self.previous_token = actions
        pitch = TOKEN_PITCHES[actions]
        self.last_pitch = np.where(pitch != NOT_A_PITCH, pitch, self.last_pitch)
        log_probs, self.rnn_state = self.reward_rnn.step(torch.from_numpy(actions), self.rnn_state)
        self.next_log_probs = log_probs.numpy()
        return breakdown
