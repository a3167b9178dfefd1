"""Token sequences to MIDI (pretty_midi).

>>> midi = tokens_to_pretty_midi([14, 0, 0, 0, 18, 0, 1, 0], qpm=120)
>>> [(n.pitch, round(n.start, 3), round(n.end, 3)) for n in midi.instruments[0].notes]
[(60, 0.0, 0.5), (64, 0.5, 0.75)]
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
import pretty_midi

from melody_env.atomic import atomic_write_bytes
from melody_env.music.encoding import NOTE_OFF, TOKEN_PITCHES, is_note, validate_tokens

DEFAULT_QPM = 80.0
"""Tempo of the original RL Tuner's MIDI output."""
STEPS_PER_QUARTER = 4
MAX_QPM = 10_000.0
"""Fastest tempo written (quarter notes per minute); infinity or NaN would give NaN times."""


def tokens_to_pretty_midi(
    tokens: Sequence[int] | np.ndarray,
    qpm: float = DEFAULT_QPM,
    program: int = 0,
    velocity: int = 100,
) -> pretty_midi.PrettyMIDI:
    """One monophonic instrument playing ``tokens`` on a sixteenth-note grid.

    A note lasts from its onset token until the next onset, the next rest token, or the end.
    """
    if (
        isinstance(qpm, bool)
        or not isinstance(qpm, (int, float, np.number))
        or not (0 < qpm <= MAX_QPM)
    ):
        raise ValueError(f"qpm must be a number in (0, {MAX_QPM:g}], got {qpm!r}")
    for name, value in (("program", program), ("velocity", velocity)):
        if (
            not isinstance(value, (int, np.integer))
            or isinstance(value, bool)
            or not 0 <= value <= 127
        ):
            raise ValueError(f"{name} must be an integer in [0, 127], got {value!r}")
    tokens = validate_tokens(tokens)
    step_seconds = 60.0 / qpm / STEPS_PER_QUARTER
    midi = pretty_midi.PrettyMIDI(initial_tempo=qpm)
    instrument = pretty_midi.Instrument(program=program, name="melody")
    onset, pitch = None, None
    for step, token in enumerate([*tokens.tolist(), NOTE_OFF]):
        if (is_note(token) or token == NOTE_OFF) and onset is not None:
            instrument.notes.append(
                pretty_midi.Note(velocity, pitch, onset * step_seconds, step * step_seconds)
            )
            onset = None
        if is_note(token):
            onset, pitch = step, int(TOKEN_PITCHES[token])
    midi.instruments.append(instrument)
    return midi


def write_midi(path: str | os.PathLike, tokens: Sequence[int] | np.ndarray, **kwargs) -> None:
    """Write ``tokens`` as a MIDI file, atomically. Keyword arguments go to
    :func:`tokens_to_pretty_midi`."""
    buffer = io.BytesIO()
    tokens_to_pretty_midi(tokens, **kwargs).write(buffer)
    atomic_write_bytes(path, buffer.getvalue())
