"""What the reward rules need to know about a composition's history, kept token by token.

Both engines keep it with this one class: the vector env's :class:`~melody_env.envs.
composition_state.CompositionState` for ``B`` compositions as ``int64 [B]`` arrays read from
:func:`~melody_env.music.step_tables.step_tables`, and the single env's
:class:`~melody_env.envs.single_state.SingleCompositionState` for one composition as Python ints
read from :func:`~melody_env.music.step_tables.step_table_lists` (numpy's fixed cost per call
would dominate a batch of one). The code is the same for both: table lookups and the arithmetic
of :func:`~melody_env.music.theory.line_sums_step` and
:func:`~melody_env.music.theory.next_window_code`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from melody_env.music import theory
from melody_env.music.encoding import NUM_CLASSES
from melody_env.music.step_tables import NO_NOTE, PAIRS, step_table_lists, step_tables


class TokenFacts(NamedTuple):
    """What the rules ask about the token just placed (``[B]`` arrays or scalars).

    Attributes:
        pitch: its MIDI pitch (``NOT_A_PITCH`` for hold and rest).
        in_key: :func:`~melody_env.music.theory.in_key`.
        interval: :func:`~melody_env.music.theory.interval_class` after the last note.
        is_repeating: :func:`~melody_env.music.theory.repeats_excessively`.
        leap_outcome: :func:`~melody_env.music.theory.leap_step`'s outcome.
    """

    pitch: Any
    in_key: Any
    interval: Any
    is_repeating: Any
    leap_outcome: Any


class RuleState:
    """The rule states of ``batch_size`` compositions, or of one (``batch_size=None``).

    The run, leap and last-note states are rows of the step tables (see
    :class:`~melody_env.music.step_tables.StepTables`); :attr:`line_sums` are the melodic line's
    :class:`~melody_env.music.theory.LineSums`; :attr:`window_code` codes the last
    ``MOTIF_LENGTH`` tokens (:func:`~melody_env.music.theory.window_codes`).

    Args:
        batch_size: the number of compositions, ``None`` for one kept in Python scalars.
    """

    def __init__(self, batch_size: int | None) -> None:
        self.batch_size = batch_size
        self.tables = step_table_lists() if batch_size is None else step_tables()
        self.reset(0 if batch_size is None else np.zeros(batch_size, np.int64))

    def _filled(self, value: int):
        return value if self.batch_size is None else np.full(self.batch_size, value, np.int64)

    def reset(self, key_index) -> None:
        """Empty compositions in the keys of :attr:`Key.index <melody_env.music.keys.Key.index>`
        ``key_index`` (an ``int`` or ``int64 [B]``)."""
        tables = self.tables
        self.key_token = key_index * NUM_CLASSES
        self.key_pair = key_index * PAIRS
        # No note yet: the primer is not part of the composition.
        self.last_note_row = self._filled(NO_NOTE * NUM_CLASSES)
        self.run_row = self._filled(tables.run_start)
        self.leap_row = self._filled(tables.leap_start)
        self.line_sums = theory.LineSums.empty(self.batch_size, theory.AUTOCORRELATION_LAGS)
        self.window_code = self._filled(0)

    def advance(self, token) -> TokenFacts:
        """Take in ``token`` (an ``int`` or ``int64 [B]``); return what the rules ask about it."""
        tables = self.tables
        pair = self.last_note_row + token
        leap = self.leap_row + pair
        run = self.run_row + tables.run_class[pair]
        facts = TokenFacts(
            tables.pitch[token],
            tables.in_key[self.key_token + token],
            tables.interval[self.key_pair + pair],
            tables.run_repeats[run],
            tables.leap_outcome[leap],
        )
        self.last_note_row = tables.last_note_row[pair]
        self.run_row = tables.run_next[run]
        self.leap_row = tables.leap_next[leap]
        self.line_sums = theory.line_sums_step(
            self.line_sums, tables.onset_pitch[token], tables.is_note[token]
        )
        self.window_code = theory.next_window_code(self.window_code, token)
        return facts
