"""Each music-theory rule on hand-written melodies, with the reward each step must get.

Melodies are written as note names (``C4`` = MIDI 60), ``hold`` (token 0) and ``rest`` (token 1).
Every rule is checked in C major and in at least one other key.
"""

from __future__ import annotations

import pytest

from tests.conftest import score_melody


def rule(term: str, melody: str, key: str = "C major", length: int | None = None) -> list[float]:
    return score_melody(melody, key, length)[term]


@pytest.mark.parametrize(
    ("key", "melody", "expected"),
    [
        ("C major", "C4 C#4 hold rest F#4 B5", [0, -1, 0, 0, -1, 0]),
        ("G major", "G4 F#4 F4 hold C3", [0, 0, -1, 0, 0]),
        ("A minor", "A4 G#4 C5 G4", [0, -1, 0, 0]),
        ("F# major", "F#4 F4 C#5 C5 B4", [0, 0, 0, -1, 0]),  # F natural is E#
    ],
)
def test_key(key, melody, expected):
    assert rule("key", melody, key) == expected


@pytest.mark.parametrize(
    ("key", "melody", "expected"),
    [
        # length 8: tonic at steps 0 and 4, hold at 5, hold or rest at 6 and 7.
        ("C major", "C4 D4 E4 F4 C5 hold hold rest", [3, 0, 0, 0, 3, 3, 3, 3]),
        ("C major", "C3 E4 G4 E4 G4 rest hold D4", [3, 0, 0, 0, 0, 0, 3, 0]),
        ("C major", "D4 C4 C4 C4 E4 hold rest hold", [0, 0, 0, 0, 0, 3, 3, 3]),
        ("G major", "G3 A3 B3 C4 G5 hold rest rest", [3, 0, 0, 0, 3, 3, 3, 3]),
        ("G major", "C4 D4 E4 F#4 G4 rest hold hold", [0, 0, 0, 0, 3, 0, 3, 3]),
        ("A minor", "A3 B3 C4 D4 A4 hold hold hold", [3, 0, 0, 0, 3, 3, 3, 3]),
    ],
)
def test_tonic(key, melody, expected):
    assert rule("tonic", melody, key) == expected


@pytest.mark.parametrize(
    ("melody", "expected"),
    [
        # The sixth identical attack in a row.
        ("C4 C4 C4 C4 C4 C4", [0, 0, 0, 0, 0, -100]),
        # With holds between, the eighth.
        (
            "C4 hold C4 hold C4 hold C4 hold C4 hold C4 hold C4 C4",
            [0] * 13 + [-100],
        ),
        # A note held past six sixteenths: the sixth hold in a row.
        ("C4 hold hold hold hold hold hold", [0, 0, 0, 0, 0, 0, -100]),
        # A third note-off in a run, holds or not in between.
        ("C4 rest rest rest", [0, 0, 0, -100]),
        ("C4 rest hold rest hold rest", [0, 0, 0, 0, 0, -100]),
        # A different pitch ends the run.
        ("C4 C4 C4 C4 C4 D4 C4", [0] * 7),
    ],
)
@pytest.mark.parametrize("key", ["C major", "D minor"])
def test_repeated_notes(melody, expected, key):
    assert rule("repeated_notes", melody, key) == expected


@pytest.mark.parametrize(
    ("key", "melody", "expected"),
    [
        # Onsets 60 64 60 64: rho_1 = -0.5; then -2/3 and 1/6; then -0.75, 0.5, -0.25.
        ("C major", "C4 E4 C4 E4", [0, -1.5, -2.5, -4.5]),
        # Holds and rests are not part of the melodic line.
        ("C major", "C4 hold E4 rest", [0, 0, -1.5, -1.5]),
        # A transposed line has the same autocorrelation.
        ("G major", "G4 B4 G4 B4", [0, -1.5, -2.5, -4.5]),
    ],
)
def test_autocorrelation(key, melody, expected):
    assert rule("autocorrelation", melody, key) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("key", "melody", "expected"),
    [
        ("C major", "C4 D4 E4 hold hold hold hold hold", [0] * 7 + [3.0]),
        ("C major", "C4 D4 E4 F4 G4 A4 B4 C5 hold", [0] * 7 + [4.5, 4.2]),
        ("C major", "C4 D4 hold hold hold hold hold hold", [0] * 8),
        ("G major", "G4 A4 B4 rest G4 A4 B4 rest", [0] * 7 + [3.0]),
    ],
)
def test_motif(key, melody, expected):
    assert rule("motif", melody, key) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("key", "motif", "expected_last"),
    [
        ("C major", "C4 D4 E4 hold C4 D4 E4 hold", 4.0),
        ("C major", "C4 D4 E4 F4 G4 hold hold hold", 6.0),
        ("E minor", "E4 F#4 G4 B4 hold hold rest hold", 5.0),
    ],
)
def test_repeated_motif(key, motif, expected_last):
    values = rule("repeated_motif", f"{motif} {motif}", key)
    assert values == [0] * 15 + [expected_last]


def test_repeated_motif_copy_must_end_before_the_window_starts():
    """With a period of 7, the window at step 14 equals the first one, which overlaps it by a
    token: not a repeat. The first copy entirely before it comes at step 21 (7 pitches: 4 + 4)."""
    melody = " ".join((["C4", "D4", "E4", "F4", "G4", "A4", "B4"] * 4)[:22])
    assert rule("repeated_motif", melody) == [0] * 21 + [8.0]


def test_repeated_motif_needs_a_motif():
    assert rule("repeated_motif", "C4 D4 hold hold hold hold hold hold " * 2) == [0] * 16


@pytest.mark.parametrize(
    ("key", "melody", "second_step"),
    [
        ("C major", "C4 D4", 0.4),  # major second
        ("C major", "C4 E4", 0.75),  # third inside the tonic triad
        ("C major", "E4 G4", 0.75),  # minor third inside the tonic triad
        ("C major", "D4 F#4", 0.45),  # other major third
        ("C major", "D4 F4", 0.0),  # other minor third
        ("C major", "C4 G4", 0.5),  # tonic to dominant
        ("C major", "G4 C4", 0.5),  # dominant down to tonic
        ("C major", "G4 D5", 0.1),  # other fifth
        ("C major", "C4 F4", 0.35),
        ("C major", "C4 A4", 0.25),
        ("C major", "C4 B4", -1.5),
        ("C major", "C4 C5", 0.0),
        ("C major", "C4 D5", -5.0),
        ("C major", "C4 C#4", 0.0),
        ("C major", "C4 C4", 0.0),
        ("C major", "C4 hold", 1.5),  # hold after the tonic
        ("C major", "D4 hold", 0.375),
        ("C major", "G4 rest", 0.75),  # rest after the dominant
        ("C major", "D4 rest", 0.25),
        ("C major", "hold hold", 0.0),  # no previous note
        ("G major", "G4 B4", 0.75),
        ("G major", "G4 D5", 0.5),
        ("G major", "C4 G4", 0.1),
        ("G major", "D5 hold", 1.5),
        ("G major", "C4 hold", 0.375),
        ("A minor", "A4 C5", 0.75),
        ("A minor", "C5 E5", 0.75),
        ("A minor", "A4 E5", 0.5),
        ("A minor", "E4 rest", 0.75),
    ],
)
def test_preferred_intervals(key, melody, second_step):
    assert rule("preferred_intervals", melody, key) == pytest.approx([0.0, second_step])


def test_preferred_intervals_look_back_over_holds_and_rests():
    assert rule("preferred_intervals", "C4 rest hold E4") == pytest.approx([0, 0.75, 1.5, 0.75])


@pytest.mark.parametrize(
    ("key", "melody", "expected"),
    [
        # Leap up a fifth, then a gradual return to where it started.
        ("C major", "C4 G4 F4 E4 D4 C4", [0, 0, 0, 0, 0, 5]),
        ("C major", "C4 G4 hold F4 hold C4", [0, 0, 0, 0, 0, 5]),
        # A second leap in the same direction.
        ("C major", "C4 G4 D5", [0, 0, -5]),
        # Leaping straight back clears the leap but is not a resolution...
        ("C major", "C4 G4 C4 E4", [0, 0, 0, 0]),
        # ...unless more than six steps passed.
        ("C major", "C4 G4 hold hold hold hold hold hold hold C4", [0] * 9 + [5]),
        # A downward leap resolved upwards.
        ("C major", "C5 F4 G4 A4 B4 C5", [0, 0, 0, 0, 0, 5]),
        ("G major", "G3 D4 C4 B3 A3 G3", [0, 0, 0, 0, 0, 5]),
        ("G major", "G3 D4 A4", [0, 0, -5]),
    ],
)
def test_leap_resolution(key, melody, expected):
    assert rule("leap_resolution", melody, key) == expected


@pytest.mark.parametrize(
    ("key", "melody", "last"),
    [
        ("C major", "C4 E4 G4 C4", 3.0),  # unique top, doubled bottom
        ("C major", "C4 E4 G4 D4", 6.0),
        ("C major", "hold hold hold rest", 0.0),
        ("C major", "C4 hold hold hold", 6.0),
        ("G major", "G4 G4 D5 D5", 0.0),
        ("G major", "G4 B4 D5 A4", 6.0),
    ],
)
def test_unique_extremes(key, melody, last):
    assert rule("unique_extremes", melody, key) == [0, 0, 0, last]


def test_music_theory_is_the_sum_of_the_nine_rules():
    scored = score_melody("C4 E4 G4 C5 hold G4 E4 C4 D4 hold hold rest C4 hold hold hold")
    nine = [name for name in scored if name != "music_theory"]
    assert len(nine) == 9
    for step, total in enumerate(scored["music_theory"]):
        assert total == pytest.approx(sum(scored[name][step] for name in nine))
