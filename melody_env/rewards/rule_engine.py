"""The reward rules' engine: one compiled step over a batch of compositions.

What the nine rules of :mod:`melody_env.rewards.rules` need to know about a composition's
history is kept up to date token by token, in one ``int64 [STATE_ROWS, B]`` array: the rows of
the run, leap and last-note states in the lookup tables of
:mod:`melody_env.music.step_tables`, the melodic line's :class:`~melody_env.music.theory.
LineSums` and the code of the last motif window (:func:`~melody_env.music.theory.window_codes`).
A step (:func:`advance`) reads the tables, updates the state, derives the motif, autocorrelation
and extreme-note facts, and calls each rule, all in one ``numba`` loop over the batch: a numpy
version made about a hundred array calls per step, whose fixed cost outweighed the arithmetic.

The vector env, the evaluation (``B`` compositions) and the single env (``B = 1``) all step
through it, so they share one implementation of every rule and agree bit for bit. The
whole-composition functions of :mod:`melody_env.music.theory` compute the same facts from a
sequence; ``tests/test_step_tables.py`` checks that both agree.
"""

from __future__ import annotations

from typing import NamedTuple

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

_WINDOW_MODULUS = NUM_CLASSES ** (MOTIF_LENGTH - 1)  # see theory.next_window_code
_PITCH_BITS = theory._PITCH_BITS.astype(np.int64)


class StepFacts(NamedTuple):
    """What one step found, per composition (new ``[B]`` arrays, the rules' values
    ``[NUM_RULES, B]``).

    Attributes:
        pitch: the token's MIDI pitch (``NOT_A_PITCH`` for hold and rest).
        in_key: :func:`~melody_env.music.theory.in_key`.
        interval: :func:`~melody_env.music.theory.interval_class` after the last note.
        is_repeating: :func:`~melody_env.music.theory.is_excessive_repetition`.
        leap_outcome: :func:`~melody_env.music.theory.leap_step`'s outcome.
        motif_notes: :func:`~melody_env.music.theory.motif_distinct_notes` of the last window.
        rule_values: each rule of :data:`~melody_env.rewards.rules.RULE_NAMES`, a row each.
        music_theory: r_MT, ``0 + v_1 + ... + v_9`` in rule order.
    """

    pitch: np.ndarray
    in_key: np.ndarray
    interval: np.ndarray
    is_repeating: np.ndarray
    leap_outcome: np.ndarray
    motif_notes: np.ndarray
    rule_values: np.ndarray
    music_theory: np.ndarray


def new_state(key_index: np.ndarray) -> np.ndarray:
    """The state of empty compositions in the keys ``key_index`` (``int64 [B]``)."""
    tables = step_tables()
    state = np.zeros((STATE_ROWS, len(key_index)), dtype=np.int64)
    state[KEY] = key_index
    state[LAST_NOTE_ROW] = NO_NOTE * NUM_CLASSES  # no note yet: the primer is not counted
    state[RUN_ROW] = tables.run_start
    state[LEAP_ROW] = tables.leap_start
    return state


def advance(
    state: np.ndarray,
    tokens_by_step: np.ndarray,
    window_codes_by_step: np.ndarray,
    step: int,
    length: int,
) -> StepFacts:
    """Take in the tokens of ``step``; return what the rules make of them.

    Args:
        state: ``int64 [STATE_ROWS, B]`` from :func:`new_state`, updated in place.
        tokens_by_step: ``int64 [length, B]``: the tokens so far, row ``step`` already holding
            this step's (rows ``0..step`` are read).
        window_codes_by_step: ``int64 [length - MOTIF_LENGTH + 1, B]``: the motif windows'
            codes so far; this step's is written.
        step: the 0-based step.
        length: the composition length (its last step earns the extreme-note rule).
    """
    tables = step_tables()
    return StepFacts(
        *_advance(
            state,
            tokens_by_step,
            window_codes_by_step,
            step,
            length,
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
    )


def replay(sequence: np.ndarray, key_index: np.ndarray, length: int) -> StepFacts:
    """:func:`advance`'s result at the last token of ``sequence [B, t]`` (``t >= 1``), stepped
    through from an empty composition: for a context built from a history by hand."""
    sequence = np.asarray(sequence, dtype=np.int64)
    batch, steps = sequence.shape
    state = new_state(np.asarray(key_index, dtype=np.int64))
    tokens = np.zeros((max(length, steps), batch), dtype=np.int64)
    tokens[:steps] = sequence.T
    windows = np.zeros((max(length, steps) - MOTIF_LENGTH + 1, batch), dtype=np.int64)
    for step in range(steps):
        facts = advance(state, tokens, windows, step, length)
    return facts


@numba.njit(cache=True, nogil=True)
def _advance(
    state,
    tokens_by_step,
    window_codes_by_step,
    step,
    length,
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
    pitches = np.empty(batch, np.int64)
    in_keys = np.empty(batch, np.bool_)
    intervals = np.empty(batch, np.int64)
    repeating = np.empty(batch, np.bool_)
    leap_outcomes = np.empty(batch, np.int8)
    motif_notes = np.empty(batch, np.int64)
    rule_values = np.empty((NUM_RULES, batch), np.float64)
    music_theory = np.empty(batch, np.float64)
    rho = np.empty(NUM_LAGS, np.float64)
    values = np.empty(NUM_RULES, np.float64)
    windows = step + 2 - MOTIF_LENGTH  # motif windows that end at or before this step
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
            rule_values[index, b] = values[index]
            total += values[index]
        pitches[b] = pitch
        in_keys[b] = in_key
        intervals[b] = interval
        repeating[b] = is_repeating
        leap_outcomes[b] = leap_outcome
        motif_notes[b] = notes
        music_theory[b] = total
    return (
        pitches,
        in_keys,
        intervals,
        repeating,
        leap_outcomes,
        motif_notes,
        rule_values,
        music_theory,
    )
