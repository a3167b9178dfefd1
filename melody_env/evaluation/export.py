"""Hearing and reading the compositions: MIDI, WAV (``audio`` extra), MusicXML (``data`` extra).

- MIDI through :func:`melody_env.io.midi_writer.write_midi` (pretty_midi, always available).
- WAV through FluidSynth with the General MIDI soundfont bundled with pretty_midi
  (``pretty_midi.PrettyMIDI.fluidsynth``). Needs ``pip install 'melody-rl[audio]'``
  (pyfluidsynth) and the FluidSynth library (Debian/Ubuntu: ``apt-get install libfluidsynth3``);
  without them :func:`write_wav` raises :class:`AudioUnavailableError` saying so.
- MusicXML through music21, for notation software (MuseScore, Sibelius, ...).

Every file is written atomically.
"""

from __future__ import annotations

import io
import os
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from melody_env.atomic import atomic_write_bytes
from melody_env.io.midi_writer import (
    DEFAULT_QPM,
    STEPS_PER_QUARTER,
    tokens_to_pretty_midi,
    write_midi,
)
from melody_env.music.encoding import NO_EVENT, NOTE_OFF, TOKEN_PITCHES, validate_tokens
from melody_env.music.keys import Key

AUDIO_HELP = (
    "WAV export needs pyfluidsynth and the FluidSynth library: pip install 'melody-rl[audio]' "
    "and install FluidSynth (Debian/Ubuntu: apt-get install libfluidsynth3; macOS: brew install "
    "fluid-synth). MIDI files need neither."
)
SAMPLE_RATE = 44_100


class AudioUnavailableError(RuntimeError):
    """WAV export was asked for but pyfluidsynth or the FluidSynth library is missing."""


def check_audio() -> None:
    """Raise :class:`AudioUnavailableError` (with the install instructions) unless FluidSynth
    can be used."""
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; loads libfluidsynth at import)
    except (ImportError, OSError) as error:
        raise AudioUnavailableError(f"{AUDIO_HELP} ({type(error).__name__}: {error})") from error


def write_wav(
    path: str | os.PathLike,
    tokens: Sequence[int] | np.ndarray,
    qpm: float = DEFAULT_QPM,
    sample_rate: int = SAMPLE_RATE,
) -> Path:
    """Render ``tokens`` to a 16-bit mono WAV with FluidSynth (pretty_midi's bundled soundfont).

    Raises:
        AudioUnavailableError: pyfluidsynth or the FluidSynth library is missing.
    """
    check_audio()
    audio = tokens_to_pretty_midi(tokens, qpm=qpm).fluidsynth(fs=sample_rate)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    pcm = (audio / peak * 0.9 * 32767 if peak > 0 else audio).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def melody_events(tokens: Sequence[int] | np.ndarray) -> list[tuple[int | None, int]]:
    """``(pitch or None for silence, length in steps)`` for each note and rest, in order.

    A note lasts until the next onset or rest token; leading holds are silence.

    >>> melody_events([0, 14, 0, 1, 0, 16])
    [(None, 1), (60, 2), (None, 2), (62, 1)]
    """
    tokens = validate_tokens(tokens)
    events: list[tuple[int | None, int]] = []
    for token in tokens.tolist():
        if token == NO_EVENT and events:
            events[-1] = (events[-1][0], events[-1][1] + 1)
        elif token in (NO_EVENT, NOTE_OFF):
            if events and events[-1][0] is None:
                events[-1] = (None, events[-1][1] + 1)
            else:
                events.append((None, 1))
        else:
            events.append((int(TOKEN_PITCHES[token]), 1))
    return events


def tokens_to_score(
    tokens: Sequence[int] | np.ndarray, key: Key | str = "C major", qpm: float = DEFAULT_QPM
):
    """A music21 score of the melody: 4/4, the key's signature, sixteenths as 0.25 quarters."""
    try:
        import music21
    except ImportError as error:
        raise ImportError("MusicXML export needs music21: pip install 'melody-rl[data]'") from error
    key = Key.from_name(key)
    part = music21.stream.Part()
    part.append(music21.tempo.MetronomeMark(number=qpm))
    part.append(music21.meter.TimeSignature("4/4"))
    tonic = key.name.split()[0]
    part.append(music21.key.Key(tonic if key.mode == "major" else tonic.lower(), key.mode))
    for pitch, steps in melody_events(tokens):
        length = steps / STEPS_PER_QUARTER
        element = (
            music21.note.Rest(quarterLength=length)
            if pitch is None
            else music21.note.Note(pitch, quarterLength=length)
        )
        part.append(element)
    score = music21.stream.Score([part.makeNotation()])
    return score


def write_musicxml(
    path: str | os.PathLike,
    tokens: Sequence[int] | np.ndarray,
    key: Key | str = "C major",
    qpm: float = DEFAULT_QPM,
) -> Path:
    """Write the melody as uncompressed MusicXML for notation software."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    data = GeneralObjectExporter(tokens_to_score(tokens, key, qpm)).parse()
    atomic_write_bytes(path, data)
    return Path(path)


def export_samples(
    tokens: np.ndarray,
    out: str | os.PathLike,
    key: Key | str = "C major",
    qpm: float = DEFAULT_QPM,
    wav: bool = False,
    musicxml: bool = False,
) -> list[Path]:
    """Write ``sample_000.mid`` ... (and ``.wav``, ``.musicxml``) for each composition in ``out``.

    WAV is checked before anything is written, so a missing FluidSynth fails fast.
    """
    if wav:
        check_audio()
    out = Path(out)
    tokens = np.atleast_2d(np.asarray(tokens))
    width = max(3, len(str(len(tokens) - 1)))
    written = []
    for index, composition in enumerate(tokens):
        stem = out / f"sample_{index:0{width}d}"
        write_midi(stem.with_suffix(".mid"), composition, qpm=qpm)
        written.append(stem.with_suffix(".mid"))
        if wav:
            written.append(write_wav(stem.with_suffix(".wav"), composition, qpm=qpm))
        if musicxml:
            written.append(write_musicxml(stem.with_suffix(".musicxml"), composition, key, qpm))
    return written
