"""MIDI files to primer token sequences (pretty_midi).

A primer is the melody the agent continues. :func:`read_primer` turns any MIDI file into one:

1. **Pick the line.** The first non-drum instrument that has notes.
2. **Quantise.** Onsets and offsets go to the nearest sixteenth of the file's *score* time: the
   tempo map (:meth:`pretty_midi.PrettyMIDI.get_tempo_changes`) converts seconds to quarter notes,
   four steps per quarter, so tempo changes do not smear the grid. A note that rounds to zero
   length keeps one step.
3. **Skyline.** Where several notes start on the same step the highest wins; a note still
   sounding at the next onset is cut there (:func:`tokens_from_notes`). A polyphonic line
   (notes overlapping on the grid) is read this way with a :class:`PolyphonicPrimerWarning`
   that names the file and how many notes were dropped or cut.
4. **Transpose.** The piece's key is the file's first key signature if it has one, else the
   Krumhansl-Schmuckler estimate from the pitch-class histogram of all its pitched notes, each
   weighted by its length in sixteenths
   (:func:`estimate_key`). The melody moves by the smallest interval (-6..+5 semitones, a
   tritone down: :meth:`Key.semitones_to <melody_env.music.keys.Key.semitones_to>`) that takes
   that tonic to the target key's tonic. Only the tonic moves: the mode is kept, so an
   A minor piece read into ``"C major"`` becomes C minor, not its relative C major / A minor.
5. **Fold and encode.** Octaves fold into MIDI 48..83
   (:func:`~melody_env.music.encoding.fold_pitch`); leading silence is dropped; the notes become
   tokens (onset, holds, a rest after a gap).

Every failure is a ``FileNotFoundError`` or a ``ValueError`` that names the file.

>>> tokens_from_notes([(60, 0, 4), (62, 4, 6), (64, 8, 9)]).tolist()
[14, 0, 0, 0, 16, 0, 1, 0, 18]
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pretty_midi

from melody_env.music.encoding import NO_EVENT, NOTE_OFF, fold_pitch, pitch_to_token
from melody_env.music.keys import Key

STEPS_PER_QUARTER = 4
"""Sixteenth-note grid, as in :mod:`melody_env.io.midi_writer`."""
MAX_FILE_BYTES = 10 * 1024 * 1024
"""Larger files are refused before parsing."""
MAX_NOTES = 100_000
"""Files with more notes (all instruments) are refused."""
MAX_SONG_STEPS = 1 << 20
"""Melodies longer than this many sixteenths (about 3.6 hours at 80 QPM) are refused."""


class PolyphonicPrimerWarning(UserWarning):
    """A MIDI primer's line has overlapping notes; it was reduced to its skyline."""


def count_overlaps(starts: np.ndarray, ends: np.ndarray) -> tuple[int, int]:
    """``(dropped, cut)`` by the skyline of notes ``[start, end)`` on the grid (end <= start
    counts as one step): ``dropped`` is the number of notes that share their onset step with
    another (all but the highest are lost); ``cut`` the number of onset steps where some note
    starting there still sounds at the next onset step (the line is cut there). Both are zero
    exactly when the line is monophonic on the grid.

    >>> count_overlaps(np.array([0, 0, 4]), np.array([4, 8, 6]))
    (1, 1)
    >>> count_overlaps(np.array([0, 4]), np.array([4, 6]))
    (0, 0)
    >>> count_overlaps(np.array([0, 2]), np.array([4, 6]))
    (0, 1)
    """
    starts = np.asarray(starts, np.int64)
    ends = np.maximum(np.asarray(ends, np.int64), starts + 1)
    onsets = np.unique(starts)
    dropped = len(starts) - len(onsets)
    latest_end = np.full(len(onsets), np.iinfo(np.int64).min)
    np.maximum.at(latest_end, np.searchsorted(onsets, starts), ends)
    cut = int(np.count_nonzero(latest_end[:-1] > onsets[1:]))
    return int(dropped), cut


# Krumhansl-Kessler key profiles (Krumhansl 1990), tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def tokens_from_notes(notes: Iterable[Sequence[int]]) -> np.ndarray:
    """Encode ``(pitch, start_step, end_step)`` notes as a monophonic token sequence.

    Token ``i`` describes step ``i``: silence before the first onset is a rest then holds (drop it
    beforehand if unwanted), a note is its onset token then holds, a gap after a note's end is a
    rest token then holds, and the sequence ends with the last note's end. Polyphony is resolved by
    the skyline rule: among notes starting on the same step the highest pitch wins, and a note still
    sounding at the next onset is cut there. A note with ``end_step <= start_step`` lasts one step.

    Args:
        notes: ``(pitch, start_step, end_step)`` triples in any order; pitches in [48, 83]
            (fold them first), steps non-negative integers.

    Returns:
        int64 tokens, empty when there are no notes.

    Raises:
        ValueError: a pitch outside [48, 83], a negative start, or a malformed note.

    >>> tokens_from_notes([(60, 0, 2), (55, 0, 8), (64, 1, 3)]).tolist()  # C4 wins, cut by E4
    [14, 18, 0]
    """
    try:
        array = np.array([tuple(int(v) for v in note) for note in notes], dtype=np.int64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"notes must be (pitch, start_step, end_step) integers: {error}"
        ) from error
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(
            f"notes must be (pitch, start_step, end_step) triples, got shape {array.shape}"
        )
    pitches, starts, ends = array.T
    if (starts < 0).any():
        raise ValueError(f"note start steps must be >= 0, got {starts[starts < 0][0]}")
    pitch_to_token(pitches)  # raises a ValueError naming the first unencodable pitch
    # Skyline: sort by onset, highest pitch first, and keep the first note of each onset.
    order = np.lexsort((-pitches, starts))
    pitches, starts, ends = pitches[order], starts[order], ends[order]
    first = np.concatenate([[True], starts[1:] != starts[:-1]])
    pitches, starts, ends = pitches[first], starts[first], ends[first]
    ends = np.maximum(ends, starts + 1)  # zero-length notes keep one step
    ends = np.minimum(ends, np.concatenate([starts[1:], [ends[-1]]]))  # cut at the next onset

    tokens = np.full(int(ends[-1]), NO_EVENT, dtype=np.int64)
    if starts[0] > 0:
        tokens[0] = NOTE_OFF
    gaps = ends[:-1] < starts[1:]
    tokens[ends[:-1][gaps]] = NOTE_OFF
    tokens[starts] = pitch_to_token(pitches)
    return tokens


def estimate_key(
    pitches: Sequence[int] | np.ndarray, weights: Sequence[float] | None = None
) -> Key:
    """Krumhansl-Schmuckler key finding: the major or minor key whose profile best correlates with
    the (weighted) pitch-class histogram.

    Ties go to major before minor, then to the lower tonic; a histogram without any variation (no
    notes, or all twelve pitch classes alike) gives C major.

    Args:
        pitches: MIDI pitches.
        weights: one weight per pitch, e.g. its duration; all 1 when omitted.

    >>> estimate_key([62, 64, 66, 67, 69, 71, 73, 74]).name  # a D major scale
    'D major'
    """
    pitches = np.asarray(pitches, dtype=np.int64)
    weights = np.ones(len(pitches)) if weights is None else np.asarray(weights, dtype=float)
    histogram = np.bincount(pitches % 12, weights=weights, minlength=12)[:12]
    if len(pitches) == 0 or np.ptp(histogram) == 0:
        return Key(0, "major")
    # rotated[t][pc] = profile[(pc - t) % 12]: the profile of the key with tonic t.
    index = (np.arange(12)[None, :] - np.arange(12)[:, None]) % 12
    profiles = np.concatenate([MAJOR_PROFILE[index], MINOR_PROFILE[index]])  # [24, 12]
    centred = profiles - profiles.mean(axis=1, keepdims=True)
    hist = histogram - histogram.mean()
    scores = centred @ hist / (np.linalg.norm(centred, axis=1) * np.linalg.norm(hist))
    best = int(np.argmax(scores))
    return Key(best % 12, "major" if best < 12 else "minor")


def read_primer(
    path: str | os.PathLike, key: Key | str = "C major", max_steps: int | None = None
) -> np.ndarray:
    """Read the first melodic line of a MIDI file as tokens in ``key``.

    See the module docstring for the steps (line choice, quantisation, skyline, transposition,
    octave folding).

    Args:
        path: a Standard MIDI File.
        key: the key to transpose into; a :class:`Key` or a name such as ``"A minor"``. Only its
            tonic is used (the piece keeps its mode).
        max_steps: keep only the last ``max_steps`` steps. If the cut falls inside a note, the
            first kept step re-strikes it (its onset token); if it falls in silence, it is a rest.

    Returns:
        int64 tokens starting with a note onset (or a rest after truncation).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a readable MIDI file (corrupt, truncated, not MIDI), is too
            large, has no notes or only drum notes, or an argument is invalid.
    """
    target = Key.from_name(key)
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1
    ):
        raise ValueError(f"max_steps must be a positive integer or None, got {max_steps!r}")
    midi = _load_midi(Path(path))

    pitched = [inst for inst in midi.instruments if not inst.is_drum and inst.notes]
    if not pitched:
        if any(inst.notes for inst in midi.instruments):
            raise ValueError(
                f"MIDI file {str(path)!r} has only drum tracks (channel 10); a primer needs a "
                "pitched (non-drum) instrument with notes"
            )
        raise ValueError(f"MIDI file {str(path)!r} contains no notes")

    to_steps = _seconds_to_steps(midi)
    line = pitched[0].notes
    starts = to_steps(np.array([note.start for note in line]))
    ends = to_steps(np.array([note.end for note in line]))
    pitches = np.array([note.pitch for note in line], dtype=np.int64)
    offset = int(starts.min())  # drop leading silence
    if int(ends.max()) - offset > MAX_SONG_STEPS:
        raise ValueError(
            f"MIDI file {str(path)!r} is too long: its melody spans {int(ends.max()) - offset} "
            f"sixteenths, the limit is {MAX_SONG_STEPS}"
        )

    dropped, cut = count_overlaps(starts, ends)
    if dropped or cut:
        warnings.warn(
            f"MIDI primer {str(path)!r} is polyphonic: read as its skyline (the highest of "
            f"notes starting together, each cut at the next onset): {dropped} of {len(line)} "
            f"notes dropped, {cut} cut short",
            PolyphonicPrimerWarning,
            stacklevel=2,
        )
    shift = _piece_key(midi, pitched, to_steps).semitones_to(target)
    notes = np.stack([fold_pitch(pitches + shift), starts - offset, ends - offset], axis=1)
    tokens = tokens_from_notes(notes.tolist())
    if max_steps is not None and len(tokens) > max_steps:
        tokens = _keep_last(tokens, max_steps)
    return tokens


def _load_midi(path: Path) -> pretty_midi.PrettyMIDI:
    """Parse ``path`` with pretty_midi, turning every parse failure into a ``ValueError``."""
    if not path.exists():
        raise FileNotFoundError(f"MIDI file {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"MIDI file {str(path)!r} is not a regular file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(
            f"MIDI file {str(path)!r} is too large: {size} bytes, the limit is {MAX_FILE_BYTES}"
        )
    data = path.read_bytes()
    try:
        midi = pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as error:  # mido and pretty_midi raise OSError, EOFError, KeyError, ...
        raise ValueError(
            f"{str(path)!r} is not a readable MIDI file: {type(error).__name__}: {error}"
        ) from error
    num_notes = sum(len(inst.notes) for inst in midi.instruments)
    if num_notes > MAX_NOTES:
        raise ValueError(
            f"MIDI file {str(path)!r} is too large: {num_notes} notes, the limit is {MAX_NOTES}"
        )
    return midi


def _seconds_to_steps(midi: pretty_midi.PrettyMIDI):
    """A function mapping times in seconds to the nearest sixteenth of score time."""
    change_times, tempi = midi.get_tempo_changes()
    if len(change_times) == 0:
        change_times, tempi = np.zeros(1), np.array([120.0])
    quarters_per_second = tempi / 60.0
    # Quarter-note position of each tempo change.
    change_quarters = np.concatenate(
        [[0.0], np.cumsum(np.diff(change_times) * quarters_per_second[:-1])]
    )

    def to_steps(seconds: np.ndarray) -> np.ndarray:
        segment = np.clip(np.searchsorted(change_times, seconds, side="right") - 1, 0, None)
        quarters = (
            change_quarters[segment]
            + (seconds - change_times[segment]) * (quarters_per_second[segment])
        )
        return np.floor(quarters * STEPS_PER_QUARTER + 0.5).astype(np.int64)

    return to_steps


def _piece_key(
    midi: pretty_midi.PrettyMIDI, pitched: list[pretty_midi.Instrument], to_steps
) -> Key:
    """The first key signature, else the Krumhansl-Schmuckler estimate over all pitched notes,
    each weighted by its length in sixteenths (at least one)."""
    if midi.key_signature_changes:
        number = midi.key_signature_changes[0].key_number
        return Key(number % 12, "major" if number < 12 else "minor")
    notes = [note for inst in pitched for note in inst.notes]
    starts = to_steps(np.array([note.start for note in notes]))
    ends = to_steps(np.array([note.end for note in notes]))
    return estimate_key([note.pitch for note in notes], np.maximum(ends - starts, 1))


def _keep_last(tokens: np.ndarray, max_steps: int) -> np.ndarray:
    """The last ``max_steps`` tokens; a leading hold becomes the onset (or rest) it continues."""
    kept = tokens[-max_steps:].copy()
    if kept[0] == NO_EVENT:
        events = np.flatnonzero(tokens[: len(tokens) - max_steps + 1] != NO_EVENT)
        kept[0] = tokens[events[-1]]  # the sounding note's onset, or a rest
    return kept
