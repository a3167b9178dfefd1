"""Reading a melody in any key to a Note RNN that knows only C major and A minor.

The shipped Note RNN was trained on a corpus transposed to C major (major tunes) and A minor
(minor tunes) and folded by octaves into the encodable range (:mod:`melody_env.data.extract`).
The envs use it in all 24 keys by reading every melody to it transposed into that *reference
key* and giving each token the log-probability of the reference token it is read as. One index
table per key does both, so a step costs two array look-ups (none at all in C major and A minor,
which read the tokens as they are).

**Shift.** A key's shift is the interval, -6..+5 semitones, that moves its tonic to C (major)
or A (minor): the interval the corpus extraction applied to a tune in that key
(:func:`reference_shift`, :meth:`Key.semitones_to <melody_env.music.keys.Key.semitones_to>` the
reference key, as the extraction computes it), the smallest one, so a melody keeps its register
as closely as possible.

**The reading: transposition on a ring of three octaves.** Note token ``a`` of MIDI pitch ``p``
is read as the note of pitch ``48 + (p + shift - 48) mod 36``; hold (0) and rest (1) as
themselves (:func:`reading_table`). Every note that stays inside MIDI 48..83 after the shift is
read simply transposed. The range is 36 notes, exactly three octaves, so the ``|shift|`` notes
at one edge leave it; they are read at the other edge, in the same pitch class, three octaves
away: for ``shift > 0`` the top ``shift`` notes (``84 - shift .. 83``) as the bottom ones of the
reference range (``48 .. 47 + shift``), for ``shift < 0`` the bottom ``-shift`` notes as the top
ones. In G major (shift +5), G4 is read as C5 and B5 as E3.

**The mapping back.** The RNN's next-token log-probabilities ``q`` are over reference tokens;
token ``a`` gets ``q[reading[a]]``. The reading is a permutation of the 38 tokens, so the
mapped-back values are the RNN's own values in another order: they form a distribution over the
38 playable tokens exactly as the RNN's do (nothing renormalised), and the episode is the
reference-key episode under a relabelling of the tokens: the log-probability of a melody in any
key is bit for bit that of its reading in C major or A minor. The relabelling cannot keep both
a pitch's register and its interval to every other pitch: a step across the boundary between
the notes that stay in range and those that wrap (F#5 to G5 in G major) is read as a leap of
nearly three octaves, which the RNN finds unlikely. The notes that wrap are the ones that lie
outside the reference range once moved into the episode's key.

*Why not the corpus's octave fold.* Folding the shifted pitch by octaves into the range (as the
extraction does) reads two notes an octave apart as the same reference token (B4 and B5 both as
E5 in G major) and no note as the reference tokens at the other edge, so no assignment of the
RNN's 38 log-probabilities to the 38 tokens is both a distribution and consistent with the
reading: sharing a token's probability between its two notes costs ``log 2`` on notes the
corpus plays often, and the permutation above, paired with the fold, scores a note from one
register while the RNN reads it in another. On the six held-out airs of
``tests/data/heldout_airds_airs.json`` moved to each major key, the fold reading (with the
permutation for the log-probabilities) scored the same as the ring where no note wraps, and up
to 1.24 nats/token worse, never better, where the airs were moved an octave higher so that they
use the wrapped notes.

>>> key = Key.from_name("G major")  # G is moved up 5 semitones to C
>>> reference_shift(key)
5
>>> table = reading_table(5)  # G4 (67, token 21) is read as C5 (72, token 26) ...
>>> int(table[21]), int(table[37])  # ... and B5 (83, token 37) as E3 (52, token 6)
(26, 6)
"""

from __future__ import annotations

import numpy as np

from melody_env.music.encoding import (
    MIN_PITCH,
    NUM_CLASSES,
    NUM_PITCHES,
    NUM_SPECIAL_EVENTS,
    TOKEN_PITCHES,
    fold_pitch,
    pitch_to_token,
)
from melody_env.music.keys import KEY_NAMES, Key

REFERENCE_TONICS = {"major": 0, "minor": 9}
"""The keys the Note RNN was trained in: C major and A minor."""


def reference_shift(key: Key | str) -> int:
    """Semitones (-6..+5) that move ``key``'s tonic to C (major) or A (minor).

    >>> [reference_shift(name) for name in ("C major", "G major", "F# major", "E minor")]
    [0, 5, -6, 5]
    """
    key = Key.from_name(key)
    return key.semitones_to(reference_key(key.mode))


def reference_key(mode: str) -> Key:
    """The key of the corpus for ``mode``: C major or A minor."""
    return Key(REFERENCE_TONICS[mode], mode)


def reading_table(shift: int) -> np.ndarray:
    """``int64 [38]``: the reference token the RNN reads for each token at ``shift`` semitones,
    a permutation of ``0..37`` (see the module doc); token ``a`` gets the RNN's
    log-probability of ``reading_table(shift)[a]``."""
    table = np.arange(NUM_CLASSES, dtype=np.int64)
    notes = slice(NUM_SPECIAL_EVENTS, None)
    rotated = (TOKEN_PITCHES[notes] + shift - MIN_PITCH) % NUM_PITCHES + MIN_PITCH
    table[notes] = pitch_to_token(rotated)
    return table


def _key_tables() -> tuple[np.ndarray, np.ndarray]:
    shifts = np.array([reference_shift(name) for name in KEY_NAMES], dtype=np.int64)
    tables = np.stack([reading_table(int(shift)) for shift in shifts])
    for array in (shifts, tables):
        array.setflags(write=False)
    return shifts, tables


KEY_SHIFTS, READING_TABLES = _key_tables()
"""Per key index (:attr:`Key.index`, 0..23): the shift (``int64 [24]``) and the reading table
(``int64 [24, 38]``). Read-only."""


def needs_transposition(key_indices: np.ndarray) -> bool:
    """Whether any of these keys (by index) is not a reference key (C major, A minor)."""
    return bool(KEY_SHIFTS[np.asarray(key_indices)].any())


def to_reference_tokens(tokens: np.ndarray, key: Key | str) -> np.ndarray:
    """``tokens`` (any shape) as the reward RNN reads them in ``key`` (a new array)."""
    return READING_TABLES[Key.from_name(key).index][np.asarray(tokens, dtype=np.int64)]


def from_reference_log_probs(log_probs: np.ndarray, key: Key | str) -> np.ndarray:
    """The RNN's log-probabilities ``[..., 38]`` over reference tokens as ones over ``key``'s
    tokens (a new array; a permutation of the last axis)."""
    return np.asarray(log_probs)[..., READING_TABLES[Key.from_name(key).index]]


def transpose_tokens(tokens: np.ndarray, semitones: int) -> np.ndarray:
    """``tokens`` with every note moved by ``semitones`` and folded by octaves into MIDI 48..83
    (as the corpus was encoded); hold and rest unchanged. A new ``int64`` array.

    >>> transpose_tokens(np.array([14, 0, 1, 37]), 2).tolist()  # C4 hold rest B5 -> D4 .. C#5
    [16, 0, 1, 27]
    """
    table = np.arange(NUM_CLASSES, dtype=np.int64)
    notes = slice(NUM_SPECIAL_EVENTS, None)
    table[notes] = pitch_to_token(fold_pitch(TOKEN_PITCHES[notes] + int(semitones)))
    return table[np.asarray(tokens, dtype=np.int64)]
