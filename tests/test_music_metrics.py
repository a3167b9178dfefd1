"""The music statistics (diversity, exploit watch, histograms) on hand-written melodies.

Melodies are note names (``C4`` = MIDI 60, token 14), ``hold`` (0) and ``rest`` (1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from melody_env.evaluation import music
from melody_env.evaluation.metrics import score_compositions
from tests.conftest import tokens


def melodies(*texts: str) -> np.ndarray:
    return np.array([tokens(text) for text in texts])


def test_distinct_compositions_openings_and_top_share():
    batch = melodies(
        "C4 hold D4 hold E4 hold F4 hold G4",  # opening A
        "C4 hold D4 hold E4 hold F4 hold A4",  # opening A, another composition
        "C4 hold D4 hold E4 hold F4 hold G4",  # a copy of the first
        "D4 hold D4 hold E4 hold F4 hold G4",  # opening B
    )
    assert music.distinct_compositions(batch) == 3
    assert music.distinct_openings(batch) == 2
    assert music.top_opening_share(batch) == 0.75
    assert music.opening_counts(batch).tolist() == [3, 1]
    assert music.distinct_openings(batch, length=9) == 3


def test_distinct_4grams_are_within_compositions_and_pooled():
    # Row 1's 4-grams: (C4 D4 E4 F4), (D4 E4 F4 G4); row 2: (C4 D4 E4 F4), (D4 E4 F4 A4).
    # Across the row boundary (G4 | C4 D4 E4) is not a 4-gram.
    batch = melodies("C4 D4 E4 F4 G4", "C4 D4 E4 F4 A4")
    assert music.distinct_ngrams(batch, 4) == 3
    assert music.distinct_ngrams(batch, 5) == 2
    assert music.distinct_ngrams(batch, 6) == 0
    assert music.diversity(batch) == {
        "distinct_compositions": 2,
        "distinct_openings": 2,  # shorter than 8 tokens: the whole composition
        "top_opening_share": 0.5,
        "distinct_4grams": 3,
    }


def test_notes_end_at_the_next_onset_a_rest_or_the_end():
    melody_index, onset, duration = music.notes(
        [np.array(tokens("hold C4 hold hold rest hold D4 E4 hold"))]
    )
    assert onset.tolist() == tokens("C4 D4 E4")
    assert duration.tolist() == [3, 1, 2]  # C4 stops at the rest; E4 at the melody's end
    assert melody_index.tolist() == [0, 0, 0]


def test_notes_do_not_run_into_the_next_melody():
    _, _, duration = music.notes([np.array(tokens("C4 hold")), np.array(tokens("hold D4"))])
    assert duration.tolist() == [2, 1]


def test_repetition_limit_is_the_longest_unpenalised_hold():
    assert music.REPETITION_LIMIT_DURATION == 6  # the onset and five holds
    held = score_compositions(melodies("C3 " + "hold " * 5 + "rest D4"))
    too_long = score_compositions(melodies("C3 " + "hold " * 6 + "D4"))
    assert held["excessively_repeated"][0] == 0 and too_long["excessively_repeated"][0] == 1


def test_exploit_watch_columns():
    batch = melodies(
        "C3 hold hold hold hold hold C#5 C4",  # the exploit: C3 held 6, then leaps of 13 and 13
        "rest B5 hold hold hold hold hold hold",  # starts on the highest, held 7 (past the limit)
        "E4 hold hold hold hold hold C3 hold",  # held 6 but not on the edge; leap 16
        "rest rest hold hold hold hold hold hold",  # no note at all
    )
    columns = music.music_columns(batch)
    assert columns["starts_on_lowest"].tolist() == [1, 0, 0, 0]
    assert columns["starts_on_highest"].tolist() == [0, 1, 0, 0]
    assert columns["notes_at_repetition_limit"].tolist() == [1, 0, 1, 0]
    assert columns["octave_leaps"].tolist() == [2, 0, 1, 0]
    assert columns["onsets"].tolist() == [3, 1, 2, 0]


def test_octave_leaps_agree_with_the_table_1_interval_counts():
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 38, size=(50, 16))
    table = score_compositions(batch)
    np.testing.assert_array_equal(
        music.music_columns(batch)["octave_leaps"], table["interval/octave_jumps"]
    )


def test_first_onset_skips_holds_and_rests():
    assert music.first_onsets(melodies("hold rest E4 C3", "rest rest rest rest")).tolist() == [
        tokens("E4")[0],
        -1,
    ]


def test_interval_histogram_bins_and_pooling():
    # C3 -> C5 is 24 semitones, C5 -> B5 11, B5 -> C3 35 (pooled into bin 24), C3 -> C3 0.
    histogram = music.interval_histogram(melodies("C3 rest C5 B5 C3 hold C3"))
    assert histogram.shape == (25,)
    assert histogram[24] == 2 and histogram[11] == 1 and histogram[0] == 1
    assert histogram.sum() == 4


def test_duration_histogram_bins_and_pooling():
    long_note = "C4 " + "hold " * 20  # 21 sixteenths: pooled into the last bin
    histogram = music.duration_histogram([np.array(tokens(long_note + "D4 hold rest E4"))])
    assert histogram.shape == (16,)
    assert histogram[15] == 1 and histogram[1] == 1 and histogram[0] == 1
    assert histogram.sum() == 3


def test_pitch_class_histogram_transposes_to_the_corpus_keys():
    assert music.pitch_class_histogram(melodies("C4 E4 G4 C5"))[[0, 4, 7]].tolist() == [2, 1, 1]
    # G major's tonic moves to C; A minor stays on A (the corpus keeps minor tunes in A).
    g_major = music.pitch_class_histogram(melodies("G4 B4 D5"), "G major")
    assert g_major[[0, 4, 7]].tolist() == [1, 1, 1]
    e_minor = music.pitch_class_histogram(melodies("E4 G4 B4"), "E minor")
    assert e_minor[[9, 0, 4]].tolist() == [1, 1, 1]
    assert music.key_shift("A minor") == 0 and music.key_shift("D major") == 10


def test_histogram_overlap_by_hand():
    assert music.histogram_overlap(np.array([1, 1, 0, 0]), np.array([1, 1, 0, 0])) == 1.0
    assert music.histogram_overlap(np.array([1, 0]), np.array([0, 5])) == 0.0
    # p = (0.5, 0.5, 0), q = (0.25, 0.25, 0.5): min sum = 0.5
    assert music.histogram_overlap(np.array([2, 2, 0]), np.array([1, 1, 2])) == 0.5
    assert math.isnan(music.histogram_overlap(np.zeros(3), np.ones(3)))
    with pytest.raises(ValueError, match="shape"):
        music.histogram_overlap(np.ones(3), np.ones(4))


def test_overlaps_against_a_reference():
    batch = melodies("C4 D4 E4 hold")
    reference = music.histograms([np.array(tokens("C4 D4 E4 hold"))])
    assert music.overlaps(batch, reference) == {
        "pitch_class_overlap": 1.0,
        "interval_overlap": 1.0,
        "duration_overlap": 1.0,
    }


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match=r"\[n, L\]"):
        music.distinct_compositions(np.array([2, 3, 4]))
    with pytest.raises(ValueError, match="melodies"):
        music.notes(np.array([[2, 40]]))
