"""The 38-token melody encoding shared by the corpus, the Note RNN and the environment.

Magenta's monophonic melody encoding on a sixteenth-note grid:

======  ==========================================================================
token   meaning
======  ==========================================================================
0       ``NO_EVENT``: nothing new happens; the sounding note (or silence) goes on
1       ``NOTE_OFF``: the sounding note stops; silence until the next onset
2..37   a note onset of MIDI pitch 48..83 (C3..B5); it also ends the previous note
======  ==========================================================================

So a quarter-note C4 is ``[14, 0, 0, 0]`` and an eighth-note D3 followed by an eighth rest is
``[4, 0, 1, 0]``. The original RL Tuner's reward code swapped the meaning of 0 and 1; here both
the data and the rules use this table.

>>> token_to_pitch(np.array([0, 1, 2, 14, 37]))
array([-1, -1, 48, 60, 83])
>>> token_name(14), token_name(0), token_name(1)
('C4', 'hold', 'rest')
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

NUM_CLASSES = 38
NO_EVENT = 0
NOTE_OFF = 1
NUM_SPECIAL_EVENTS = 2
MIN_PITCH = 48
MAX_PITCH = 83
NUM_PITCHES = MAX_PITCH - MIN_PITCH + 1
NOT_A_PITCH = -1
"""Pitch returned for the two special tokens."""

PITCH_CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

# Lookup table: token -> MIDI pitch (NOT_A_PITCH for the specials).
TOKEN_PITCHES = np.concatenate(
    [np.full(NUM_SPECIAL_EVENTS, NOT_A_PITCH), np.arange(MIN_PITCH, MAX_PITCH + 1)]
).astype(np.int64)
TOKEN_PITCHES.setflags(write=False)


def validate_tokens(tokens: Iterable[int] | np.ndarray, what: str = "tokens") -> np.ndarray:
    """Return ``tokens`` as an int64 array, or raise ``ValueError`` naming the first bad token."""
    try:
        array = np.asarray(tokens)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be a sequence of integer tokens, got {tokens!r}") from error
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer)
        or (np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0))
    ):
        raise ValueError(f"{what} must be integers in [0, {NUM_CLASSES - 1}], got {tokens!r}")
    array = array.astype(np.int64)
    bad = (array < 0) | (array >= NUM_CLASSES)
    if bad.any():
        raise ValueError(
            f"{what} contain {array[bad].flat[0]}, outside the token range [0, {NUM_CLASSES - 1}] "
            f"(0 = hold, 1 = rest, 2..37 = MIDI pitches {MIN_PITCH}..{MAX_PITCH})"
        )
    return array


def is_note(tokens: np.ndarray) -> np.ndarray:
    """True where a token is a note onset (not hold, not rest)."""
    return np.asarray(tokens) >= NUM_SPECIAL_EVENTS


def token_to_pitch(tokens: np.ndarray | int) -> np.ndarray:
    """MIDI pitch of each token; ``NOT_A_PITCH`` (-1) for hold and rest (tokens not validated)."""
    return TOKEN_PITCHES[np.asarray(tokens)]


def pitch_to_token(pitches: np.ndarray | int) -> np.ndarray:
    """Token of each MIDI pitch in [48, 83]; raises ``ValueError`` outside that range."""
    array = np.asarray(pitches, dtype=np.int64)
    bad = (array < MIN_PITCH) | (array > MAX_PITCH)
    if bad.any():
        raise ValueError(
            f"MIDI pitch {array[bad].flat[0]} is outside the encodable range "
            f"[{MIN_PITCH}, {MAX_PITCH}]; fold it with fold_pitch() first"
        )
    return array - MIN_PITCH + NUM_SPECIAL_EVENTS


def fold_pitch(pitches: np.ndarray | int) -> np.ndarray:
    """Move each MIDI pitch by whole octaves into [48, 83], keeping its pitch class.

    >>> fold_pitch(np.array([36, 47, 48, 83, 84, 100]))
    array([48, 59, 48, 83, 72, 76])
    """
    array = np.asarray(pitches, dtype=np.int64)
    below = array < MIN_PITCH
    above = array > MAX_PITCH
    array = np.where(below, array + 12 * -((array - MIN_PITCH) // 12), array)
    array = np.where(above, array - 12 * ((array - MAX_PITCH + 11) // 12), array)
    return array


def to_one_hot(tokens: np.ndarray | int, dtype=np.float32) -> np.ndarray:
    """One-hot rows of shape ``tokens.shape + (38,)``."""
    array = np.asarray(tokens, dtype=np.int64)
    return np.eye(NUM_CLASSES, dtype=dtype)[array]


def from_one_hot(one_hot: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_one_hot` (argmax over the last axis)."""
    return np.asarray(one_hot).argmax(axis=-1)


def pitch_name(pitch: int) -> str:
    """Scientific pitch name: 60 -> ``"C4"``, 61 -> ``"C#4"``."""
    pitch = int(pitch)
    return f"{PITCH_CLASS_NAMES[pitch % 12]}{pitch // 12 - 1}"


def token_name(token: int) -> str:
    """``"hold"``, ``"rest"`` or the pitch name of a note token."""
    token = int(validate_tokens([token], "token")[0])
    if token == NO_EVENT:
        return "hold"
    if token == NOTE_OFF:
        return "rest"
    return pitch_name(int(TOKEN_PITCHES[token]))


def token_from_name(name: str) -> int:
    """Inverse of :func:`token_name`: ``"C4"`` -> 14, ``"hold"`` -> 0, ``"rest"`` -> 1."""
    text = name.strip()
    if text.lower() == "hold":
        return NO_EVENT
    if text.lower() == "rest":
        return NOTE_OFF
    letter_end = 2 if len(text) > 2 and text[1] in "#b" else 1
    letter, octave = text[:letter_end], text[letter_end:]
    names = {n: i for i, n in enumerate(PITCH_CLASS_NAMES)}
    names.update({"Db": 1, "Eb": 3, "Gb": 6, "Ab": 8, "Bb": 10})
    if letter.capitalize() not in names or not octave.lstrip("-").isdigit():
        raise ValueError(
            f"cannot read note name {name!r}; expected e.g. 'C4', 'F#3', 'hold', 'rest'"
        )
    pitch = names[letter.capitalize()] + 12 * (int(octave) + 1)
    return int(pitch_to_token(pitch))
