"""What a reward term sees at one step: a batch of compositions and the token placed in each
(:class:`RewardContext`), or one composition in Python scalars (:class:`SingleRewardContext`).

Both carry what the rule engine (:mod:`melody_env.rewards.rule_engine`) found at the step,
including the nine rules' values, which the rules' terms read. The other built-in terms read
both alike (they index tables and use :func:`~melody_env.music.theory.select` where they would
use ``np.where``), so each term is one function for the vector env, the single env and the
evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from melody_env.music import theory
from melody_env.music.encoding import TOKEN_PITCHES
from melody_env.music.keys import KEY_NAMES, Key
from melody_env.rewards import rule_engine

_ALL_KEYS = [Key.from_name(name) for name in KEY_NAMES]  # position = Key.index


@dataclass(frozen=True)
class KeyArrays:
    """The keys of a batch of compositions as arrays (``[B]`` pitch classes, ``[B, 12]`` mask,
    ``[B]`` :attr:`Key.index <melody_env.music.keys.Key.index>`)."""

    tonic: np.ndarray
    mediant: np.ndarray
    dominant: np.ndarray
    scale_mask: np.ndarray
    index: np.ndarray | None = None

    @classmethod
    def from_keys(cls, keys: list[Key]) -> KeyArrays:
        first = keys[0]
        if all(key is first for key in keys):  # one key for all (the envs' default)
            index = np.full(len(keys), first.index, dtype=np.int64)
        else:
            index = np.fromiter((key.index for key in keys), dtype=np.int64, count=len(keys))
        return cls(
            tonic=_TONICS[index],
            mediant=_MEDIANTS[index],
            dominant=_DOMINANTS[index],
            scale_mask=_SCALE_MASKS[index],
            index=index,
        )


_TONICS = np.array([key.tonic for key in _ALL_KEYS], dtype=np.int64)
_MEDIANTS = np.array([key.mediant for key in _ALL_KEYS], dtype=np.int64)
_DOMINANTS = np.array([key.dominant for key in _ALL_KEYS], dtype=np.int64)
_SCALE_MASKS = np.stack([key.scale_mask for key in _ALL_KEYS])


class RewardContext:
    """Inputs of the reward terms for one step of ``B`` compositions (all at the same step).

    Attributes:
        history: ``int [B, t]``: the tokens placed before this step.
        action: ``int [B]``: the token placed now.
        step: ``t``, the 0-based position of ``action`` in the composition.
        length: the composition length (the last step is ``length - 1``).
        keys: the key of each composition.
        previous_token: ``int [B]``: the token before ``action`` (the primer's last at step 0).
        log_prob: ``float64 [B]``: log p(action | history) under the reward RNN.
        leap_outcome: ``int8 [B]``: :func:`melody_env.music.theory.leap_step`'s outcome for
            ``action`` (computed once per step by the composition state, which owns the memory).

    The derived quantities below are computed from ``history`` on first use and shared by the
    terms. The composition state, whose rule engine (:mod:`melody_env.rewards.rule_engine`)
    finds them step by step, passes them in instead (keyword arguments of the same names).
    """

    def __init__(
        self,
        history: np.ndarray,
        action: np.ndarray,
        step: int,
        length: int,
        keys: KeyArrays,
        previous_token: np.ndarray,
        log_prob: np.ndarray,
        leap_outcome: np.ndarray,
        *,
        sequence: np.ndarray | None = None,
        pitch: np.ndarray | None = None,
        in_key: np.ndarray | None = None,
        interval: np.ndarray | None = None,
        is_repeating: np.ndarray | None = None,
        motif_notes: np.ndarray | None = None,
        rule_values: np.ndarray | None = None,
        music_theory: np.ndarray | None = None,
    ) -> None:
        self.history = history
        self.action = action
        self.step = step
        self.length = length
        self.keys = keys
        self.previous_token = previous_token
        self.log_prob = np.asarray(log_prob, dtype=np.float64)
        self.leap_outcome = leap_outcome
        self._sequence = sequence
        self._pitch = pitch
        self._in_key = in_key
        self._interval = interval
        self._is_repeating = is_repeating
        self._motif_notes = motif_notes
        self._rule_values = rule_values
        self._music_theory = music_theory
        self._line_sums: theory.LineSums | None = None
        self._window_codes: np.ndarray | None = None

    @property
    def batch_size(self) -> int:
        return len(self.action)

    @property
    def zero(self) -> np.ndarray:
        """``float64 [B]`` zeros: the reward of a rule that does not apply at this step."""
        return np.zeros(len(self.action))

    @property
    def is_last_step(self) -> bool:
        return self.step == self.length - 1

    @property
    def sequence(self) -> np.ndarray:
        """``int [B, t + 1]``: ``history`` with ``action`` appended."""
        if self._sequence is None:
            self._sequence = theory.append_action(self.history, self.action)
        return self._sequence

    @property
    def pitch(self) -> np.ndarray:
        """``int [B]``: MIDI pitch of ``action`` (``NOT_A_PITCH`` for hold and rest)."""
        if self._pitch is None:
            self._pitch = TOKEN_PITCHES[self.action]
        return self._pitch

    @property
    def in_key(self) -> np.ndarray:
        """``bool [B]``: :func:`melody_env.music.theory.in_key` of ``action``."""
        if self._in_key is None:
            self._in_key = theory.in_key(self.pitch, self.keys.scale_mask)
        return self._in_key

    @property
    def interval(self) -> np.ndarray:
        """``int [B]``: :func:`melody_env.music.theory.classify_interval` of ``action``."""
        if self._interval is None:
            keys = self.keys
            self._interval = theory.classify_interval(
                self.history, self.action, keys.tonic, keys.mediant, keys.dominant
            )
        return self._interval

    @property
    def is_repeating(self) -> np.ndarray:
        """``bool [B]``: ``action`` repeats excessively."""
        if self._is_repeating is None:
            self._is_repeating = theory.is_excessive_repetition(self.history, self.action)
        return self._is_repeating

    @property
    def motif_notes(self) -> np.ndarray:
        """``int [B]``: distinct pitches in the last 8 tokens (0 before step 7)."""
        if self._motif_notes is None:
            self._motif_notes = theory.motif_distinct_notes(self.sequence)
        return self._motif_notes

    @property
    def rule_values(self) -> np.ndarray:
        """``float64 [9, B]``: each rule of :data:`~melody_env.rewards.rules.RULE_NAMES` at this
        step, a row each (stepped through the rule engine from the history if not given)."""
        if self._rule_values is None:
            self._replay()
        return self._rule_values

    @property
    def music_theory(self) -> np.ndarray:
        """``float64 [B]``: r_MT, the sum of the nine rules in their order."""
        if self._music_theory is None:
            self._replay()
        return self._music_theory

    def _replay(self) -> None:
        if self.keys.index is None:
            raise ValueError("a RewardContext built by hand needs KeyArrays with an index")
        values = rule_engine.replay(self.sequence, self.keys.index, self.length)
        self._rule_values, self._music_theory = values[: rule_engine.NUM_RULES], values[-1]

    @property
    def line_sums(self) -> theory.LineSums:
        """:func:`melody_env.music.theory.line_sums` of ``sequence`` at lags 1, 2 and 3: the
        melodic line's sums that its autocorrelation is computed from."""
        if self._line_sums is None:
            self._line_sums = theory.line_sums(self.sequence, theory.AUTOCORRELATION_LAGS)
        return self._line_sums

    @property
    def window_codes(self) -> np.ndarray:
        """:func:`melody_env.music.theory.window_codes` of ``sequence`` (motif windows)."""
        if self._window_codes is None:
            self._window_codes = theory.window_codes(self.sequence)
        return self._window_codes


class SingleRewardContext:
    """:class:`RewardContext` for one composition, in Python scalars: what the single env's
    built-in terms read, without numpy's per-call cost.

    The attributes have the names of :class:`RewardContext`'s and hold one composition's value
    (``int``, ``bool``, ``float``; ``keys`` is its :class:`~melody_env.music.keys.Key`,
    ``sequence`` is a list, ``rule_values`` a list of the nine rules' values). ``facts`` are
    :meth:`RuleEngine.facts_of <melody_env.rewards.rule_engine.RuleEngine.facts_of>`'s,
    ``values`` the rules' values and r_MT of :meth:`~melody_env.rewards.rule_engine.RuleEngine.
    advance`. They are valid during the step. Terms written for batches only (a user's extra
    terms) get :meth:`batch`, a :class:`RewardContext` of one composition.
    """

    __slots__ = (
        "_batch",
        "action",
        "in_key",
        "interval",
        "is_repeating",
        "keys",
        "leap_outcome",
        "length",
        "log_prob",
        "motif_notes",
        "music_theory",
        "pitch",
        "previous_token",
        "rule_values",
        "sequence",
        "step",
    )
    batch_size = 1
    zero = 0.0

    def __init__(
        self,
        sequence: list[int],
        length: int,
        key: Key,
        previous_token: int,
        log_prob: float,
        facts: tuple[int, bool, int, bool, int, int],
        values: list[float],
    ) -> None:
        self.sequence = sequence
        self.action = sequence[-1]
        self.step = len(sequence) - 1
        self.length = length
        self.keys = key
        self.previous_token = previous_token
        self.log_prob = log_prob
        (
            self.pitch,
            self.in_key,
            self.interval,
            self.is_repeating,
            self.leap_outcome,
            self.motif_notes,
        ) = facts
        self.rule_values = values[: rule_engine.NUM_RULES]
        self.music_theory = values[-1]
        self._batch = None

    @property
    def is_last_step(self) -> bool:
        return self.step == self.length - 1

    @property
    def history(self) -> list[int]:
        return self.sequence[:-1]

    def batch(self) -> RewardContext:
        """This step as a :class:`RewardContext` of one composition (``[1]`` arrays)."""
        if self._batch is None:
            self._batch = RewardContext(
                history=np.array([self.history], dtype=np.int64).reshape(1, self.step),
                action=np.array([self.action]),
                step=self.step,
                length=self.length,
                keys=KeyArrays.from_keys([self.keys]),
                previous_token=np.array([self.previous_token]),
                log_prob=np.array([self.log_prob]),
                leap_outcome=np.array([self.leap_outcome], dtype=np.int8),
                pitch=np.array([self.pitch]),
                in_key=np.array([self.in_key]),
                interval=np.array([self.interval]),
                is_repeating=np.array([self.is_repeating]),
                motif_notes=np.array([self.motif_notes]),
                rule_values=np.array(self.rule_values).reshape(-1, 1),
                music_theory=np.array([self.music_theory]),
            )
        return self._batch
