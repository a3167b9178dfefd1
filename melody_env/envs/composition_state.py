"""State of ``B`` compositions advanced in lockstep: the engine of both the single and the
vector env (the single env is a batch of one), so each rule runs through one code path.

Each step costs the same at the first and the last token: what the rules need to know about
the history is kept up to date token by token (the last note, the run and leap states of
:mod:`melody_env.music.theory` as indices into :mod:`melody_env.music.step_tables`, the melodic
line, the motif window codes) instead of being recomputed from the whole history.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from melody_env.models.note_rnn import NoteRNN
from melody_env.music import theory
from melody_env.music.encoding import NUM_CLASSES, TOKEN_PITCHES
from melody_env.music.keys import Key
from melody_env.music.step_tables import NO_NOTE, PAIRS, step_tables
from melody_env.rewards.composition import RewardBreakdown, RewardFunction
from melody_env.rewards.context import KeyArrays, RewardContext

MOTIF_LENGTH = theory.MOTIF_LENGTH


class CompositionState:
    """Tokens, keys, rule states and reward-RNN state of ``batch_size`` compositions.

    Args:
        batch_size: number of compositions.
        length: tokens per composition.
        reward_rnn: the frozen Note RNN scoring each token.
        reward_function: the weighted reward terms (any callable ``RewardContext ->
            RewardBreakdown``).
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
        self.previous_token = np.zeros(batch_size, dtype=np.int64)
        self.keys: list[Key] = []
        self.key_arrays: KeyArrays | None = None
        self.primers: list[np.ndarray] = []
        self.rnn_state = tuple(x.numpy() for x in reward_rnn.initial_state(batch_size))
        num_classes = reward_rnn.config.num_classes
        self.next_log_probs = np.zeros((batch_size, num_classes), np.float32)
        # Rule states, kept token by token.
        self._tables = step_tables()
        rows = np.arange(batch_size)
        self._log_prob_index = rows * num_classes
        self._key_token = np.zeros(batch_size, dtype=np.int64)  # key * NUM_CLASSES
        self._key_pair = np.zeros(batch_size, dtype=np.int64)  # key * PAIRS
        # The states are rows of the step tables (see step_tables.StepTables).
        self._last_note_row = np.full(batch_size, NO_NOTE * NUM_CLASSES, dtype=np.int64)
        self._run_row = np.full(batch_size, self._tables.run_start, dtype=np.int64)
        self._leap_row = np.full(batch_size, self._tables.leap_start, dtype=np.int64)
        self._line_sums = theory.LineSums.empty(batch_size, theory.AUTOCORRELATION_LAGS)
        self._window_codes = np.zeros((batch_size, max(length - MOTIF_LENGTH + 1, 0)), np.int64)

    @property
    def finished(self) -> bool:
        return self.step >= self.length

    @property
    def composition(self) -> np.ndarray:
        """``int [B, step]``: the tokens placed so far."""
        return self.tokens[:, : self.step]

    def reset(self, primers: list[np.ndarray] | np.ndarray, keys: list[Key]) -> None:
        """Start new compositions after ``primers`` in ``keys``.

        Args:
            primers: one non-empty token array per composition, or an ``int [B, T]`` array.
            keys: one key per composition.
        """
        self.tokens[:] = 0
        self.step = 0
        self.primers = primers
        self.keys = keys
        self.key_arrays = KeyArrays.from_keys(keys)
        self._key_token = self.key_arrays.index * NUM_CLASSES
        self._key_pair = self.key_arrays.index * PAIRS
        stacked = stack_primers(primers)
        if stacked is not None:
            self.previous_token = stacked[:, -1].copy()
        else:
            self.previous_token = np.array([primer[-1] for primer in primers], dtype=np.int64)
        # The primer is not part of the composition, so no previous note for the interval rules.
        self._last_note_row[:] = NO_NOTE * NUM_CLASSES
        self._run_row[:] = self._tables.run_start
        self._leap_row[:] = self._tables.leap_start
        self._line_sums = theory.LineSums.empty(self.batch_size, theory.AUTOCORRELATION_LAGS)
        self._prime_reward_rnn(primers, stacked)

    def _prime_reward_rnn(self, primers: list[np.ndarray], stacked: np.ndarray | None) -> None:
        if stacked is not None:  # the usual case, e.g. the default one-token random primers
            log_probs, state = self.reward_rnn.prime(torch.from_numpy(stacked))
            self.rnn_state = tuple(x.numpy() for x in state)
            self.next_log_probs = log_probs.numpy()
            return
        # Primers of equal length run as one batch.
        rows_by_length = defaultdict(list)
        for row, primer in enumerate(primers):
            rows_by_length[len(primer)].append(row)
        h, c = (tensor.clone() for tensor in self.reward_rnn.initial_state(self.batch_size))
        log_probs = torch.empty(self.batch_size, self.reward_rnn.config.num_classes)
        for rows in rows_by_length.values():
            tokens = torch.from_numpy(np.stack([primers[row] for row in rows]).astype(np.int64))
            group_log_probs, (group_h, group_c) = self.reward_rnn.prime(tokens)
            index = torch.tensor(rows)
            log_probs[index] = group_log_probs
            h[:, index], c[:, index] = group_h, group_c
        self.rnn_state = (h.numpy(), c.numpy())
        self.next_log_probs = log_probs.numpy()

    def advance(self, actions: np.ndarray) -> RewardBreakdown:
        """Place ``actions [B]`` at the current step; return the rewards they earn."""
        step, tables = self.step, self._tables
        actions = np.asarray(actions)
        if step >= self.length:
            raise RuntimeError(f"the compositions are finished ({self.length} steps); reset first")
        self.tokens[:, step] = actions
        pair = self._last_note_row + actions
        # Detectors of the new token, from the states the history left (see step_tables).
        leap = self._leap_row + pair
        leap_outcome = tables.leap_outcome[leap]
        self._leap_row = tables.leap_next[leap]
        run = self._run_row + tables.run_class[pair]
        is_repeating = tables.run_repeats[run]
        self._run_row = tables.run_next[run]
        self._line_sums = theory.line_sums_step(self._line_sums, actions)
        if step >= MOTIF_LENGTH - 1:
            window = self.tokens[:, step + 1 - MOTIF_LENGTH : step + 1]
            self._window_codes[:, step + 1 - MOTIF_LENGTH] = theory.window_code(window)
        context = RewardContext(
            history=self.tokens[:, :step],
            action=actions,
            step=step,
            length=self.length,
            keys=self.key_arrays,
            previous_token=self.previous_token,
            log_prob=self.next_log_probs.reshape(-1)[self._log_prob_index + actions],
            leap_outcome=leap_outcome,
            sequence=self.tokens[:, : step + 1],
            pitch=TOKEN_PITCHES[actions],
            in_key=tables.in_key[self._key_token + actions],
            interval=tables.interval[self._key_pair + pair],
            is_repeating=is_repeating,
            line_sums=self._line_sums,
            window_codes=self._window_codes[:, : max(step + 2 - MOTIF_LENGTH, 0)],
        )
        breakdown = self.reward_function(context)
        self._last_note_row = tables.last_note_row[pair]
        self.step = step + 1
        self.previous_token = actions
        self.next_log_probs, self.rnn_state = self.reward_rnn.step_arrays(actions, self.rnn_state)
        return breakdown


def stack_primers(primers: list[np.ndarray] | np.ndarray) -> np.ndarray | None:
    """The primers as one ``int64 [B, T]`` array if they all have ``T`` tokens, else ``None``."""
    if isinstance(primers, np.ndarray) and primers.ndim == 2:
        return primers.astype(np.int64, copy=False)
    length = len(primers[0])
    if all(len(primer) == length for primer in primers):
        return np.array(primers, dtype=np.int64)
    return None
