"""Piano-roll views of a token sequence: text for terminals, an RGB array for videos.

Pure numpy, so the environment's ``render()`` stays cheap and importable without gymnasium.

>>> print(render_ansi([14, 0, 16, 1], Key.from_name("C major"), step=None))
C major | 4 steps | * = out of key
*D#4 |:...|
 D4  |:.#.|
*C#4 |:...|
 C4  |#=..|
 B3  |:...|
tokens: C4:2 D4:1 rest:1
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np

from melody_env.music.encoding import (
    MAX_PITCH,
    MIN_PITCH,
    NO_EVENT,
    NUM_PITCHES,
    TOKEN_PITCHES,
    is_note,
    pitch_name,
    token_name,
    validate_tokens,
)
from melody_env.music.keys import Key

STEPS_PER_BEAT = 4
ROW_MARGIN = 1
"""Empty pitch rows shown above and below the melody in the text view."""
TEXT_WIDTH = 80
"""The token footer wraps at this width."""

# Colours of the RGB view.
IN_KEY_ROW = (236, 236, 236)
OUT_OF_KEY_ROW = (200, 200, 200)
OCTAVE_LINE = (170, 170, 170)
BEAT_LINE = (175, 175, 175)
BAR_LINE = (70, 70, 70)
NOTE_BODY = (66, 133, 214)
NOTE_ONSET = (20, 60, 130)


def sounding_pitches(tokens: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step, the pitch that sounds (-1 in silence) and whether a note starts there.

    A leading hold means silence: nothing was struck before the sequence.

    >>> pitch, onset = sounding_pitches([14, 0, 1, 0, 16])
    >>> pitch.tolist(), onset.tolist()
    ([60, 60, -1, -1, 62], [True, False, False, False, True])
    """
    tokens = validate_tokens(tokens)
    steps = np.arange(len(tokens))
    # Index of the latest onset or rest at or before each step (-1 before the first).
    last_event = (
        np.maximum.accumulate(np.where(tokens != NO_EVENT, steps, -1)) if len(steps) else steps
    )
    pitch = np.where(last_event >= 0, TOKEN_PITCHES[tokens[np.maximum(last_event, 0)]], -1)
    return pitch.astype(np.int64), is_note(tokens)


def render_ansi(
    tokens: Sequence[int] | np.ndarray,
    key: Key | str,
    step: int | None,
    steps_per_bar: int = 16,
    primer: Sequence[int] | np.ndarray | None = None,
) -> str:
    """A text piano roll of ``tokens``.

    One row per pitch, highest first, from one semitone above the highest sounding pitch to one
    below the lowest (C4 +- 1 when nothing sounds). The label names the pitch; a ``*`` in front
    marks a pitch outside ``key``. One column per sixteenth: ``#`` a note onset, ``=`` the note
    held, ``.`` nothing, ``:`` nothing on a beat (every 4 steps), ``|`` a bar line every
    ``steps_per_bar`` steps. The primer, when given, is drawn first with ``o`` and ``-``; bars and
    beats count from the composition's first step. With ``step``, the columns from ``step`` on
    are not composed yet: they stay blank and a ``^`` marks the next one. The header gives the
    key and the step count; the footer lists the composed tokens as ``name:steps`` (an event and
    its holds), wrapped at 80 columns.

    Args:
        tokens: the composition.
        key: its key (a :class:`Key` or a name).
        step: how many tokens are composed so far (0..len), or ``None`` for all of them.
        steps_per_bar: sixteenths per bar (16 for 4/4).
        primer: tokens played before the composition, or ``None``.

    Returns:
        The multi-line text, without a trailing newline.

    >>> print(render_ansi([16, 0, 0, 0], "C major", step=2, primer=[14, 0]))
    C major | 4 steps | step 2/4 | primer 2 steps | * = out of key
    *D#4  ..|:.  |
     D4   ..|#=  |
    *C#4  ..|:.  |
     C4   o-|:.  |
     B3   ..|:.  |
               ^
    tokens: D4:2
    """
    key = Key.from_name(key)
    tokens = validate_tokens(tokens)
    primer = validate_tokens([] if primer is None else primer, "primer")
    if step is not None and not 0 <= step <= len(tokens):
        raise ValueError(f"step must be in [0, {len(tokens)}] or None, got {step!r}")
    _check_steps_per_bar(steps_per_bar)
    written = len(tokens) if step is None else int(step)
    pitch, onset = sounding_pitches(np.concatenate([primer, tokens]))
    composed = np.arange(len(pitch)) < len(primer) + written
    in_primer = np.arange(len(pitch)) < len(primer)

    used = pitch[(pitch >= 0) & composed]
    low, high = (used.min(), used.max()) if used.size else (60, 60)
    low, high = max(low - ROW_MARGIN, MIN_PITCH), min(high + ROW_MARGIN, MAX_PITCH)

    header = [key.name, f"{len(tokens)} steps"]
    if step is not None:
        header.append(f"step {step}/{len(tokens)}")
    if len(primer):
        header.append(f"primer {len(primer)} steps")
    lines = [" | ".join([*header, "* = out of key"])]
    # Bars and beats count from the composition's first step; the primer runs up to it.
    offset = np.arange(len(pitch)) - len(primer)
    bar_before = offset % steps_per_bar == 0
    marker_column = None
    for row_pitch in range(high, low - 1, -1):
        mark = " " if key.contains(row_pitch) else "*"
        cells = [] if bar_before[:1].all() else [" "]
        for column in range(len(pitch)):
            if bar_before[column]:
                cells.append("|")
            if column == len(primer) + written:
                marker_column = len(cells)
            if not composed[column]:
                cells.append(" ")
            elif pitch[column] == row_pitch:
                held, struck = ("-", "o") if in_primer[column] else ("=", "#")
                cells.append(struck if onset[column] else held)
            else:
                cells.append(":" if offset[column] % STEPS_PER_BEAT == 0 else ".")
        lines.append(f"{mark}{pitch_name(row_pitch):<4}" + "".join(cells) + "|")
    if step is not None and step < len(tokens) and marker_column is not None:
        lines.append(" " * (5 + marker_column) + "^")
    footer = "tokens: " + (_compact_names(tokens[:written]) or "(none)")
    lines.extend(textwrap.wrap(footer, TEXT_WIDTH, subsequent_indent="  "))
    return "\n".join(lines)


def render_rgb(
    tokens: Sequence[int] | np.ndarray,
    key: Key | str,
    steps_per_bar: int = 16,
    cell: tuple[int, int] = (8, 4),
) -> np.ndarray:
    """A piano-roll image of ``tokens`` over the whole pitch range, C3 (bottom) to B5 (top).

    Rows of pitches in ``key`` are lighter than the others, a thin line runs under each C, beat
    lines every 4 steps and darker bar lines every ``steps_per_bar`` steps. A note is a filled box
    from its onset until the next onset or rest (holds extend it), its onset cell darker. The size
    depends only on ``len(tokens)`` and ``cell``: ``[36 * h, max(len(tokens), 1) * w, 3]``.

    Args:
        tokens: the composition.
        key: its key (a :class:`Key` or a name).
        steps_per_bar: sixteenths per bar.
        cell: ``(width, height)`` in pixels of one step of one pitch.

    Returns:
        uint8 array ``[height, width, 3]``.

    >>> image = render_rgb([14, 0, 0, 0], "C major")
    >>> image.shape, image.dtype.name
    ((144, 32, 3), 'uint8')
    """
    key = Key.from_name(key)
    tokens = validate_tokens(tokens)
    _check_steps_per_bar(steps_per_bar)
    if (
        len(cell) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in cell)
        or min(cell) < 1
    ):
        raise ValueError(f"cell must be (width, height) in positive integer pixels, got {cell!r}")
    width, height = int(cell[0]), int(cell[1])
    num_steps = max(len(tokens), 1)
    row_pitches = np.arange(MAX_PITCH, MIN_PITCH - 1, -1)  # top row first

    # Background: one colour per pitch row, then grid lines.
    row_colours = np.where(key.contains(row_pitches)[:, None], IN_KEY_ROW, OUT_OF_KEY_ROW)
    image = np.repeat(row_colours.astype(np.uint8), height, axis=0)[:, None, :]
    image = np.repeat(image, num_steps * width, axis=1)  # [H, W, 3]
    c_rows = np.flatnonzero(row_pitches % 12 == 0)
    image[(c_rows + 1) * height - 1] = OCTAVE_LINE
    image[:, 0 : num_steps * width : STEPS_PER_BEAT * width] = BEAT_LINE
    image[:, 0 : num_steps * width : steps_per_bar * width] = BAR_LINE

    # Notes: a state per (row, step), 0 empty, 1 held, 2 onset; then scaled up to pixels.
    pitch, onset = sounding_pitches(tokens)
    state = np.zeros((NUM_PITCHES, num_steps), dtype=np.uint8)
    columns = np.flatnonzero(pitch >= 0)
    state[MAX_PITCH - pitch[columns], columns] = np.where(onset[columns], 2, 1)
    state = np.repeat(np.repeat(state, height, axis=0), width, axis=1)
    image[state == 1] = NOTE_BODY
    image[state == 2] = NOTE_ONSET
    return image


def _compact_names(tokens: np.ndarray) -> str:
    """``"C4:2 rest:1"``: each event (a leading hold counts as one) with its length in steps."""
    if len(tokens) == 0:
        return ""
    starts = np.flatnonzero(tokens != NO_EVENT)
    if len(starts) == 0 or starts[0] != 0:
        starts = np.concatenate([[0], starts])
    lengths = np.diff(np.concatenate([starts, [len(tokens)]]))
    return " ".join(f"{token_name(tokens[s])}:{n}" for s, n in zip(starts, lengths, strict=True))


def _check_steps_per_bar(steps_per_bar: int) -> None:
    if isinstance(steps_per_bar, bool) or not isinstance(steps_per_bar, (int, np.integer)):
        raise ValueError(f"steps_per_bar must be a positive integer, got {steps_per_bar!r}")
    if steps_per_bar < 1:
        raise ValueError(f"steps_per_bar must be a positive integer, got {steps_per_bar!r}")
