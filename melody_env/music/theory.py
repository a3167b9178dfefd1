"""Music-theory detectors of the RL Tuner, as pure batched numpy functions.

Every function works on a batch of compositions at once (leading axis ``B``), so the single env
(``B = 1``), the vector env and the evaluation metrics share one implementation. Inputs are token
arrays in the encoding of :mod:`melody_env.music.encoding`; the detectors reason on MIDI pitches
and pitch classes, never on token indices, so they hold in every key.

Conventions: ``history`` is ``int [B, t]`` (the composition before the current step, ``t >= 0``),
``action`` is ``int [B]`` (the token being placed), ``sequence`` is ``history`` with ``action``
appended (``int [B, t + 1]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from melody_env.music.encoding import NO_EVENT, NOT_A_PITCH, NOTE_OFF, TOKEN_PITCHES

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

# --- Outcomes of `leap_step`.
LEAP_NONE = 0
LEAP_RESOLVED = 1
LEAP_DOUBLED = -1


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
    every note held for more than two sixteenths; here 0 is hold and 1 is rest.

    >>> history = np.array([[14, 14, 14, 14, 14, 14], [14, 0, 0, 0, 0, 0]])
    >>> is_excessive_repetition(history, np.array([14, 0]))
    array([ True,  True])
    >>> is_excessive_repetition(history[:, 2:], np.array([14, 0]))
    array([False, False])
    """
    history = np.asarray(history)
    action = np.asarray(action)
    batch, length = history.shape
    if length == 0:
        return np.zeros(batch, dtype=bool)
    reversed_history = history[:, ::-1]
    matches = reversed_history == action[:, None]
    special = (reversed_history == NO_EVENT) | (reversed_history == NOTE_OFF)
    stops = ~matches & ~special
    # Index (in reversed order) of the first token that ends the run, or `length` if none.
    run_end = np.where(stops.any(axis=1), np.argmax(stops, axis=1), length)
    in_run = np.arange(length)[None, :] < run_end[:, None]
    repeats = (matches & in_run).sum(axis=1)
    interrupted = (special & ~matches & in_run).any(axis=1)
    threshold = np.where(interrupted, 6, 4)
    return np.where(action == NOTE_OFF, repeats > 1, repeats > threshold)


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
    pitches = TOKEN_PITCHES[np.asarray(sequence)].astype(np.float64)
    is_note = pitches != NOT_A_PITCH
    count = is_note.sum(axis=1)
    # Left-justify each row's onsets so the line is contiguous: x[b, :count[b]].
    order = np.argsort(~is_note, axis=1, kind="stable")
    line = np.take_along_axis(pitches, order, axis=1)
    valid = np.arange(line.shape[1])[None, :] < count[:, None]
    safe_count = np.maximum(count, 1)
    mean = np.where(valid, line, 0.0).sum(axis=1) / safe_count
    centred = np.where(valid, line - mean[:, None], 0.0)
    variance = (centred**2).sum(axis=1) / safe_count
    result = np.zeros((line.shape[0], len(lags)))
    for column, lag in enumerate(lags):
        if lag >= line.shape[1]:
            continue
        products = (centred[:, lag:] * centred[:, :-lag]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = products / (safe_count * variance)
        result[:, column] = np.where((variance > 0) & (count > lag), rho, 0.0)
    return result


def motif_distinct_notes(sequence: np.ndarray, motif_length: int = 8) -> np.ndarray:
    """Number of distinct pitches among the onsets of the last ``motif_length`` tokens.

    0 while the sequence is shorter than ``motif_length``. The original calls the window a
    *motif* when it holds at least three distinct pitches.

    >>> motif_distinct_notes(np.array([[14, 0, 16, 0, 18, 0, 14, 0], [14, 0, 0, 0, 0, 0, 0, 0]]))
    array([3, 1])
    """
    sequence = np.asarray(sequence)
    if sequence.shape[1] < motif_length:
        return np.zeros(sequence.shape[0], dtype=np.int64)
    window = np.sort(TOKEN_PITCHES[sequence[:, -motif_length:]], axis=1)
    new_value = np.ones_like(window, dtype=bool)
    new_value[:, 1:] = window[:, 1:] != window[:, :-1]
    return (new_value & (window != NOT_A_PITCH)).sum(axis=1)


def repeats_earlier_window(sequence: np.ndarray, motif_length: int = 8) -> np.ndarray:
    """True where the last ``motif_length`` tokens also occur, exactly, entirely before them.

    >>> motif = [14, 0, 16, 0, 18, 0, 14, 0]
    >>> repeats_earlier_window(np.array([motif + [2] + motif]))
    array([ True])
    """
    sequence = np.asarray(sequence)
    batch, length = sequence.shape
    if length < 2 * motif_length:
        return np.zeros(batch, dtype=bool)
    window = sequence[:, -motif_length:]
    earlier = np.lib.stride_tricks.sliding_window_view(
        sequence[:, : length - motif_length], motif_length, axis=1
    )  # [B, positions, motif_length]
    return (earlier == window[:, None, :]).all(axis=2).any(axis=1)


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
    action = np.asarray(action)
    previous = last_note_pitch(history)
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
    high = np.where(is_note, pitches, -1).max(axis=1)
    low = np.where(is_note, pitches, 1000).min(axis=1)
    any_note = is_note.any(axis=1)
    unique_high = any_note & ((pitches == high[:, None]).sum(axis=1) == 1)
    unique_low = any_note & ((pitches == low[:, None]).sum(axis=1) == 1)
    return unique_high, unique_low
