"""Music-theory detectors of the RL Tuner, as pure batched numpy functions.

Every function works on a batch of compositions at once (leading axis ``B``). Inputs are token
arrays in the encoding of :mod:`melody_env.music.encoding`; the detectors reason on MIDI pitches
and pitch classes, never on token indices, so they hold in every key.

Conventions: ``history`` is ``int [B, t]`` (the composition before the current step, ``t >= 0``),
``action`` is ``int [B]`` (the token being placed), ``sequence`` is ``history`` with ``action``
appended (``int [B, t + 1]``).

Where a detector needs the whole history, it is written as a small step function over a state
that sums the history up (:class:`RunState`, :class:`LeapState`, :class:`LineSums`, window codes),
and the whole-composition function folds the history through it. The reward rules' engine
(:mod:`melody_env.rewards.rule_engine`) keeps those states from step to step (with
:mod:`melody_env.music.step_tables`, which tabulates the step functions), so a step costs the
same at the first and the last note; ``tests/test_step_tables.py`` checks that it answers as the
functions here do.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np

from melody_env.music.encoding import (
    NO_EVENT,
    NOT_A_PITCH,
    NOTE_OFF,
    NUM_CLASSES,
    NUM_SPECIAL_EVENTS,
    TOKEN_PITCHES,
)

# --- Interval classes of `classify_interval` (non-negative values are plain semitone distances).
NO_PREVIOUS_NOTE = -9
REST_INTERVAL = -1
REST_AFTER_TONIC_OR_FIFTH = -2
HOLD_INTERVAL = -3
HOLD_AFTER_TONIC_OR_FIFTH = -4
IN_KEY_THIRD = -5
IN_KEY_FIFTH = -6

FIFTH = 7
"""A leap is an interval of at least a perfect fifth (7 semitones)."""
STEPS_BETWEEN_LEAPS = 6
"""A leap answered by an opposite leap counts as resolved only after more than this many steps."""

AUTOCORRELATION_LAGS = (1, 2, 3)
"""The lags of the autocorrelation rule (and of the evaluation's autocorrelation rows)."""

# --- Outcomes of `leap_step`.
LEAP_NONE = 0
LEAP_RESOLVED = 1
LEAP_DOUBLED = -1

# --- Thresholds of the repetition test (`repeats_excessively`).
REPEATS_ALLOWED = 4
"""Identical tokens allowed in a row before the next one is excessive."""
REPEATS_ALLOWED_INTERRUPTED = 6
"""The same when holds or rests sit between them."""
RESTS_ALLOWED = 1
"""Rests allowed in a run of holds and rests before another one is excessive."""

MOTIF_LENGTH = 8
"""The original's motif window: the last 8 tokens (half a bar of sixteenths)."""


def select(condition, if_true, if_false):
    """``np.where`` for a batch (``condition`` an array), a conditional expression for one
    composition (Python scalars, without numpy's per-call cost). The built-in reward terms use it
    to be written once for the vector env's batches and the single env's scalars.

    >>> select(np.array([True, False]), 3.0, 0.0), select(False, 3.0, 0.0)
    (array([3., 0.]), 0.0)
    """
    if isinstance(condition, np.ndarray):
        return np.where(condition, if_true, if_false)
    return if_true if condition else if_false


def append_action(history: np.ndarray, action: np.ndarray) -> np.ndarray:
    """``history [B, t]`` + ``action [B]`` -> ``sequence [B, t + 1]``."""
    return np.concatenate([history, np.asarray(action).reshape(-1, 1)], axis=1)


def last_note_pitch(history: np.ndarray) -> np.ndarray:
    """MIDI pitch of the last note onset in each row; ``NOT_A_PITCH`` if there is none.

    >>> last_note_pitch(np.array([[14, 0, 1, 0], [0, 1, 0, 0]]))
    array([60, -1])
    """
    pitches = TOKEN_PITCHES[history]
    if pitches.shape[1] == 0:
        return np.full(pitches.shape[0], NOT_A_PITCH)
    is_note = pitches != NOT_A_PITCH
    last = pitches.shape[1] - 1 - np.argmax(is_note[:, ::-1], axis=1)
    found = pitches[np.arange(pitches.shape[0]), last]
    return np.where(is_note.any(axis=1), found, NOT_A_PITCH)


def in_key(pitch: np.ndarray, scale_mask: np.ndarray) -> np.ndarray:
    """True for notes in the key and for hold/rest (``pitch == NOT_A_PITCH``).

    Args:
        pitch: ``int [B]`` MIDI pitches.
        scale_mask: ``bool [B, 12]`` pitch classes of each row's key.
    """
    pitch_class = np.where(pitch == NOT_A_PITCH, 0, pitch % 12)
    return (pitch == NOT_A_PITCH) | scale_mask[np.arange(len(pitch)), pitch_class]


def is_pitch_class(pitch: np.ndarray, pitch_class: np.ndarray) -> np.ndarray:
    """True where ``pitch`` is a note whose pitch class is ``pitch_class`` (any octave)."""
    return (pitch != NOT_A_PITCH) & (pitch % 12 == pitch_class)


@dataclass
class RunState:
    """The end of each composition as the repetition test sees it.

    Attributes:
        last_note: ``int [B]``: token of the last note onset, -1 before the first.
        note_count: ``int [B]``: occurrences of ``last_note`` in its run, the longest suffix made
            of ``last_note``, holds and rests (it starts after the previous other note).
        note_interrupted: ``bool [B]``: a hold or a rest sits in that run, even before the
            first ``last_note``.
        holds: ``int [B]``: holds since the last onset.
        rests: ``int [B]``: rests since the last onset.
    """

    last_note: np.ndarray
    note_count: np.ndarray
    note_interrupted: np.ndarray
    holds: np.ndarray
    rests: np.ndarray

    @classmethod
    def empty(cls, batch_size: int) -> RunState:
        zeros = np.zeros(batch_size, dtype=np.int64)
        return cls(
            np.full(batch_size, -1, np.int64), zeros, np.zeros(batch_size, bool), zeros, zeros
        )


def run_step(state: RunState, action: np.ndarray) -> RunState:
    """The :class:`RunState` after placing ``action [B]`` (``state`` is not modified)."""
    action = np.asarray(action)
    is_note = action >= NUM_SPECIAL_EVENTS
    same = action == state.last_note
    return RunState(
        last_note=np.where(is_note, action, state.last_note),
        note_count=np.where(is_note, np.where(same, state.note_count + 1, 1), state.note_count),
        # A new note's run starts after the previous note: the holds and rests before it count.
        note_interrupted=np.where(
            is_note,
            np.where(same, state.note_interrupted, (state.holds > 0) | (state.rests > 0)),
            True,
        ),
        holds=np.where(is_note, 0, state.holds + (action == NO_EVENT)),
        rests=np.where(is_note, 0, state.rests + (action == NOTE_OFF)),
    )


def repeats_excessively(state: RunState, action: np.ndarray) -> np.ndarray:
    """Whether ``action [B]`` repeats excessively after a composition in ``state``.

    A note repeats excessively if it is the last note and that note already occurs more than
    ``REPEATS_ALLOWED`` times in its run (``REPEATS_ALLOWED_INTERRUPTED`` if holds or rests sit
    in the run); a hold, if more than ``REPEATS_ALLOWED`` holds (``..._INTERRUPTED`` with rests
    among them) follow the last onset; a rest, if more than ``RESTS_ALLOWED`` rests do.
    """
    action = np.asarray(action)
    note_limit = np.where(state.note_interrupted, REPEATS_ALLOWED_INTERRUPTED, REPEATS_ALLOWED)
    hold_limit = np.where(state.rests > 0, REPEATS_ALLOWED_INTERRUPTED, REPEATS_ALLOWED)
    return (
        ((action == state.last_note) & (state.note_count > note_limit))
        | ((action == NO_EVENT) & (state.holds > hold_limit))
        | ((action == NOTE_OFF) & (state.rests > RESTS_ALLOWED))
    )


def is_excessive_repetition(history: np.ndarray, action: np.ndarray) -> np.ndarray:
    """The original's "repeated notes" test, with hold and rest in their real meaning.

    Scanning back from the last token over the current run (it ends at the first note onset that
    differs from ``action``), count the tokens equal to ``action`` (``n``) and note whether holds
    or rests other than ``action`` sit in the run. Then ``action`` repeats excessively if:

    - it is a rest and the run already has two rests (a third note-off in a row);
    - otherwise, with no hold/rest in the run, ``n > 4``: the sixth identical token in a row, e.g.
      the sixth sixteenth-note attack of one pitch, or a note held past six sixteenths;
    - otherwise (holds or rests in between), ``n > 6``.

    The original tested 0 as "note off" and 1 as "hold", the reverse of its data, so it punished
    every note held for more than two sixteenths; here 0 is hold and 1 is rest. Computed by
    folding ``history`` through :func:`run_step` and asking :func:`repeats_excessively`.

    >>> history = np.array([[14, 14, 14, 14, 14, 14], [14, 0, 0, 0, 0, 0]])
    >>> is_excessive_repetition(history, np.array([14, 0]))
    array([ True,  True])
    >>> is_excessive_repetition(history[:, 2:], np.array([14, 0]))
    array([False, False])
    """
    history = np.asarray(history)
    state = RunState.empty(history.shape[0])
    for column in history.T:
        state = run_step(state, column)
    return repeats_excessively(state, action)


def onset_autocorrelation(sequence: np.ndarray, lags=(1, 2, 3)) -> np.ndarray:
    """Autocorrelation of the melodic line (the pitches of the onsets, in order) at each lag.

    ``rho_k = sum_{i >= k} (x_i - mean)(x_{i-k} - mean) / (n * var)`` with the population
    variance, as in the original. It is 0 where ``k >= n`` or where the line is constant. The
    original used raw token indices, so hold and rest (tokens 0 and 1) counted as very low
    pitches; here only real notes make the line.

    Returns:
        ``float [B, len(lags)]``.

    >>> onset_autocorrelation(np.array([[14, 0, 16, 0, 14, 0, 16, 0]]), lags=(1, 2)).round(3)
    array([[-0.75,  0.5 ]])
    """
    return np.ascontiguousarray(autocorrelation_from_sums(line_sums(sequence, lags)).T)


def onset_line(sequence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The melodic line of each row: ``int [B, t]`` onset pitches, left-aligned and padded with
    zeros to the sequence's length, and ``int [B]`` their number.

    >>> line, count = onset_line(np.array([[14, 0, 16, 1]]))
    >>> line.tolist(), count.tolist()
    ([[60, 62, 0, 0]], [2])
    """
    sequence = np.asarray(sequence)
    is_note = _IS_NOTE[sequence]
    count = is_note.sum(axis=1)
    order = np.argsort(~is_note, axis=1, kind="stable")
    return np.take_along_axis(_ONSET_PITCHES[sequence], order, axis=1), count


_IS_NOTE = TOKEN_PITCHES != NOT_A_PITCH
_ONSET_PITCHES = np.where(_IS_NOTE, TOKEN_PITCHES, 0).astype(np.int64)  # 0 for hold and rest


class LineSums(NamedTuple):
    """Integer sums of the melodic lines of compositions, from which
    :func:`autocorrelation_from_sums` gets their autocorrelation at ``lags`` exactly (one
    rounding, in the final division). :func:`line_sums` computes them from whole sequences;
    the reward rules' engine keeps the same sums token by token.

    Each sum is an ``int64 [B]`` array and each per-lag field one ``int64 [K, B]`` array (a row
    per lag).

    Attributes:
        lags: the lags ``k`` of ``lag_products``, ``head`` and ``tail``.
        count: ``n``, the number of onsets.
        total: ``sum x_i``.
        total_squares: ``sum x_i^2``.
        lag_products: per lag: ``sum_{i > k} x_i x_{i-k}``.
        head: per lag: the sum of the first ``k`` pitches (all of them if fewer).
        tail: per lag: the sum of the last ``k`` pitches (all of them if fewer).
        recent: ``max(lags)`` rows (items): the last pitches, the latest first (0 where fewer).
    """

    lags: tuple[int, ...]
    count: np.ndarray
    total: np.ndarray
    total_squares: np.ndarray
    lag_products: np.ndarray
    head: np.ndarray
    tail: np.ndarray
    recent: np.ndarray


def _checked_lags(lags) -> tuple[int, ...]:
    lags = tuple(int(lag) for lag in lags)
    if not lags or min(lags) < 1:
        raise ValueError(f"autocorrelation lags must be positive integers, got {lags}")
    return lags


@functools.cache
def _lag_column(lags: tuple[int, ...]) -> np.ndarray:
    """``int64 [K, 1]``: the lags, to broadcast against ``[K, B]`` rows."""
    return np.array(lags, dtype=np.int64)[:, None]


def line_sums(sequence: np.ndarray, lags=(1, 2, 3)) -> LineSums:
    """:class:`LineSums` of whole sequences ``int [B, t]``.

    >>> sums = line_sums(np.array([[14, 0, 16, 0, 14]]), lags=(1, 2))  # C4 D4 C4
    >>> sums.count.tolist(), sums.total.tolist(), sums.lag_products.tolist()
    ([3], [182], [[7440], [3600]])
    """
    line, count = onset_line(sequence)
    batch, width = line.shape
    lags = _checked_lags(lags)
    products = [
        (line[:, lag:] * line[:, :-lag]).sum(axis=1) if lag < width else np.zeros(batch, np.int64)
        for lag in lags
    ]
    rows = np.arange(batch)[:, None]
    back = count[:, None] - 1 - np.arange(max(lags))  # latest first
    padded = np.concatenate([line, np.zeros((batch, 1), np.int64)], axis=1)
    recent = padded[rows, np.where(back >= 0, back, width)]  # column ``width`` is a zero
    tail = np.cumsum(recent, axis=1)
    return LineSums(
        lags,
        count.astype(np.int64),
        line.sum(axis=1),
        (line * line).sum(axis=1),
        np.stack(products),
        np.stack([line[:, :lag].sum(axis=1) for lag in lags]),
        np.stack([tail[:, lag - 1] for lag in lags]),
        np.ascontiguousarray(recent.T),
    )


@numba.vectorize(
    ["float64(int64, int64, int64, int64, int64, int64, int64)"], cache=True, nopython=True
)
def lag_autocorrelation(count, total, total_squares, lag_products, head, tail, lag):
    """:func:`onset_autocorrelation` at lag ``lag`` of a line of ``count`` notes, from its
    :class:`LineSums` at that lag (a numpy ufunc, also called per composition by the reward
    engine's compiled step).

    With ``S = sum x_i``, ``A_k = sum_{i <= n-k} x_i`` (all but the last ``k``) and
    ``B_k = sum_{i > k} x_i`` (all but the first ``k``), the formula's sums are
    ``n^2 sum (x_i - mean)(x_{i-k} - mean) = n^2 P_k - n S (A_k + B_k) + (n - k) S^2`` and
    ``n^2 sum (x_i - mean)^2 = n (n sum x_i^2 - S^2)``: integers, so ``rho_k`` is their ratio,
    converted to floating point and divided once. 0 where the line has ``k`` notes or fewer, or
    no variance. Exact in ``int64`` for lines of up to about 80,000 notes.
    """
    square = total * total
    denominator = count * (count * total_squares - square)
    if denominator <= 0 or count <= lag:
        return 0.0
    # The numerator above expanded, with A_k + B_k = 2 S - head_k - tail_k.
    numerator = (
        count * count * lag_products + count * total * (head + tail) - (count + lag) * square
    )
    return numerator / denominator


def autocorrelation_from_sums(sums: LineSums) -> np.ndarray:
    """:func:`lag_autocorrelation` at each of ``sums.lags``: ``float64 [K, B]``, a row per lag.

    >>> autocorrelation_from_sums(line_sums(np.array([[14, 0, 16, 0, 14, 0, 16]])))  # C D C D
    array([[-0.75],
           [ 0.5 ],
           [-0.25]])
    """
    return lag_autocorrelation(
        sums.count,
        sums.total,
        sums.total_squares,
        sums.lag_products,
        sums.head,
        sums.tail,
        _lag_column(sums.lags),
    )


PITCH_BITS = np.where(
    np.arange(NUM_CLASSES) >= NUM_SPECIAL_EVENTS,
    np.left_shift(1, np.maximum(np.arange(NUM_CLASSES) - NUM_SPECIAL_EVENTS, 0)),
    0,
).astype(np.uint64)
"""``uint64 [token]``: bit ``token - 2`` for a note, 0 for hold and rest, so that a set of
pitches is the OR of its tokens' bits and its size their popcount."""


def _popcount(bits: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(bits).astype(np.int64)
    as_bytes = np.unpackbits(bits.astype(np.uint64).view(np.uint8).reshape(len(bits), 8), axis=1)
    return as_bytes.sum(axis=1).astype(np.int64)


def motif_distinct_notes(sequence: np.ndarray, motif_length: int = MOTIF_LENGTH) -> np.ndarray:
    """Number of distinct pitches among the onsets of the last ``motif_length`` tokens.

    0 while the sequence is shorter than ``motif_length``. The original calls the window a
    *motif* when it holds at least three distinct pitches.

    >>> motif_distinct_notes(np.array([[14, 0, 16, 0, 18, 0, 14, 0], [14, 0, 0, 0, 0, 0, 0, 0]]))
    array([3, 1])
    """
    sequence = np.asarray(sequence)
    if sequence.shape[1] < motif_length:
        return np.zeros(sequence.shape[0], dtype=np.int64)
    pitch_set = np.bitwise_or.reduce(PITCH_BITS[sequence[:, -motif_length:]], axis=1)
    return _popcount(pitch_set)


def window_codes(sequence: np.ndarray, motif_length: int = MOTIF_LENGTH) -> np.ndarray:
    """One integer per window of ``motif_length`` consecutive tokens, equal iff the windows are.

    Returns ``int64 [B, t + 2 - motif_length]``: column ``j`` codes ``sequence[:, j : j + m]``
    (the tokens as digits in base 38; ``motif_length <= 11`` fits in 64 bits).
    """
    sequence = np.asarray(sequence, dtype=np.int64)
    if sequence.shape[1] < motif_length:
        return np.zeros((sequence.shape[0], 0), dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(sequence, motif_length, axis=1)
    return windows @ (NUM_CLASSES ** np.arange(motif_length - 1, -1, -1))


def repeats_earlier_window(sequence: np.ndarray, motif_length: int = MOTIF_LENGTH) -> np.ndarray:
    """True where the last ``motif_length`` tokens also occur, exactly, entirely before them.

    >>> motif = [14, 0, 16, 0, 18, 0, 14, 0]
    >>> repeats_earlier_window(np.array([motif + [2] + motif]))
    array([ True])
    """
    return last_window_repeats(window_codes(sequence, motif_length), motif_length)


def last_window_repeats(codes: np.ndarray, motif_length: int = MOTIF_LENGTH) -> np.ndarray:
    """:func:`repeats_earlier_window` from the sequence's :func:`window_codes` ``int [B, w]``."""
    codes = np.asarray(codes)
    if codes.shape[1] <= motif_length:  # the sequence is shorter than two windows
        return np.zeros(codes.shape[0], dtype=bool)
    return (codes[:, :-motif_length] == codes[:, -1:]).any(axis=1)


def classify_interval(
    history: np.ndarray,
    action: np.ndarray,
    tonic: np.ndarray,
    mediant: np.ndarray,
    dominant: np.ndarray,
) -> np.ndarray:
    """Interval class of ``action`` after the last note of ``history``.

    Returns, per row: ``NO_PREVIOUS_NOTE`` if no note precedes; for a hold or rest,
    ``HOLD_INTERVAL``/``REST_INTERVAL``, or their ``*_AFTER_TONIC_OR_FIFTH`` variants when the
    previous note is the tonic or the dominant; for a note, ``IN_KEY_FIFTH`` (a perfect fifth
    between tonic and dominant), ``IN_KEY_THIRD`` (a third between two notes of the tonic triad),
    else the distance in semitones (direction ignored, 0 for a repeated pitch).

    Fixes: the original tested only C/E/G (C major) by token index, called any fifth from C or G
    "in key" (C down to F too) and any major third from C or E (E up to G#); here both notes must
    belong to the tonic triad of the row's key, so it works in every key.

    Args:
        tonic, mediant, dominant: ``int [B]`` pitch classes of each row's key.
    """
    return interval_class(last_note_pitch(history), action, tonic, mediant, dominant)


def interval_class(
    previous: np.ndarray,
    action: np.ndarray,
    tonic: np.ndarray,
    mediant: np.ndarray,
    dominant: np.ndarray,
) -> np.ndarray:
    """:func:`classify_interval` given the previous note's pitch (``NOT_A_PITCH`` if none).

    >>> int(interval_class(np.array([60]), np.array([21]), 0, 4, 7)[0]) == IN_KEY_FIFTH  # C4 G4
    True
    """
    action = np.asarray(action)
    previous = np.asarray(previous)
    pitch = TOKEN_PITCHES[action]
    has_previous = previous != NOT_A_PITCH
    # Degrees relative to the tonic: 0 tonic, `third` mediant, 7 dominant.
    previous_degree = (previous - tonic) % 12
    degree = (pitch - tonic) % 12
    third = (mediant - tonic) % 12
    previous_is_anchor = has_previous & ((previous_degree == 0) | (previous_degree == 7))
    previous_in_triad = (previous_degree == 0) | (previous_degree == third) | (previous_degree == 7)
    pitch_in_triad = (degree == 0) | (degree == third) | (degree == 7)
    distance = np.abs(pitch - previous)
    tonic_dominant_pair = (previous_degree + degree == 7) & (previous_degree * degree == 0)
    code = np.where(
        (distance == FIFTH) & tonic_dominant_pair,
        IN_KEY_FIFTH,
        np.where(
            ((distance == 3) | (distance == 4)) & previous_in_triad & pitch_in_triad,
            IN_KEY_THIRD,
            distance,
        ),
    )
    code = np.where(
        action == NO_EVENT,
        np.where(previous_is_anchor, HOLD_AFTER_TONIC_OR_FIFTH, HOLD_INTERVAL),
        np.where(
            action == NOTE_OFF,
            np.where(previous_is_anchor, REST_AFTER_TONIC_OR_FIFTH, REST_INTERVAL),
            code,
        ),
    )
    return np.where(has_previous, code, NO_PREVIOUS_NOTE)


@dataclass
class LeapState:
    """Per-composition memory of the last unresolved leap (the original kept it on the tuner).

    Attributes:
        direction: ``int8 [B]``: +1 after an unresolved upward leap, -1 downward, 0 none.
        leapt_from: ``int [B]``: pitch the pending leap started from.
        steps_since_leap: ``int [B]``: steps since the last leap.
    """

    direction: np.ndarray
    leapt_from: np.ndarray
    steps_since_leap: np.ndarray

    @classmethod
    def empty(cls, batch_size: int) -> LeapState:
        return cls(
            np.zeros(batch_size, dtype=np.int8),
            np.full(batch_size, NOT_A_PITCH, dtype=np.int64),
            np.zeros(batch_size, dtype=np.int64),
        )

    def reset(self, mask: np.ndarray | slice = slice(None)) -> None:
        self.direction[mask] = 0
        self.leapt_from[mask] = NOT_A_PITCH
        self.steps_since_leap[mask] = 0


def leap_step(
    state: LeapState, previous_pitch: np.ndarray, action: np.ndarray
) -> tuple[np.ndarray, LeapState]:
    """Advance the leap memory by one token; return the outcome and the new state.

    A leap is a move of at least a fifth from the previous note. After a leap the melody should
    turn back: a later note at or beyond the leap's starting pitch in the opposite direction
    resolves it (``LEAP_RESOLVED``); a second leap in the same direction doubles it
    (``LEAP_DOUBLED``, the pending leap stays); an opposite leap clears it and counts as resolved
    only if more than ``STEPS_BETWEEN_LEAPS`` steps passed. Holds and rests only count steps.

    Args:
        state: the memory before this token (not modified).
        previous_pitch: ``int [B]``: last note before this token, ``NOT_A_PITCH`` if none.
        action: ``int [B]``: the token placed.

    >>> state = LeapState.empty(1)
    >>> outcome, state = leap_step(state, np.array([60]), np.array([23]))  # C4 up to G4
    >>> outcome, state = leap_step(state, np.array([67]), np.array([16]))  # step down to D4
    >>> int(outcome[0]) == LEAP_NONE, int(state.direction[0])
    (True, 1)
    >>> outcome, state = leap_step(state, np.array([62]), np.array([14]))  # back to C4
    >>> int(outcome[0]) == LEAP_RESOLVED, int(state.direction[0])
    (True, 0)
    """
    pitch = TOKEN_PITCHES[np.asarray(action)]
    is_note = pitch != NOT_A_PITCH
    has_previous = previous_pitch != NOT_A_PITCH
    jump = np.where(is_note & has_previous, pitch - previous_pitch, 0)
    is_leap = np.abs(jump) >= FIFTH
    leap_direction = np.sign(jump).astype(np.int8)
    pending = state.direction != 0

    same = is_leap & pending & (leap_direction == state.direction)
    opposite = is_leap & pending & (leap_direction == -state.direction)
    first = is_leap & ~pending
    returned = (
        is_note
        & ~is_leap
        & (
            ((state.direction == 1) & (pitch <= state.leapt_from))
            | ((state.direction == -1) & (pitch >= state.leapt_from))
        )
    )
    resolved = returned | (opposite & (state.steps_since_leap > STEPS_BETWEEN_LEAPS))
    outcome = np.where(resolved, LEAP_RESOLVED, np.where(same, LEAP_DOUBLED, LEAP_NONE))

    clear = opposite | returned
    direction = np.where(first, leap_direction, np.where(clear, 0, state.direction))
    leapt_from = np.where(first, previous_pitch, np.where(clear, NOT_A_PITCH, state.leapt_from))
    steps = np.where(is_leap, 0, state.steps_since_leap + 1)
    new_state = LeapState(direction.astype(np.int8), leapt_from.astype(np.int64), steps)
    return outcome.astype(np.int8), new_state


def unique_extremes(sequence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether the highest and the lowest pitch of each composition are played exactly once.

    Fix: the original took the maximum over all tokens and the minimum over notes only; both are
    over note onsets here. A composition with no note has neither.

    >>> unique_extremes(np.array([[14, 0, 18, 14, 0], [14, 0, 0, 14, 0]]))
    (array([ True, False]), array([False, False]))
    """
    pitches = TOKEN_PITCHES[np.asarray(sequence)]
    is_note = pitches != NOT_A_PITCH
    high = np.where(is_note, pitches, -1).max(axis=1, initial=-1)
    low = np.where(is_note, pitches, 1000).min(axis=1, initial=1000)
    any_note = is_note.any(axis=1)
    unique_high = any_note & ((pitches == high[:, None]).sum(axis=1) == 1)
    unique_low = any_note & ((pitches == low[:, None]).sum(axis=1) == 1)
    return unique_high, unique_low
