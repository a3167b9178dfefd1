"""One ABC tune -> one melody in the 38-token encoding (see :mod:`melody_env.music.encoding`).

The steps, in order:

1. Parse the tune with music21 (the optional ``data`` extra) as ABC 2.1, so accidentals carry
   through the bar; keep the first part (and, inside it, the first voice) of multi-voice tunes.
2. Find the key with ``analyze('key')`` (Krumhansl-Schmuckler) rather than the ``K:`` line, which
   in the Essen collection gives only the signature; transpose by the nearest interval (-6..+5
   semitones, a tritone down) that moves a major tonic to C or a minor tonic to A
   (:func:`~melody_env.music.transposition.reference_shift`, through
   :meth:`Key.semitones_to <melody_env.music.keys.Key.semitones_to>`).
3. Quantise to sixteenths: a note's onset and end are ``round(4 * offset)`` (half up). Tied notes
   merge into one; grace notes are dropped; a chord plays its top note; a note whose rounded onset
   collides with an earlier note's (a fast tuplet) is dropped.
4. Encode: an onset step holds the pitch token, later steps of the note hold ``NO_EVENT`` (0); if a
   note ends before the next onset (a rest follows), its end step holds one ``NOTE_OFF`` (1) and the
   silence continues with 0s. Leading and trailing silence is cut.
5. Fold every pitch by octaves into MIDI 48..83.

>>> abc = "X:1\\nM:4/4\\nL:1/8\\nK:C\\nc2 d e- e4 | z2 g2 a/b/c' C,2 |]\\n"
>>> tokens_from_abc(abc, transpose=False).tolist()  # doctest: +NORMALIZE_WHITESPACE
[26, 0, 0, 0, 28, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
 33, 0, 0, 0, 35, 37, 26, 0, 2, 0, 0, 0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from melody_env.music.encoding import NO_EVENT, NOTE_OFF, fold_pitch, pitch_to_token
from melody_env.music.keys import Key
from melody_env.music.transposition import reference_shift

STEPS_PER_QUARTER = 4


def require_music21():
    """Import music21 or raise an ``ImportError`` that says how to install it."""
    try:
        import music21
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading the melody corpus needs music21, the optional 'data' extra: "
            "pip install 'melody-rl[data]'"
        ) from error
    return music21


@dataclass(frozen=True)
class Event:
    """One quantised note: onset and end in sixteenth steps, and its (untransposed) MIDI pitch."""

    onset: int
    end: int
    pitch: int


def quantise(offset: float | Fraction) -> int:
    """Sixteenth step nearest to a quarter-length ``offset`` (halves round up)."""
    return math.floor(Fraction(offset) * STEPS_PER_QUARTER + Fraction(1, 2))


def _monophonic_line(score):
    """The first part (and first voice) of ``score`` as a flat stream of notes, chords and rests."""
    music21 = require_music21()
    part = score.parts[0] if hasattr(score, "parts") and len(score.parts) else score
    if part.recurse().getElementsByClass(music21.stream.Voice):
        part = part.voicesToParts().parts[0]
    return part.flatten().notesAndRests


def note_events(score) -> list[Event]:
    """Quantised, monophonic note events of ``score`` (rests are implied by gaps).

    Ties merge, grace notes and zero-length notes are dropped, chords keep their top note, and a
    note whose rounded onset is not after the previous onset is dropped.
    """
    events: list[Event] = []
    for element in _monophonic_line(score):
        if element.isRest or element.duration.isGrace or element.quarterLength <= 0:
            continue
        pitch = max(p.midi for p in element.pitches) if element.isChord else element.pitch.midi
        onset, end = quantise(element.offset), quantise(element.offset + element.quarterLength)
        tie = getattr(element, "tie", None)
        if (
            tie is not None
            and tie.type in ("stop", "continue")
            and events
            and events[-1].pitch == pitch
            and events[-1].end >= onset
        ):
            events[-1] = Event(events[-1].onset, max(events[-1].end, end), pitch)
            continue
        if events and onset <= events[-1].onset:
            continue  # collapsed onto the previous onset by rounding (a fast tuplet)
        events.append(Event(onset, max(end, onset + 1), pitch))
    return events


def encode_events(events: list[Event], shift: int = 0) -> np.ndarray:
    """Token array of quantised ``events``, transposed by ``shift`` semitones and octave-folded.

    >>> encode_events([Event(0, 4, 60), Event(4, 6, 62), Event(8, 9, 100)]).tolist()
    [14, 0, 0, 0, 16, 0, 1, 0, 30]
    """
    if not events:
        return np.zeros(0, dtype=np.uint8)
    start = events[0].onset
    tokens = np.full(events[-1].end - start, NO_EVENT, dtype=np.uint8)
    pitches = pitch_to_token(fold_pitch(np.array([e.pitch for e in events]) + shift))
    for index, (event, token) in enumerate(zip(events, pitches, strict=True)):
        tokens[event.onset - start] = token
        next_onset = events[index + 1].onset if index + 1 < len(events) else None
        if next_onset is not None and event.end < next_onset:
            tokens[event.end - start] = NOTE_OFF
    return tokens


def score_key(score) -> tuple[int, str]:
    """``(tonic pitch class, "major" | "minor")`` from music21's key analysis of ``score``."""
    key = score.analyze("key")
    return int(key.tonic.pitchClass), "minor" if key.mode == "minor" else "major"


def tokens_from_score(score, transpose: bool = True) -> np.ndarray:
    """Encode a parsed music21 score (see the module docstring for the steps)."""
    events = note_events(score)
    if not events:
        return np.zeros(0, dtype=np.uint8)
    shift = reference_shift(Key(*score_key(score))) if transpose else 0
    return encode_events(events, shift)


def tokens_from_abc(text: str, transpose: bool = True) -> np.ndarray:
    """Parse one ABC tune (a string starting with ``X:``) and encode it.

    Unless the text declares its ABC version, it is read as ABC 2.1, so that an accidental
    carries to the same pitch later in the bar (music21 reads ABC 1.3 by default and would
    drop it: Essen's ``_B2B2`` would be B-flat, B-natural).
    """
    music21 = require_music21()
    if "%abc-" not in text:
        text = "%abc-2.1\n" + text
    score = music21.converter.parse(text, format="abc")
    if isinstance(score, music21.stream.Opus):
        score = score.scores[0]
    return tokens_from_score(score, transpose=transpose)


def split_abc_tunes(text: str) -> list[tuple[str, str]]:
    """Split an ABC file into ``(reference number, tune text)`` pairs.

    Field lines of the file header (before the first ``X:``) apply to every tune, so they are
    prepended to each tune's text after its ``X:`` line.

    >>> [x for x, _ in split_abc_tunes("% c\\nL:1/8\\n\\nX:1\\nK:C\\nc\\n\\nX: 7\\nK:G\\nd\\n")]
    ['1', '7']
    """
    header: list[str] = []
    tunes: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("X:"):
            tunes.append((line[2:].strip(), [line, *header]))
        elif tunes:
            tunes[-1][1].append(line)
        elif len(line) > 1 and line[1] == ":" and line[0].isalpha():
            header.append(line)
    return [(number, "\n".join(lines).strip() + "\n") for number, lines in tunes]
