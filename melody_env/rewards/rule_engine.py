"""The reward rules' engine: one compiled step over a batch of compositions.

What the nine rules of :mod:`melody_env.rewards.rules` need to know about a composition's
history is kept up to date token by token, in one ``int64 [STATE_ROWS, B]`` array: the rows of
the run, leap and last-note states in the lookup tables of
:mod:`melody_env.music.step_tables`, the melodic line's :class:`~melody_env.music.theory.
LineSums` and the code of the last motif window (:func:`~melody_env.music.theory.window_codes`).
A step (:meth:`RuleEngine.advance`) reads the tables, updates the state, derives the motif,
autocorrelation and extreme-note facts, and calls each rule, all in one ``numba`` loop over the
batch: a numpy version made about a hundred array calls per step, whose fixed cost outweighed
the arithmetic.

The vector env, the evaluation (``B`` compositions) and the single env (``B = 1``) all step
through it, so they share one implementation of every rule and agree bit for bit. The
whole-composition functions of :mod:`melody_env.music.theory` compute the same facts from a
sequence; ``tests/test_step_tables.py`` checks that both agree.
"""

from __future__ import annotations

import numba
import numpy as np

from melody_env.music import theory
from melody_env.music.encoding import NOT_A_PITCH, NUM_CLASSES
from melody_env.music.step_tables import NO_NOTE, PAIRS, step_tables
from melody_env.rewards import rules

LAGS = np.array(theory.AUTOCORRELATION_LAGS, dtype=np.int64)
NUM_LAGS = len(LAGS)
MOTIF_LENGTH = theory.MOTIF_LENGTH
NUM_RULES = len(rules.RULE_NAMES)

# Rows of the state array.
KEY = 0  # Key.index
LAST_NOTE_ROW = 1
RUN_ROW = 2
LEAP_ROW = 3
COUNT = 4  # LineSums.count, total, total_squares
TOTAL = 5
TOTAL_SQUARES = 6
LAG_PRODUCTS = 7  # NUM_LAGS rows each: LineSums.lag_products, head, tail
HEAD = LAG_PRODUCTS + NUM_LAGS
TAIL = HEAD + NUM_LAGS
RECENT = TAIL + NUM_LAGS  # max(LAGS) rows: the last onset pitches, the latest first
WINDOW_CODE = RECENT + int(LAGS.max())
STATE_ROWS = WINDOW_CODE + 1

# A window's code drops its oldest token (mod 38^7) and appends the new one (theory.window_codes).
_WINDOW_MODULUS = NUM_CLASSES ** (MOTIF_LENGTH - 1)
_PITCH_BITS = theory.PITCH_BITS.astype(np.int64)


class RuleEngine:
    """The rule states of ``batch_size`` compositions of up to ``length`` tokens.

    Args:
        batch_size: the number of compositions (1 for the single env).
        length: tokens per composition (the last step earns the extreme-note rule).

    Attributes:
        tokens_by_step: ``int64 [length, B]``: the tokens placed so far, step-major (rows
            after the current step hold stale tokens).
        pitch, interval, motif_notes: ``int64 [B]``: the last step's token's MIDI pitch
            (``NOT_A_PITCH`` for hold and rest), its :func:`~melody_env.music.theory.
            interval_class` after the last note, and the distinct pitches of the motif window
            that ends with it (:func:`~melody_env.music.theory.motif_distinct_notes`).
        in_key, is_repeating: ``bool [B]``: :func:`~melody_env.music.theory.in_key` and
            :func:`~melody_env.music.theory.is_excessive_repetition` of that token.
        leap_outcome: ``int8 [B]``: :func:`~melody_env.music.theory.leap_step`'s outcome.

    The facts are views of buffers that each step overwrites: valid until the next step.
    """

    def __init__(self, batch_size: int, length: int) -> None:
        self.batch_size = batch_size
        self.length = length
        self.tokens_by_step = np.zeros((length, batch_size), dtype=np.int64)
        self._window_codes = np.zeros((max(length - MOTIF_LENGTH + 1, 0), batch_size), np.int64)
        self._state = np.zeros((STATE_ROWS, batch_size), dtype=np.int64)
        self._numbers = np.zeros((3, batch_size), dtype=np.int64)
        self._flags = np.zeros((2, batch_size), dtype=bool)
        self.leap_outcome = np.zeros(batch_size, dtype=np.int8)
        self.pitch, self.interval, self.motif_notes = self._numbers
        self.in_key, self.is_repeating = self._flags
        tables = step_tables()
        self._tables = (
            tables.pitch,
            tables.onset_pitch,
            tables.is_note,
            tables.in_key,
            tables.interval,
            tables.last_note_row,
            tables.run_class,
            tables.run_repeats,
            tables.run_next,
            tables.leap_outcome,
            tables.leap_next,
        )
        self._run_start, self._leap_start = tables.run_start, tables.leap_start
        self.reset(np.zeros(batch_size, dtype=np.int64))

    @property
    def state(self) -> np.ndarray:
        """``int64 [STATE_ROWS, B]``: the rule states (rows named by this module's constants)."""
        return self._state

    def reset(self, key_index: np.ndarray) -> None:
        """Empty compositions in the keys ``key_index`` (``int64 [B]`` of
        :attr:`Key.index <melody_env.music.keys.Key.index>`)."""
        state = self._state
        state[:] = 0
        state[KEY] = key_index
        state[LAST_NOTE_ROW] = NO_NOTE * NUM_CLASSES  # no note yet: the primer is not counted
        state[RUN_ROW] = self._run_start
        state[LEAP_ROW] = self._leap_start

    def facts_of(self, index: int) -> tuple[int, bool, int, bool, int, int]:
        """The last step's facts of composition ``index`` as Python scalars: ``(pitch, in_key,
        interval, is_repeating, leap_outcome, motif_notes)``."""
        pitch, interval, motif_notes = self._numbers[:, index].tolist()
        in_key, is_repeating = self._flags[:, index].tolist()
        return pitch, in_key, interval, is_repeating, int(self.leap_outcome[index]), motif_notes

    def advance(self, step: int, tokens: np.ndarray | int) -> np.ndarray:
        """Place ``tokens`` (``int [B]``, or an ``int`` for a batch of one) at ``step``.

        Returns:
            ``float64 [NUM_RULES + 1, B]``, new: each rule of
            :data:`~melody_env.rewards.rules.RULE_NAMES` (a row each), then r_MT
            (``0 + v_1 + ... + v_9`` in rule order). The facts attributes now describe
            ``tokens``.
        """
        self.tokens_by_step[step] = tokens
        return _advance(
            self._state,
            self.tokens_by_step,
            self._window_codes,
            step,
            self.length,
            self._numbers,
            self._flags,
            self.leap_outcome,
            *self._tables,
        )


def replay(sequence: np.ndarray, key_index: np.ndarray, length: int) -> np.ndarray:
    """:meth:`RuleEngine.advance`'s values at the last token of ``sequence [B, t]``
    (``t >= 1``), stepped through from empty compositions: for a context built by hand."""
    sequence = np.asarray(sequence, dtype=np.int64)
    batch, steps = sequence.shape
    if not 1 <= steps <= length:
        raise ValueError(f"a sequence of 1 to {length} tokens is needed, got {steps}")
    engine = RuleEngine(batch, length)
    engine.reset(np.asarray(key_index, dtype=np.int64))
    for step in range(steps):
        values = engine.advance(step, sequence[:, step])
    return values


def _advance(
    state,
    tokens_by_step,
    window_codes_by_step,
    step,
    length,
    numbers,
    flags,
    leap_outcomes,
    pitch_table,
    onset_pitch_table,
    is_note_table,
    in_key_table,
    interval_table,
    last_note_row_table,
    run_class_table,
    run_repeats_table,
    run_next_table,
    leap_outcome_table,
    leap_next_table,
):
    batch = state.shape[1]
    values_out = np.empty((NUM_RULES + 1, batch), np.float64)
    rho = np.empty(NUM_LAGS, np.float64)
    values = np.empty(NUM_RULES, np.float64)
    windows = step + 2 - MOTIF_LENGTH  # motif windows that end at or before this step
    for b in range(batch):  # before any state changes: the tables are read unchecked
        if not 0 <= tokens_by_step[step, b] < NUM_CLASSES:
            raise IndexError("a token outside 0..37 was placed")
    for b in range(batch):
        token = tokens_by_step[step, b]
        key = state[KEY, b]
        # The run, leap and last-note states: rows of the step tables.
        pair = state[LAST_NOTE_ROW, b] + token
        leap = state[LEAP_ROW, b] + pair
        run = state[RUN_ROW, b] + run_class_table[pair]
        pitch = pitch_table[token]
        in_key = in_key_table[key * NUM_CLASSES + token]
        interval = interval_table[key * PAIRS + pair]
        is_repeating = run_repeats_table[run]
        leap_outcome = leap_outcome_table[leap]
        state[LAST_NOTE_ROW, b] = last_note_row_table[pair]
        state[RUN_ROW, b] = run_next_table[run]
        state[LEAP_ROW, b] = leap_next_table[leap]

        # The melodic line's sums (theory.LineSums): a note enters, a hold or a rest does not.
        onset = onset_pitch_table[token]
        count = state[COUNT, b]
        if is_note_table[token]:
            for k in range(NUM_LAGS):
                lag = LAGS[k]
                lagged = state[RECENT + lag - 1, b]  # x_{n+1-k}, paired with the new note
                state[LAG_PRODUCTS + k, b] += onset * lagged
                if count < lag:
                    state[HEAD + k, b] += onset
                state[TAIL + k, b] += onset - lagged  # the note enters, the k-th latest leaves
            for row in range(WINDOW_CODE - 1, RECENT, -1):
                state[row, b] = state[row - 1, b]
            state[RECENT, b] = onset
            count += 1
            state[COUNT, b] = count
            state[TOTAL, b] += onset
            state[TOTAL_SQUARES, b] += onset * onset
        for k in range(NUM_LAGS):
            rho[k] = theory.lag_autocorrelation(
                count,
                state[TOTAL, b],
                state[TOTAL_SQUARES, b],
                state[LAG_PRODUCTS + k, b],
                state[HEAD + k, b],
                state[TAIL + k, b],
                LAGS[k],
            )

        # The motif window that ends here: its code, its distinct pitches, an earlier copy.
        code = state[WINDOW_CODE, b] % _WINDOW_MODULUS * NUM_CLASSES + token
        state[WINDOW_CODE, b] = code
        notes = 0
        repeats = False
        if windows >= 1:
            window_codes_by_step[windows - 1, b] = code
            pitch_set = 0
            for row in range(step + 1 - MOTIF_LENGTH, step + 1):
                pitch_set |= _PITCH_BITS[tokens_by_step[row, b]]
            while pitch_set:  # popcount
                pitch_set &= pitch_set - 1
                notes += 1
            for earlier in range(windows - MOTIF_LENGTH):  # windows entirely before this one
                if window_codes_by_step[earlier, b] == code:
                    repeats = True
                    break

        # The extremes of the whole line, at the last step.
        unique_high = False
        unique_low = False
        if step == length - 1:
            high, low, highs, lows = -1, 1 << 20, 0, 0
            for row in range(step + 1):
                note = pitch_table[tokens_by_step[row, b]]
                if note == NOT_A_PITCH:
                    continue
                if note > high:
                    high, highs = note, 0
                if note == high:
                    highs += 1
                if note < low:
                    low, lows = note, 0
                if note == low:
                    lows += 1
            unique_high = highs == 1
            unique_low = lows == 1

        tonic = key % 12  # Key.index = mode * 12 + tonic
        is_tonic = pitch != NOT_A_PITCH and pitch % 12 == tonic
        values[0] = rules.key_reward(in_key)
        values[1] = rules.tonic_reward(step, length, token, is_tonic)
        values[2] = rules.repeated_notes_reward(is_repeating)
        values[3] = rules.autocorrelation_reward(rho)
        values[4] = rules.motif_reward(notes)
        values[5] = rules.repeated_motif_reward(repeats, notes)
        values[6] = rules.preferred_intervals_reward(interval)
        values[7] = rules.leap_resolution_reward(leap_outcome)
        values[8] = rules.unique_extremes_reward(step == length - 1, unique_high, unique_low)
        total = 0.0
        for index in range(NUM_RULES):  # 0 + v_1 + v_2 + ... in rule order
            values_out[index, b] = values[index]
            total += values[index]
        values_out[NUM_RULES, b] = total
        numbers[0, b] = pitch
        numbers[1, b] = interval
        numbers[2, b] = notes
        flags[0, b] = in_key
        flags[1, b] = is_repeating
        leap_outcomes[b] = leap_outcome
    return values_out


# Compiled here rather than under a ``@numba.njit`` decorator because mutmut, the mutation tester
# (docs/mutation_testing.md), skips decorated functions; the mutation run sets NUMBA_DISABLE_JIT=1.
_advance = numba.njit(cache=True, nogil=True)(_advance)
