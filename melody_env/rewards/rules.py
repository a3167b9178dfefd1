"""The music-theory reward rules of the RL Tuner (spec §2), one small function each.

Each rule maps what one step found about one composition (the token's key membership, its
interval class, the motif window, ...) to its reward, and is compiled with ``numba``: the rule
engine (:mod:`melody_env.rewards.rule_engine`) calls all nine for every composition of every
step, in the vector env, the single env and the evaluation alike, so each rule has one
implementation. As reward terms they are :data:`MUSIC_THEORY_RULES`, which read the engine's
values from a :class:`~melody_env.rewards.context.RewardContext`. Constants are the original's.
The musical tests themselves live in :mod:`melody_env.music.theory`; here they become rewards.

Their sum is ``r_MT``. The paper's reward is ``log p(a | s) + r_MT / c`` with ``c = 0.5``.

>>> key_reward(False), tonic_reward(0, 32, 14, True), preferred_intervals_reward(2)
(-1.0, 3.0, 0.4)
"""

from __future__ import annotations

import numba
import numpy as np

from melody_env.music import theory
from melody_env.music.encoding import MAX_PITCH, MIN_PITCH, NO_EVENT, NUM_SPECIAL_EVENTS
from melody_env.rewards.protocols import HasRuleValues

OUT_OF_KEY_PENALTY = -1.0
TONIC_REWARD = 3.0
FINAL_TONIC_STEPS = 4
"""The tonic is rewarded at the start and held for this many steps at the end."""
REPEATING_PENALTY = -100.0
AUTOCORRELATION_THRESHOLD = 0.15
AUTOCORRELATION_PENALTY_SCALE = -3.0
AUTOCORRELATION_LAGS = theory.AUTOCORRELATION_LAGS
MOTIF_LENGTH = theory.MOTIF_LENGTH
MIN_MOTIF_NOTES = 3
MOTIF_REWARD = 3.0
MOTIF_BONUS_PER_EXTRA_NOTE = 0.3
REPEATED_MOTIF_REWARD = 4.0
REPEATED_MOTIF_BONUS_PER_EXTRA_NOTE = 1.0
INTERVAL_REWARD_SCALE = 5.0
LEAP_RESOLVED_REWARD = 5.0
LEAP_DOUBLED_PENALTY = -5.0
UNIQUE_EXTREME_REWARD = 3.0

# Base interval rewards (multiplied by INTERVAL_REWARD_SCALE); unlisted intervals earn 0.
INTERVAL_BASE_REWARDS = {
    theory.REST_INTERVAL: 0.05,
    theory.HOLD_INTERVAL: 0.075,
    theory.REST_AFTER_TONIC_OR_FIFTH: 0.15,
    theory.HOLD_AFTER_TONIC_OR_FIFTH: 0.3,
    theory.IN_KEY_FIFTH: 0.1,
    theory.IN_KEY_THIRD: 0.15,
    11: -0.3,  # major seventh
    4: 0.09,  # major third
    2: 0.08,  # major second
    5: 0.07,  # perfect fourth
    9: 0.05,  # major sixth
    7: 0.02,  # perfect fifth outside the tonic-dominant pair
}
BEYOND_OCTAVE_BASE_REWARD = -1.0
"""Any interval larger than an octave."""


def _interval_rewards() -> np.ndarray:
    """The reward of every interval class, from ``NO_PREVIOUS_NOTE`` to the widest interval."""
    codes = range(theory.NO_PREVIOUS_NOTE, MAX_PITCH - MIN_PITCH + 1)
    base = [
        BEYOND_OCTAVE_BASE_REWARD if code > 12 else INTERVAL_BASE_REWARDS.get(code, 0.0)
        for code in codes
    ]
    return INTERVAL_REWARD_SCALE * np.array(base)


_INTERVAL_REWARDS = _interval_rewards()  # indexed by code - NO_PREVIOUS_NOTE
_LEAP_REWARDS = np.array([LEAP_DOUBLED_PENALTY, 0.0, LEAP_RESOLVED_REWARD])  # by outcome + 1
assert (theory.LEAP_DOUBLED, theory.LEAP_NONE, theory.LEAP_RESOLVED) == (-1, 0, 1)


def key_reward(in_key: bool) -> float:
    """-1 for a note outside the key; hold and rest are in every key."""
    return 0.0 if in_key else OUT_OF_KEY_PENALTY


def tonic_reward(step: int, length: int, token: int, is_tonic: bool) -> float:
    """+3 for opening on the tonic and ending on a held tonic.

    At step 0 and at the first step of the last ``FINAL_TONIC_STEPS`` a tonic note (``is_tonic``:
    any octave) earns +3; on the next step a hold does (the tonic rings on); on the remaining
    steps a hold or a rest does. The original rewarded only middle C (MIDI 60), and at the second
    step of the end it rewarded token 1, which it took for "hold" but which is "note off" in its
    data.
    """
    final = length - FINAL_TONIC_STEPS
    if step == 0 or step == final:
        earns = is_tonic
    elif step == final + 1:
        earns = token == NO_EVENT
    elif step > final + 1:
        earns = token < NUM_SPECIAL_EVENTS
    else:
        earns = False
    return TONIC_REWARD if earns else 0.0


def repeated_notes_reward(is_repeating: bool) -> float:
    """-100 for excessive repetition (:func:`~melody_env.music.theory.is_excessive_repetition`)."""
    return REPEATING_PENALTY if is_repeating else 0.0


def autocorrelation_reward(rho: np.ndarray) -> float:
    """-3 |rho_k| for each lag k in 1..3 where the melodic line's |rho_k| > 0.15.

    ``rho`` holds the autocorrelation at each lag (:func:`~melody_env.music.theory.
    lag_autocorrelation`), computed on the composition so far at every step, as in the original
    (so it is noisy on short prefixes: a two-note line always has rho_1 = -0.5). Unlike the
    original, only note onsets make the line (hold and rest are not pitches).
    """
    total = 0.0
    for value in rho:
        size = abs(value)
        if size > AUTOCORRELATION_THRESHOLD:
            total += size
    return AUTOCORRELATION_PENALTY_SCALE * total


def _motif_rewards(notes: np.ndarray, reward: float, bonus_per_note: float) -> np.ndarray:
    """A motif's reward by its number of distinct pitches (0 below ``MIN_MOTIF_NOTES``)."""
    bonus = bonus_per_note * np.maximum(notes - MIN_MOTIF_NOTES, 0)
    return np.where(notes >= MIN_MOTIF_NOTES, reward + bonus, 0.0)


_NOTE_COUNTS = np.arange(MOTIF_LENGTH + 1)  # distinct pitches a window can hold
_MOTIF_REWARDS = _motif_rewards(_NOTE_COUNTS, MOTIF_REWARD, MOTIF_BONUS_PER_EXTRA_NOTE)
_REPEATED_MOTIF_REWARDS = _motif_rewards(
    _NOTE_COUNTS, REPEATED_MOTIF_REWARD, REPEATED_MOTIF_BONUS_PER_EXTRA_NOTE
)


def motif_reward(motif_notes: int) -> float:
    """+3 (+0.3 per distinct pitch beyond 3) when the last 8 tokens hold at least 3 pitches."""
    return float(_MOTIF_REWARDS[motif_notes])


def repeated_motif_reward(repeats: bool, motif_notes: int) -> float:
    """+4 (+1 per distinct pitch beyond 3) when the last 8 tokens are a motif that was already
    played, token for token, entirely before them (``repeats``)."""
    return float(_REPEATED_MOTIF_REWARDS[motif_notes]) if repeats else 0.0


def preferred_intervals_reward(interval: int) -> float:
    """5 x the interval's base reward: steps, thirds and tonic-dominant fifths are preferred,
    sevenths and leaps beyond an octave punished, holding after the tonic or dominant rewarded.
    ``interval`` is :func:`~melody_env.music.theory.interval_class`'s code."""
    return float(_INTERVAL_REWARDS[interval - theory.NO_PREVIOUS_NOTE])


def leap_resolution_reward(leap_outcome: int) -> float:
    """+5 when a leap is resolved, -5 when a leap is followed by another in the same direction."""
    return float(_LEAP_REWARDS[leap_outcome + 1])


def unique_extremes_reward(is_last_step: bool, unique_high: bool, unique_low: bool) -> float:
    """At the last step, +3 if the highest pitch is played once and +3 if the lowest is."""
    if not is_last_step:
        return 0.0
    return (UNIQUE_EXTREME_REWARD if unique_high else 0.0) + (
        UNIQUE_EXTREME_REWARD if unique_low else 0.0
    )


# Compiled here rather than under ``@numba.njit`` decorators because mutmut, the mutation tester
# (docs/mutation_testing.md), skips decorated functions. The mutation run sets
# NUMBA_DISABLE_JIT=1, under which ``numba.njit`` returns each function as it is.
_compile = numba.njit(cache=True)
key_reward = _compile(key_reward)
tonic_reward = _compile(tonic_reward)
repeated_notes_reward = _compile(repeated_notes_reward)
autocorrelation_reward = _compile(autocorrelation_reward)
motif_reward = _compile(motif_reward)
repeated_motif_reward = _compile(repeated_motif_reward)
preferred_intervals_reward = _compile(preferred_intervals_reward)
leap_resolution_reward = _compile(leap_resolution_reward)
unique_extremes_reward = _compile(unique_extremes_reward)


RULE_NAMES = (
    "key",
    "tonic",
    "repeated_notes",
    "autocorrelation",
    "motif",
    "repeated_motif",
    "preferred_intervals",
    "leap_resolution",
    "unique_extremes",
)
"""The nine rules of r_MT, in the original's order (the order in which they are summed)."""


class RuleTerm:
    """A rule as a reward term (``RewardContext -> float [B]``): the value the rule engine
    computed for it at this step, ``ctx.rule_values[index]`` (any context with ``rule_values``,
    :class:`~melody_env.rewards.protocols.HasRuleValues`)."""

    __slots__ = ("index", "name")

    def __init__(self, index: int, name: str) -> None:
        self.index = index
        self.name = name

    def __call__(self, ctx: HasRuleValues) -> np.ndarray:
        return ctx.rule_values[self.index]

    def __reduce__(self):
        return RuleTerm, (self.index, self.name)

    def __repr__(self) -> str:
        return f"RuleTerm({self.index}, {self.name!r})"


MUSIC_THEORY_RULES = {name: RuleTerm(index, name) for index, name in enumerate(RULE_NAMES)}
"""The nine rules as reward terms (``RewardContext -> float [B]``), in the original's order.
The rule engine (:mod:`melody_env.rewards.rule_engine`) computes them for every step."""
