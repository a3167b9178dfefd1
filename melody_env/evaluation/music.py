"""Statistics that see the music: diversity, exploit watch, and histograms to compare with data.

Pure numpy functions of token arrays (the 38-token encoding of :mod:`melody_env.music.encoding`:
0 hold, 1 rest, 2..37 onsets of MIDI 48..83). Every function takes *melodies*: an ``int [n, L]``
array of compositions, or a sequence of 1-D token arrays of any lengths (corpus melodies).

Notes. A *note* starts at an onset token (2..37) and lasts until the next token that is not a
hold (the next onset or a rest) or the end of its melody, whichever comes first; its *duration*
is that number of sixteenth steps (the onset plus the holds after it). Holds before a melody's
first onset belong to no note. The *melodic line* is the sequence of onset pitches of a melody;
its *intervals* are the absolute differences (semitones) between consecutive onsets of the same
melody, rests in between ignored.

Diversity (over the ``n`` compositions):

- *distinct compositions*: number of distinct rows;
- *distinct openings*: number of distinct first-``OPENING_LENGTH`` (8) token prefixes;
- *top opening share*: the count of the most common opening divided by ``n``;
- *distinct 4-grams*: number of distinct token 4-grams, taken within each composition (``L - 3``
  per composition) and pooled over all compositions.

Exploit watch (per composition, summed by :func:`music_columns`):

- *starts on lowest / highest*: the first onset is the lowest (token 2, MIDI 48) / highest
  (token 37, MIDI 83) pitch of the range; a composition with no onset does neither;
- *notes at the repetition limit*: notes whose duration is exactly
  :data:`REPETITION_LIMIT_DURATION`, the longest a note can be held without the env's
  excessive-repetition penalty (:func:`~melody_env.music.theory.repeats_excessively`; 6
  sixteenths: the onset and five holds; a sixth hold is penalised);
- *octave-plus leaps*: intervals larger than 12 semitones.

Histograms for the overlap with the corpus (Yang & Lerch 2020, "On the evaluation of generative
models in music"; :func:`histogram_overlap`): pitch classes of the onsets (12 bins, transposed so
the key's tonic lands on C for a major key, on A for a minor one, as the corpus is), intervals
(25 bins: 0..23 semitones, 24 and larger pooled into bin 24) and note durations (16 bins: 1..15
sixteenths, 16 and longer pooled into the last).

>>> melodies = np.array([[2, 0, 0, 14, 1, 16, 0, 0], [2, 0, 0, 14, 1, 16, 0, 0]])
>>> distinct_compositions(melodies), top_opening_share(melodies)
(1, 1.0)
>>> interval_histogram(melodies)[[2, 12]].tolist()  # C3 -> C4 (12), C4 -> D4 (2), twice
[2, 2]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from melody_env.music import theory
from melody_env.music.encoding import (
    NO_EVENT,
    NUM_CLASSES,
    NUM_SPECIAL_EVENTS,
    TOKEN_PITCHES,
    validate_tokens,
)
from melody_env.music.keys import Key
from melody_env.music.transposition import reference_shift

Melodies = np.ndarray | Sequence[np.ndarray]
"""``int [n, L]`` compositions, or a sequence of 1-D token arrays."""

OPENING_LENGTH = 8
"""Tokens of an *opening* (two beats at four sixteenths per beat; half a 4/4 bar)."""
NGRAM_LENGTH = 4
"""Tokens of the n-grams counted by :func:`distinct_ngrams`."""
LOWEST_TOKEN = NUM_SPECIAL_EVENTS
"""The lowest pitch of the range (MIDI 48, C3)."""
HIGHEST_TOKEN = NUM_CLASSES - 1
"""The highest pitch of the range (MIDI 83, B5)."""
OCTAVE = 12
"""An *octave-plus leap* is an interval of more than this many semitones."""
INTERVAL_BINS = 25
"""Interval histogram bins: 0..23 semitones, then 24 and larger."""
DURATION_BINS = 16
"""Duration histogram bins: 1..15 sixteenths, then 16 and longer."""


def _longest_unpenalised_hold(limit: int = 64) -> int:
    """The longest duration (onset + holds) the env's repetition rule allows without penalty."""
    state = theory.run_step(theory.RunState.empty(1), np.array([LOWEST_TOKEN]))
    for duration in range(1, limit):
        if theory.repeats_excessively(state, np.array([NO_EVENT]))[0]:
            return duration
        state = theory.run_step(state, np.array([NO_EVENT]))
    return limit


REPETITION_LIMIT_DURATION = _longest_unpenalised_hold()
"""6 sixteenths with the env's rule (``REPEATS_ALLOWED = 4``): derived from the rule itself."""


def _as_array(melodies: Melodies) -> np.ndarray:
    """``melodies`` as one ``int64 [n, L]`` array (they must be of equal length)."""
    array = validate_tokens(melodies, "melodies")
    if array.ndim != 2:
        raise ValueError(f"compositions must be an [n, L] token array, got shape {array.shape}")
    return array


def _flatten(melodies: Melodies) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(tokens, melody, starts)``: all tokens in one array, the melody index of each, and the
    offset of each melody's first token (plus the total length at the end)."""
    if isinstance(melodies, np.ndarray) and melodies.ndim == 2:
        rows = [validate_tokens(melodies, "melodies")]
        lengths = np.full(len(melodies), melodies.shape[1], np.int64)
        flat = rows[0].reshape(-1)
    else:
        rows = [validate_tokens(m, "melody") for m in melodies]
        if any(row.ndim != 1 for row in rows):
            raise ValueError("each melody must be a 1-D token array")
        lengths = np.array([len(row) for row in rows], np.int64)
        flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    melody = np.repeat(np.arange(len(lengths)), lengths)
    return flat, melody, starts


def count_rows(melodies: Melodies) -> int:
    """Number of melodies."""
    return len(_flatten(melodies)[2]) - 1


# --- diversity -------------------------------------------------------------------------------


def distinct_compositions(melodies: Melodies) -> int:
    """Number of distinct compositions (rows of ``[n, L]``).

    >>> distinct_compositions(np.array([[2, 0], [2, 0], [3, 0]]))
    2
    """
    array = _as_array(melodies)
    return len(np.unique(array, axis=0)) if len(array) else 0


def opening_counts(melodies: Melodies, length: int = OPENING_LENGTH) -> np.ndarray:
    """How many compositions share each distinct opening (first ``length`` tokens), most
    common first.

    >>> opening_counts(np.array([[2, 0, 5], [2, 0, 6], [3, 0, 5]]), length=2).tolist()
    [2, 1]
    """
    array = _as_array(melodies)
    if length < 1:
        raise ValueError(f"opening length must be >= 1, got {length}")
    if not len(array):
        return np.zeros(0, np.int64)
    _, counts = np.unique(array[:, :length], axis=0, return_counts=True)
    return np.sort(counts)[::-1]


def distinct_openings(melodies: Melodies, length: int = OPENING_LENGTH) -> int:
    """Number of distinct first-``length``-token openings."""
    return len(opening_counts(melodies, length))


def top_opening_share(melodies: Melodies, length: int = OPENING_LENGTH) -> float:
    """Share of the compositions that open with the most common opening (NaN for none)."""
    counts = opening_counts(melodies, length)
    return float(counts[0] / counts.sum()) if len(counts) else float("nan")


def distinct_ngrams(melodies: Melodies, n: int = NGRAM_LENGTH) -> int:
    """Number of distinct token ``n``-grams, each within one melody, pooled over all melodies.

    >>> distinct_ngrams(np.array([[2, 0, 2, 0, 2], [2, 0, 2, 0, 3]]), n=4)  # 2020, 0202, 0203
    3
    """
    if n < 1:
        raise ValueError(f"n-gram length must be >= 1, got {n}")
    codes = []
    for melody in _melody_list(melodies):
        if len(melody) >= n:
            windows = np.lib.stride_tricks.sliding_window_view(melody, n)
            codes.append(windows @ (NUM_CLASSES ** np.arange(n - 1, -1, -1, dtype=np.int64)))
    return len(np.unique(np.concatenate(codes))) if codes else 0


def _melody_list(melodies: Melodies) -> list[np.ndarray]:
    flat, _, starts = _flatten(melodies)
    return [flat[a:b] for a, b in itertools.pairwise(starts)]


def diversity(melodies: Melodies) -> dict[str, float]:
    """The four diversity statistics of the module docstring, by report name."""
    return {
        "distinct_compositions": distinct_compositions(melodies),
        "distinct_openings": distinct_openings(melodies),
        "top_opening_share": top_opening_share(melodies),
        "distinct_4grams": distinct_ngrams(melodies),
    }


# --- notes, intervals, durations -------------------------------------------------------------


def notes(melodies: Melodies) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every note of ``melodies``: ``(melody index, onset token, duration in sixteenths)``,
    in order. See the module docstring for what ends a note.

    >>> notes([np.array([0, 14, 0, 0, 1, 16, 16, 0])])
    (array([0, 0, 0]), array([14, 16, 16]), array([3, 1, 2]))
    """
    flat, melody, starts = _flatten(melodies)
    onsets = np.flatnonzero(flat >= NUM_SPECIAL_EVENTS)
    # A note ends at the next non-hold token or at its melody's end.
    breaks = np.union1d(np.flatnonzero(flat != NO_EVENT), starts)
    following = breaks[np.searchsorted(breaks, onsets, side="right")]
    return melody[onsets], flat[onsets], following - onsets


def onset_intervals(melodies: Melodies) -> tuple[np.ndarray, np.ndarray]:
    """``(melody index, |interval| in semitones)`` between consecutive onsets of each melody.

    >>> onset_intervals([np.array([14, 1, 26, 0, 13]), np.array([2])])
    (array([0, 0]), array([12, 13]))
    """
    melody, onset, _ = notes(melodies)
    same = melody[1:] == melody[:-1]
    pitches = TOKEN_PITCHES[onset]
    return melody[1:][same], np.abs(np.diff(pitches))[same]


def first_onsets(melodies: Melodies) -> np.ndarray:
    """The token of each melody's first onset, -1 for a melody without one.

    >>> first_onsets(np.array([[0, 14, 2], [1, 0, 0]])).tolist()
    [14, -1]
    """
    melody, onset, _ = notes(melodies)
    result = np.full(count_rows(melodies), -1, np.int64)
    first = np.concatenate([[True], melody[1:] != melody[:-1]])[: len(melody)]
    result[melody[first]] = onset[first]
    return result


def music_columns(melodies: Melodies) -> dict[str, np.ndarray]:
    """Per-composition counts for the exploit-watch rows (``[n]`` int64 arrays):

    - ``starts_on_lowest`` / ``starts_on_highest``: 1 if the first onset is token 2 / 37;
    - ``notes_at_repetition_limit``: notes of duration :data:`REPETITION_LIMIT_DURATION`;
    - ``octave_leaps``: intervals larger than :data:`OCTAVE` semitones;
    - ``onsets``: notes (the denominator of the repetition-limit share).

    >>> columns = music_columns(np.array([[2, 0, 0, 0, 0, 0, 27, 14]]))  # C3 for 6, C#5, C4
    >>> [int(columns[k][0]) for k in ("starts_on_lowest", "notes_at_repetition_limit",
    ...                                "octave_leaps", "onsets")]
    [1, 1, 2, 3]
    """
    count = count_rows(melodies)
    melody, _, duration = notes(melodies)
    first = first_onsets(melodies)
    leap_rows, leaps = onset_intervals(melodies)
    return {
        "starts_on_lowest": (first == LOWEST_TOKEN).astype(np.int64),
        "starts_on_highest": (first == HIGHEST_TOKEN).astype(np.int64),
        "notes_at_repetition_limit": np.bincount(
            melody[duration == REPETITION_LIMIT_DURATION], minlength=count
        ).astype(np.int64),
        "octave_leaps": np.bincount(leap_rows[leaps > OCTAVE], minlength=count).astype(np.int64),
        "onsets": np.bincount(melody, minlength=count).astype(np.int64),
    }


# --- histograms ------------------------------------------------------------------------------


def key_shift(key: Key | str | None) -> int:
    """Semitones, 0..11, that move ``key``'s pitch classes to the corpus's (C for major, A for
    minor): :func:`~melody_env.music.transposition.reference_shift` modulo 12."""
    if key is None:
        return 0
    return reference_shift(key) % 12


def pitch_class_histogram(melodies: Melodies, key: Key | str | None = None) -> np.ndarray:
    """``int64 [12]``: onsets per pitch class, transposed by :func:`key_shift` (``key``).

    >>> pitch_class_histogram(np.array([[21, 0, 23]]), "G major")[[0, 2]].tolist()  # G, A
    [1, 1]
    """
    _, onset, _ = notes(melodies)
    shifted = (TOKEN_PITCHES[onset] + key_shift(key)) % 12
    return np.bincount(shifted, minlength=12).astype(np.int64)


def interval_histogram(melodies: Melodies) -> np.ndarray:
    """``int64 [25]``: intervals between consecutive onsets, 0..23 semitones, then >= 24."""
    _, intervals = onset_intervals(melodies)
    return np.bincount(np.minimum(intervals, INTERVAL_BINS - 1), minlength=INTERVAL_BINS)


def duration_histogram(melodies: Melodies) -> np.ndarray:
    """``int64 [16]``: notes by duration, bin ``d - 1`` for ``d`` sixteenths, then >= 16.

    >>> duration_histogram([np.array([14, 0, 0, 1, 16])])[:3].tolist()  # 3 and 1 sixteenths
    [1, 0, 1]
    """
    _, _, duration = notes(melodies)
    return np.bincount(np.minimum(duration, DURATION_BINS) - 1, minlength=DURATION_BINS)


def histogram_overlap(first: np.ndarray, second: np.ndarray) -> float:
    """``sum_b min(p_b, q_b)`` of the two histograms normalised to sum 1 (1: identical shapes,
    0: disjoint); NaN if either is empty.

    >>> histogram_overlap(np.array([3, 1, 0]), np.array([1, 1, 2]))
    0.5
    """
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if first.shape != second.shape:
        raise ValueError(f"histograms differ in shape: {first.shape} vs {second.shape}")
    if first.sum() <= 0 or second.sum() <= 0:
        return float("nan")
    return float(np.minimum(first / first.sum(), second / second.sum()).sum())


HISTOGRAMS = {
    "pitch_class": pitch_class_histogram,
    "interval": interval_histogram,
    "duration": duration_histogram,
}
"""The three histograms compared with the corpus, by report name (``<name>_overlap``)."""


def histograms(melodies: Melodies, key: Key | str | None = None) -> dict[str, np.ndarray]:
    """The three :data:`HISTOGRAMS` of ``melodies`` (pitch classes transposed for ``key``)."""
    return {
        "pitch_class": pitch_class_histogram(melodies, key),
        "interval": interval_histogram(melodies),
        "duration": duration_histogram(melodies),
    }


def overlaps(
    melodies: Melodies, reference: dict[str, np.ndarray], key: Key | str | None = None
) -> dict[str, float]:
    """``{"<name>_overlap": overlap}`` of each histogram of ``melodies`` with ``reference``'s."""
    own = histograms(melodies, key)
    return {f"{name}_overlap": histogram_overlap(own[name], reference[name]) for name in own}
