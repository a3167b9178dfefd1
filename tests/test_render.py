"""Text and RGB piano rolls."""

from __future__ import annotations

import numpy as np
import pytest

from melody_env.io.render import (
    BAR_LINE,
    IN_KEY_ROW,
    NOTE_BODY,
    NOTE_ONSET,
    OUT_OF_KEY_ROW,
    render_ansi,
    render_rgb,
    sounding_pitches,
)
from melody_env.music.encoding import MAX_PITCH
from melody_env.music.keys import Key

C_MAJOR = Key.from_name("C major")
# Two bars: C4 E4 G4 C5 quarters, then F#4 (out of key) and a rest, then B3.
MELODY = [14, 0, 0, 0, 18, 0, 0, 0, 21, 0, 0, 0, 26, 0, 0, 0]
MELODY += [20, 0, 0, 0, 1, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0]


def test_sounding_pitches():
    pitch, onset = sounding_pitches([0, 14, 0, 1, 16, 16])
    assert pitch.tolist() == [-1, 60, 60, -1, 62, 62]
    assert onset.tolist() == [False, True, False, False, True, True]
    pitch, onset = sounding_pitches([])
    assert pitch.shape == onset.shape == (0,)


def test_ansi_exact_four_steps():
    text = render_ansi([14, 0, 16, 1], C_MAJOR, step=None)
    assert text == "\n".join(
        [
            "C major | 4 steps | * = out of key",
            "*D#4 |:...|",
            " D4  |:.#.|",
            "*C#4 |:...|",
            " C4  |#=..|",
            " B3  |:...|",
            "tokens: C4:2 D4:1 rest:1",
        ]
    )


def test_ansi_two_bars():
    text = render_ansi(MELODY, "C major", step=None)
    lines = text.splitlines()
    assert lines[0] == "C major | 32 steps | * = out of key"
    labels = [line[:5] for line in lines[1:-1]]
    assert labels[0] == "*C#5 " and labels[-1] == "*A#3 "  # one row of margin each side
    assert " C5  " in labels and "*F#4 " in labels and " B3  " in labels and "*A#3 " in labels
    c4 = next(line for line in lines if line.startswith(" C4  "))
    assert c4 == " C4  |#===:...:...:...|:...:...:...:...|"
    f_sharp = next(line for line in lines if line.startswith("*F#4 "))
    assert f_sharp == "*F#4 |:...:...:...:...|#===:...:...:...|"
    b3 = next(line for line in lines if line.startswith(" B3  "))
    assert b3 == " B3  |:...:...:...:...|:...:...#=======|"
    assert lines[-1] == "tokens: C4:4 E4:4 G4:4 C5:4 F#4:4 rest:4 B3:8"
    assert all(len(line) <= 80 for line in lines)
    assert all(line.count("|") == 3 for line in lines[1:-1])


def test_ansi_step_marks_the_next_column_and_hides_the_rest():
    text = render_ansi(MELODY, C_MAJOR, step=6)
    lines = text.splitlines()
    assert "step 6/32" in lines[0]
    e4 = next(line for line in lines if line.startswith(" E4  "))
    assert e4 == " E4  |:...#=" + " " * 10 + "|" + " " * 16 + "|"
    caret = lines[-2]
    assert caret.index("^") == e4.index("#") + 2
    assert lines[-1] == "tokens: C4:4 E4:2"
    # Only the composed part decides the rows: E4 + 1 down to C4 - 1.
    assert [line[:5] for line in lines[1:-2]] == [
        " F4  ",
        " E4  ",
        "*D#4 ",
        " D4  ",
        "*C#4 ",
        " C4  ",
        " B3  ",
    ]


def test_ansi_step_zero_and_end():
    empty = render_ansi(MELODY, C_MAJOR, step=0).splitlines()
    assert empty[-1] == "tokens: (none)"
    assert [line[:5] for line in empty[1:-2]] == ["*C#4 ", " C4  ", " B3  "]  # C4 +- 1
    assert render_ansi(MELODY, C_MAJOR, step=32) == render_ansi(MELODY, C_MAJOR, step=None).replace(
        "32 steps", "32 steps | step 32/32"
    )


def test_ansi_primer_is_drawn_first():
    text = render_ansi([0, 0, 16, 0], C_MAJOR, step=None, primer=[14, 0], steps_per_bar=4)
    lines = text.splitlines()
    assert "primer 2 steps" in lines[0]
    c4 = next(line for line in lines if line.startswith(" C4  "))
    d4 = next(line for line in lines if line.startswith(" D4  "))
    # The composition's leading holds continue the primer's C4 (drawn '=' as composed steps);
    # the bar starts with the composition, the primer runs up to it.
    assert c4 == " C4   o-|==..|"
    assert d4 == " D4   ..|:.#=|"
    assert lines[-1] == "tokens: hold:2 D4:2"


def test_ansi_wraps_long_footer():
    tokens = [14 + (i % 12) for i in range(64)]
    lines = render_ansi(tokens, C_MAJOR, step=None).splitlines()
    footer_start = next(i for i, line in enumerate(lines) if line.startswith("tokens:"))
    assert len(lines) - footer_start > 1
    assert all(len(line) <= 80 for line in lines[footer_start:])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step": 33}, "step"),
        ({"step": -1}, "step"),
        ({"step": None, "steps_per_bar": 0}, "steps_per_bar"),
        ({"step": None, "key": "X major"}, "unknown key"),
        ({"step": None, "primer": [40]}, "primer"),
    ],
)
def test_ansi_rejects_bad_arguments(kwargs, message):
    kwargs = {"key": C_MAJOR, **kwargs}
    with pytest.raises(ValueError, match=message):
        render_ansi(MELODY, **kwargs)


def pixel(image, pitch, step, cell=(8, 4)):
    """Centre pixel of the cell of ``pitch`` at ``step``."""
    width, height = cell
    row = MAX_PITCH - pitch
    return tuple(image[row * height + height // 2, step * width + width // 2])


def test_rgb_shape_dtype_and_stability():
    image = render_rgb(MELODY, C_MAJOR)
    assert image.shape == (36 * 4, 32 * 8, 3)
    assert image.dtype == np.uint8
    assert np.array_equal(image, render_rgb(MELODY, C_MAJOR))
    for empty in ([0] * 32, [1] * 32):
        blank = render_rgb(empty, C_MAJOR)
        assert blank.shape == image.shape and blank.dtype == np.uint8
    assert render_rgb([], C_MAJOR).shape == (144, 8, 3)
    assert render_rgb(MELODY, C_MAJOR, cell=(3, 2)).shape == (72, 96, 3)


def test_rgb_cells():
    image = render_rgb(MELODY, C_MAJOR)
    blank = render_rgb([0] * 32, C_MAJOR)
    assert pixel(image, 60, 0) == NOTE_ONSET
    assert pixel(image, 60, 1) == NOTE_BODY
    assert pixel(blank, 60, 1) == IN_KEY_ROW
    assert pixel(image, 60, 1) != pixel(blank, 60, 1)
    assert pixel(image, 60, 5) == IN_KEY_ROW  # C4 ended when E4 began
    assert pixel(image, 66, 17) == NOTE_BODY  # F#4 held
    assert pixel(image, 66, 21) == OUT_OF_KEY_ROW  # after the rest: an empty out-of-key row
    assert pixel(image, 59, 31) == NOTE_BODY  # B3 held to the end
    assert tuple(image[0, 16 * 8]) == BAR_LINE
    # The key only changes the background.
    g_major = render_rgb(MELODY, "G major")
    assert pixel(g_major, 66, 21) == IN_KEY_ROW
    assert pixel(g_major, 65, 21) == OUT_OF_KEY_ROW
    assert pixel(g_major, 60, 0) == NOTE_ONSET


@pytest.mark.parametrize("cell", [(0, 4), (8,), (8.0, 4), (True, 4)])
def test_rgb_rejects_bad_cell(cell):
    with pytest.raises(ValueError, match="cell"):
        render_rgb(MELODY, C_MAJOR, cell=cell)
