"""The step functions of :mod:`melody_env.music.theory`, tabulated over their finite domains.

An env step asks each detector about one new token. The answer depends on the key (24), the
token (38), the last note before it (37 cases) and a small state summing up the history (the
leap memory of :func:`~melody_env.music.theory.leap_step`, the run of
:func:`~melody_env.music.theory.run_step`), so each detector is a lookup in a table filled once
by calling the theory function on every case. The theory functions stay the one definition of
each rule; the tables only remember their answers (``tests/test_step_tables.py`` checks them).

Indices: ``pair = last_note * 38 + token`` where ``last_note`` is the token of the last note
onset (0 when there is none yet: its pitch is ``NOT_A_PITCH``), and ``key = Key.index``.

>>> tables = step_tables()
>>> pair = 14 * NUM_CLASSES + 21  # C4 then G4
>>> int(tables.interval[0 * PAIRS + pair]) == theory.IN_KEY_FIFTH  # in C major
True
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from melody_env.music import theory
from melody_env.music.encoding import (
    NO_EVENT,
    NOTE_OFF,
    NUM_CLASSES,
    NUM_SPECIAL_EVENTS,
    TOKEN_PITCHES,
)
from melody_env.music.keys import KEY_NAMES, Key

NUM_KEYS = len(KEY_NAMES)
PAIRS = NUM_CLASSES * NUM_CLASSES
"""Number of ``(last_note, token)`` pairs."""
NO_NOTE = NO_EVENT
"""The ``last_note`` of a composition without a note yet (token 0 has no pitch)."""

# The run state (repetition): counts saturate where the thresholds stop telling them apart.
MAX_RUN_COUNT = theory.REPEATS_ALLOWED_INTERRUPTED + 1
MAX_RUN_RESTS = theory.RESTS_ALLOWED + 1
RUN_STATES = (MAX_RUN_COUNT + 1) * 2 * (MAX_RUN_COUNT + 1) * (MAX_RUN_RESTS + 1)
RUN_CLASSES = 4
"""A token after a run is a hold (0), a rest (1), the last note again (2) or another note (3)."""
# The leap state: steps since the last leap saturate just past the threshold.
MAX_LEAP_STEPS = theory.STEPS_BETWEEN_LEAPS + 1


@dataclass(frozen=True)
class StepTables:
    """Flat lookup tables (see the module docstring for the indices).

    States are kept as the offsets of their rows, so each lookup costs one addition:
    ``pair = last_note_row + token``, ``run_row + run_class[pair]``, ``leap_row + pair``.

    Attributes:
        pitch: ``int64 [token]``: the MIDI pitch, ``NOT_A_PITCH`` for hold and rest.
        onset_pitch: ``int64 [token]``: the pitch of a note, 0 for hold and rest (what a token
            adds to :class:`~melody_env.music.theory.LineSums`).
        is_note: ``bool [token]``: the token is a note onset.
        in_key: ``bool [key * 38 + token]``: :func:`~melody_env.music.theory.in_key`.
        interval: ``int64 [key * PAIRS + pair]``: :func:`~melody_env.music.theory.interval_class`.
        last_note_row: ``int64 [pair]``: ``last_note * 38`` after the token.
        run_class: ``int64 [pair]``: the token's class for the run state (:data:`RUN_CLASSES`).
        run_repeats: ``bool [run_row + class]``:
            :func:`~melody_env.music.theory.repeats_excessively`.
        run_next: ``int64 [run_row + class]``: the row of the run state after the token.
        leap_outcome: ``int8 [leap_row + pair]``: :func:`~melody_env.music.theory.leap_step`'s
            outcome.
        leap_next: ``int32 [leap_row + pair]``: the row of the leap state after the token.
        run_start, leap_start: the rows of an empty composition's states; its ``last_note_row``
            is ``NO_NOTE * 38``.
    """

    pitch: np.ndarray
    onset_pitch: np.ndarray
    is_note: np.ndarray
    in_key: np.ndarray
    interval: np.ndarray
    last_note_row: np.ndarray
    run_class: np.ndarray
    run_repeats: np.ndarray
    run_next: np.ndarray
    leap_outcome: np.ndarray
    leap_next: np.ndarray
    run_start: int
    leap_start: int


def _keys() -> list[Key]:
    return [Key.from_name(name) for name in KEY_NAMES]


def _key_tables() -> tuple[np.ndarray, np.ndarray]:
    keys = _keys()
    assert [key.index for key in keys] == list(range(NUM_KEYS))
    tokens = np.arange(NUM_CLASSES)
    in_key = np.stack(
        [
            theory.in_key(TOKEN_PITCHES[tokens], np.tile(k.scale_mask, (NUM_CLASSES, 1)))
            for k in keys
        ]
    )
    last, token = np.divmod(np.arange(PAIRS), NUM_CLASSES)
    interval = np.stack(
        [
            theory.interval_class(TOKEN_PITCHES[last], token, k.tonic, k.mediant, k.dominant)
            for k in keys
        ]
    )
    return in_key.reshape(-1), interval.reshape(-1).astype(np.int64)


def _run_code(count, interrupted, holds, rests):
    return ((count * 2 + interrupted) * (MAX_RUN_COUNT + 1) + holds) * (MAX_RUN_RESTS + 1) + rests


def _run_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    code, token_class = np.divmod(np.arange(RUN_STATES * RUN_CLASSES), RUN_CLASSES)
    code, rests = np.divmod(code, MAX_RUN_RESTS + 1)
    code, holds = np.divmod(code, MAX_RUN_COUNT + 1)
    count, interrupted = np.divmod(code, 2)
    representative_note = 2  # the table only asks whether the token is the last note
    state = theory.RunState(
        last_note=np.full(len(count), representative_note),
        note_count=count,
        note_interrupted=interrupted.astype(bool),
        holds=holds,
        rests=rests,
    )
    tokens = np.array([NO_EVENT, NOTE_OFF, representative_note, representative_note + 1])
    action = tokens[token_class]
    repeats = theory.repeats_excessively(state, action)
    after = theory.run_step(state, action)
    next_code = _run_code(
        np.minimum(after.note_count, MAX_RUN_COUNT),
        after.note_interrupted.astype(np.int64),
        np.minimum(after.holds, MAX_RUN_COUNT),
        np.minimum(after.rests, MAX_RUN_RESTS),
    )
    last, token = np.divmod(np.arange(PAIRS), NUM_CLASSES)
    run_class = np.select(
        [token == NO_EVENT, token == NOTE_OFF, token == last], [0, 1, 2], default=3
    )
    return run_class, repeats, next_code


def _leap_states() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reachable leap states as ``(direction, leapt_from token, steps)``: no pending leap
    (``leapt_from`` is ``NO_NOTE``) or a pending one up or down from a note."""
    steps = np.arange(MAX_LEAP_STEPS + 1)
    notes = np.arange(NUM_SPECIAL_EVENTS, NUM_CLASSES)
    direction, leapt_from, since = (
        np.concatenate(parts)
        for parts in zip(
            (np.zeros_like(steps), np.full_like(steps, NO_NOTE), steps),
            *(
                (
                    np.full(notes.size * steps.size, sign),
                    np.repeat(notes, steps.size),
                    np.tile(steps, notes.size),
                )
                for sign in (1, -1)
            ),
            strict=True,
        )
    )
    return direction, leapt_from, since


def _pitch_token(pitch: np.ndarray) -> np.ndarray:
    """Token of a pitch, ``NO_NOTE`` for ``NOT_A_PITCH``."""
    first_note = NUM_SPECIAL_EVENTS
    return np.where(
        pitch == theory.NOT_A_PITCH, NO_NOTE, pitch - TOKEN_PITCHES[first_note] + first_note
    )


def _leap_tables() -> tuple[np.ndarray, np.ndarray, int]:
    direction, leapt_from, since = _leap_states()
    code_of = np.full((3, NUM_CLASSES, MAX_LEAP_STEPS + 1), -1, dtype=np.int32)
    code_of[direction + 1, leapt_from, since] = np.arange(len(direction))
    code, pair = np.divmod(np.arange(len(direction) * PAIRS), PAIRS)
    last, token = np.divmod(pair, NUM_CLASSES)
    state = theory.LeapState(
        direction[code].astype(np.int8), TOKEN_PITCHES[leapt_from[code]], since[code]
    )
    outcome, after = theory.leap_step(state, TOKEN_PITCHES[last], token)
    next_code = code_of[
        after.direction + 1,
        _pitch_token(after.leapt_from),
        np.minimum(after.steps_since_leap, MAX_LEAP_STEPS),
    ]
    assert (next_code >= 0).all(), "leap_step left the reachable states"
    return outcome, next_code, int(code_of[1, NO_NOTE, 0])


@functools.cache
def step_tables() -> StepTables:
    """The tables, built on first use (a fraction of a second) and shared."""
    in_key, interval = _key_tables()
    run_class, run_repeats, run_next = _run_tables()
    leap_outcome, leap_next, leap_start = _leap_tables()
    last, token = np.divmod(np.arange(PAIRS), NUM_CLASSES)
    last_note = np.where(token >= NUM_SPECIAL_EVENTS, token, last)
    is_note = np.arange(NUM_CLASSES) >= NUM_SPECIAL_EVENTS
    tables = StepTables(
        pitch=TOKEN_PITCHES.astype(np.int64),
        onset_pitch=np.where(is_note, TOKEN_PITCHES, 0).astype(np.int64),
        is_note=is_note,
        in_key=in_key,
        interval=interval,
        last_note_row=last_note * NUM_CLASSES,
        run_class=run_class,
        run_repeats=run_repeats,
        run_next=run_next * RUN_CLASSES,
        leap_outcome=leap_outcome,
        leap_next=leap_next * np.int32(PAIRS),
        run_start=int(_run_code(0, 0, 0, 0)) * RUN_CLASSES,
        leap_start=leap_start * PAIRS,
    )
    for name in _ARRAY_FIELDS:
        getattr(tables, name).setflags(write=False)
    return tables


_ARRAY_FIELDS = [
    field.name
    for field in dataclasses.fields(StepTables)
    if field.name not in ("run_start", "leap_start")
]
