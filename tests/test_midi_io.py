"""MIDI reading: the pure note encoder, then read_primer on files written into tmp_path."""

from __future__ import annotations

import mido
import numpy as np
import pretty_midi
import pytest

from melody_env.io import midi_reader
from melody_env.io.midi_reader import estimate_key, read_primer, tokens_from_notes
from melody_env.io.midi_writer import write_midi
from melody_env.music.keys import Key

# C4 D4 E4 F4 G4 A4 B4 C5 as eighth notes (two sixteenths each).
C_SCALE = [60, 62, 64, 65, 67, 69, 71, 72]
C_SCALE_TOKENS = [14, 0, 16, 0, 18, 0, 19, 0, 21, 0, 23, 0, 25, 0, 26, 0]


def write_notes(path, notes, qpm=120.0, is_drum=False, key_number=None, program=0):
    """Write ``(pitch, start_seconds, end_seconds)`` notes as one instrument; return ``path``."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=qpm)
    instrument = pretty_midi.Instrument(program=program, is_drum=is_drum)
    instrument.notes = [pretty_midi.Note(100, p, s, e) for p, s, e in notes]
    midi.instruments.append(instrument)
    if key_number is not None:
        midi.key_signature_changes.append(pretty_midi.KeySignature(key_number, 0.0))
    midi.write(str(path))
    return path


def scale_notes(pitches, start=0.0, eighth=0.25):
    return [(p, start + i * eighth, start + (i + 1) * eighth) for i, p in enumerate(pitches)]


# --- tokens_from_notes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notes", "expected"),
    [
        pytest.param([(60, 0, 4)], [14, 0, 0, 0], id="quarter note"),
        pytest.param([(60, 0, 2), (62, 4, 6)], [14, 0, 1, 0, 16, 0], id="rest between notes"),
        pytest.param([(60, 0, 2), (62, 2, 4)], [14, 0, 16, 0], id="legato"),
        pytest.param([(60, 0, 6), (62, 2, 4)], [14, 0, 16, 0], id="overlap cut at next onset"),
        pytest.param([(55, 0, 4), (67, 0, 2)], [21, 0], id="same onset: highest wins"),
        pytest.param([(62, 4, 6), (60, 0, 2)], [14, 0, 1, 0, 16, 0], id="unsorted input"),
        pytest.param([(60, 3, 3)], [1, 0, 0, 14], id="zero length keeps one step"),
        pytest.param([(60, 2, 3), (60, 3, 4)], [1, 0, 14, 14], id="leading silence, repeat"),
        pytest.param([(48, 0, 1), (83, 1, 2)], [2, 37], id="range ends"),
        pytest.param([], [], id="no notes"),
    ],
)
def test_tokens_from_notes(notes, expected):
    tokens = tokens_from_notes(notes)
    assert tokens.dtype == np.int64
    assert tokens.tolist() == expected


@pytest.mark.parametrize(
    ("notes", "message"),
    [
        ([(47, 0, 1)], "47"),
        ([(84, 0, 1)], "84"),
        ([(60, -1, 1)], "start"),
        ([(60, 0)], "triples"),
        ([("C4", 0, 1)], "integers"),
    ],
)
def test_tokens_from_notes_rejects_bad_notes(notes, message):
    with pytest.raises(ValueError, match=message):
        tokens_from_notes(notes)


# --- key estimation ---------------------------------------------------------------------------


def test_estimate_key_on_scales():
    assert estimate_key(C_SCALE) == Key(0, "major")
    assert estimate_key([p + 2 for p in C_SCALE]) == Key(2, "major")
    assert estimate_key([57, 59, 60, 62, 64, 65, 67, 69]) == Key(9, "minor")
    assert estimate_key([]) == Key(0, "major")


@pytest.mark.parametrize(("source", "shift"), [(0, 0), (2, -2), (5, -5), (6, -6), (7, 5), (11, 1)])
def test_transposition_takes_smallest_interval(source, shift):
    assert Key(source, "major").semitones_to(Key(0, "major")) == shift


# --- read_primer ------------------------------------------------------------------------------


def test_c_major_scale_exact_tokens(tmp_path):
    path = write_notes(tmp_path / "c.mid", scale_notes(C_SCALE))
    tokens = read_primer(path)
    assert tokens.dtype == np.int64
    assert tokens.tolist() == C_SCALE_TOKENS


def test_leading_silence_is_dropped(tmp_path):
    path = write_notes(tmp_path / "late.mid", scale_notes(C_SCALE, start=1.25))
    assert read_primer(path).tolist() == C_SCALE_TOKENS


def test_gap_becomes_rest_and_slightly_off_grid_notes_snap(tmp_path):
    notes = [(60, 0.01, 0.49), (64, 0.99, 1.24)]  # a quarter, a quarter rest, an eighth at 120 bpm
    path = write_notes(tmp_path / "gap.mid", notes)
    assert read_primer(path).tolist() == [14, 0, 0, 0, 1, 0, 0, 0, 18, 0]


def test_d_major_scale_transposed_to_c(tmp_path):
    path = write_notes(tmp_path / "d.mid", scale_notes([p + 2 for p in C_SCALE]))
    assert read_primer(path, key="C major").tolist() == C_SCALE_TOKENS
    assert read_primer(path, key=Key(0, "major")).tolist() == C_SCALE_TOKENS


def test_c_scale_into_g_moves_down_a_fourth(tmp_path):
    path = write_notes(tmp_path / "c.mid", scale_notes(C_SCALE))
    expected = [t - 5 if t > 1 else t for t in C_SCALE_TOKENS]
    assert read_primer(path, key="G major").tolist() == expected


def test_minor_piece_keeps_its_mode(tmp_path):
    a_minor = [57, 59, 60, 62, 64, 65, 67, 69]
    path = write_notes(tmp_path / "am.mid", scale_notes(a_minor))
    tokens = read_primer(path, key="C major")
    # A moves to C (+3): the tune is now in C minor.
    assert tokens[::2].tolist() == [p + 3 - 46 for p in a_minor]


def test_key_signature_overrides_estimate(tmp_path):
    # C major material, but the file says G major: treated as G and moved up a fourth to C (+5).
    path = write_notes(tmp_path / "sig.mid", scale_notes(C_SCALE), key_number=7)
    expected = [t + 5 if t > 1 else t for t in C_SCALE_TOKENS]
    assert read_primer(path).tolist() == expected


def test_out_of_range_notes_are_folded(tmp_path):
    notes = [(36, 0.0, 0.25), (88, 0.25, 0.5), (103, 0.5, 1.0)]  # C2, E6, G7
    path = write_notes(tmp_path / "wide.mid", notes)
    assert read_primer(path).tolist() == [2, 0, 30, 0, 33, 0, 0, 0]  # C3, E5, G5


def test_polyphony_takes_skyline(tmp_path):
    notes = [
        (48, 0.0, 2.0),  # bass C3 held under everything
        (60, 0.0, 0.5),
        (64, 0.0, 0.5),
        (67, 0.0, 0.5),  # C major triad: G4 wins
        (65, 0.5, 1.5),  # F4 held into the next onset: cut there
        (69, 0.5, 1.0),
        (72, 0.5, 1.0),  # F major triad: C5 wins
        (71, 1.0, 1.5),  # B4 alone
    ]
    path = write_notes(tmp_path / "chords.mid", notes)
    # 5 notes lose to a higher one starting with them; at onsets 0 and 0.5 a note (C3, F4)
    # still sounds at the next onset
    with pytest.warns(midi_reader.PolyphonicPrimerWarning, match="5 of 8 notes dropped, 2 cut"):
        assert read_primer(path).tolist() == [21, 0, 0, 0, 26, 0, 0, 0, 25, 0, 0, 0]


def test_a_monophonic_line_reads_without_a_warning(tmp_path):
    import warnings

    path = write_notes(tmp_path / "line.mid", [(60, 0.0, 0.5), (62, 0.5, 1.0), (64, 1.5, 2.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_primer(path).tolist() == [14, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 18, 0, 0, 0]


def test_first_pitched_instrument_is_used(tmp_path):
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes = [pretty_midi.Note(100, 36, 0.0, 0.25)]
    empty = pretty_midi.Instrument(program=1)
    melody = pretty_midi.Instrument(program=0)
    melody.notes = [pretty_midi.Note(100, p, s, e) for p, s, e in scale_notes(C_SCALE)]
    second = pretty_midi.Instrument(program=40)
    second.notes = [pretty_midi.Note(100, 84, 0.0, 4.0)]  # a high C pedal: not the melody
    midi.instruments.extend([drums, empty, melody, second])
    path = tmp_path / "band.mid"
    midi.write(str(path))
    assert read_primer(path).tolist() == C_SCALE_TOKENS


def test_round_trip_with_writer_at_80_qpm(tmp_path):
    tokens = [14, 0, 0, 0, 16, 0, 1, 0, 18, 0, 0, 0, 19, 0, 21, 0, 0, 0, 0, 0, 14, 0, 0, 0]
    path = tmp_path / "written.mid"
    write_midi(path, tokens)  # 80 QPM
    assert read_primer(path).tolist() == tokens


def test_tempo_changes_follow_score_time(tmp_path):
    # Quarter notes C4 E4 G4 C5; the tempo halves after the second one.
    file = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
    for i, pitch in enumerate([60, 64, 67, 72]):
        if i == 2:
            track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60), time=0))
        track.append(mido.Message("note_on", note=pitch, velocity=100, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=480))
    file.tracks.append(track)
    path = tmp_path / "tempo.mid"
    file.save(str(path))
    assert read_primer(path).tolist() == [14, 0, 0, 0, 18, 0, 0, 0, 21, 0, 0, 0, 26, 0, 0, 0]


def test_max_steps_keeps_the_end(tmp_path):
    path = write_notes(tmp_path / "c.mid", scale_notes(C_SCALE))
    assert read_primer(path, max_steps=4).tolist() == C_SCALE_TOKENS[-4:]
    # A cut inside a note re-strikes it, so the primer does not begin with a hold.
    assert read_primer(path, max_steps=3).tolist() == [25, 26, 0]
    assert read_primer(path, max_steps=100).tolist() == C_SCALE_TOKENS


def test_max_steps_cut_in_silence_is_a_rest(tmp_path):
    path = write_notes(tmp_path / "gap.mid", [(60, 0.0, 0.25), (62, 1.0, 1.25)])
    assert read_primer(path).tolist() == [14, 0, 1, 0, 0, 0, 0, 0, 16, 0]
    assert read_primer(path, max_steps=4).tolist() == [1, 0, 16, 0]


@pytest.mark.parametrize("max_steps", [0, -3, 2.5, True, "8"])
def test_bad_max_steps(tmp_path, max_steps):
    path = write_notes(tmp_path / "c.mid", scale_notes(C_SCALE))
    with pytest.raises(ValueError, match="max_steps"):
        read_primer(path, max_steps=max_steps)


def test_bad_key(tmp_path):
    path = write_notes(tmp_path / "c.mid", scale_notes(C_SCALE))
    with pytest.raises(ValueError, match="unknown key"):
        read_primer(path, key="H major")


# --- errors -----------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mid"
    with pytest.raises(FileNotFoundError, match=r"nope\.mid"):
        read_primer(path)


def test_directory_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        read_primer(tmp_path)


def test_drum_only_file(tmp_path):
    path = write_notes(tmp_path / "drums.mid", scale_notes([36, 38, 42, 38]), is_drum=True)
    with pytest.raises(ValueError, match="drum") as info:
        read_primer(path)
    assert "drums.mid" in str(info.value)


def test_file_without_notes(tmp_path):
    path = write_notes(tmp_path / "silent.mid", [])
    with pytest.raises(ValueError, match="no notes"):
        read_primer(path)
    bare = tmp_path / "bare.mid"
    pretty_midi.PrettyMIDI().write(str(bare))
    with pytest.raises(ValueError, match="no notes"):
        read_primer(bare)


def test_truncated_file(tmp_path):
    valid = write_notes(tmp_path / "c.mid", scale_notes(C_SCALE))
    path = tmp_path / "truncated.mid"
    path.write_bytes(valid.read_bytes()[:20])
    with pytest.raises(ValueError, match=r"truncated\.mid.*not a readable MIDI file"):
        read_primer(path)


@pytest.mark.parametrize("data", [b"", b"hello, not midi", bytes(range(256)) * 4])
def test_garbage_files(tmp_path, data):
    path = tmp_path / "garbage.mid"
    rng = np.random.default_rng(0)
    path.write_bytes(data + rng.integers(0, 256, 64, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"garbage\.mid.*not a readable MIDI file") as info:
        read_primer(path)
    assert info.value.__cause__ is not None


def test_every_truncation_is_a_value_error(tmp_path):
    data = write_notes(tmp_path / "c.mid", scale_notes(C_SCALE)).read_bytes()
    path = tmp_path / "cut.mid"
    for length in range(0, len(data), 7):
        path.write_bytes(data[:length])
        try:
            read_primer(path)
        except ValueError as error:
            assert "cut.mid" in str(error)


def test_too_large_file(tmp_path, monkeypatch):
    path = write_notes(tmp_path / "c.mid", scale_notes(C_SCALE))
    monkeypatch.setattr(midi_reader, "MAX_FILE_BYTES", 50)
    with pytest.raises(ValueError, match=r"c\.mid.*too large.*bytes"):
        read_primer(path)


def test_too_many_notes(tmp_path, monkeypatch):
    path = write_notes(tmp_path / "c.mid", scale_notes(C_SCALE))
    monkeypatch.setattr(midi_reader, "MAX_NOTES", 7)
    with pytest.raises(ValueError, match=r"c\.mid.*too large.*8 notes"):
        read_primer(path)


def test_too_long_melody(tmp_path, monkeypatch):
    path = write_notes(tmp_path / "c.mid", scale_notes(C_SCALE))
    monkeypatch.setattr(midi_reader, "MAX_SONG_STEPS", 15)
    with pytest.raises(ValueError, match=r"c\.mid.*too long"):
        read_primer(path)


def test_a_primer_rewritten_with_the_same_mtime_is_read_again(tmp_path):
    import os

    from melody_env.envs.priming import resolve_primer

    path = write_notes(tmp_path / "p.mid", [(60, 0.0, 0.5), (64, 0.5, 1.0), (67, 1.0, 1.5)])
    before = path.stat()
    rng = np.random.default_rng(0)
    first = resolve_primer(str(path), Key.from_name("C major"), rng)
    write_notes(path, [(60, 0.0, 0.5), (62, 0.5, 1.0), (67, 1.0, 1.5)])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    second = resolve_primer(str(path), Key.from_name("C major"), rng)
    assert first.tolist() != second.tolist()
