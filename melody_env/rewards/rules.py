"""The music-theory reward rules of the RL Tuner (spec §2), one small function each.

Each rule maps a :class:`~melody_env.rewards.context.RewardContext` of ``B`` compositions to a
``float64 [B]`` reward, or a :class:`~melody_env.rewards.context.SingleRewardContext` to one
``float``, and is always a number. A rule is written once for both: it looks values up in
tables and chooses with :func:`~melody_env.music.theory.select`. Constants are the original's.
The musical tests themselves live in :mod:`melody_env.music.theory`; here they become rewards.

Their sum is ``r_MT``. The paper's reward is ``log p(a | s) + r_MT / c`` with ``c = 0.5``.
"""

from __future__ import annotations

import numpy as np

from melody_env.music import theory
from melody_env.music.encoding import MAX_PITCH, MIN_PITCH, NO_EVENT, NUM_SPECIAL_EVENTS
from melody_env.music.theory import select
from melody_env.rewards.context import RewardContext

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


def key_reward(ctx: RewardContext) -> np.ndarray:
    """-1 for a note outside the key; hold and rest are in every key."""
    return select(ctx.in_key, 0.0, OUT_OF_KEY_PENALTY)


def tonic_reward(ctx: RewardContext) -> np.ndarray:
    """+3 for opening on the tonic and ending on a held tonic.

    At step 0 and at the first step of the last ``FINAL_TONIC_STEPS`` a tonic note (any octave)
    earns +3; on the next step a hold does (the tonic rings on); on the remaining steps a hold or
    a rest does. The original rewarded only middle C (MIDI 60), and at the second step of the end
    it rewarded token 1, which it took for "hold" but which is "note off" in its data.
    """
    final = ctx.length - FINAL_TONIC_STEPS
    if ctx.step in (0, final):
        earns = theory.is_pitch_class(ctx.pitch, ctx.keys.tonic)
    elif ctx.step == final + 1:
        earns = ctx.action == NO_EVENT
    elif ctx.step > final + 1:
        earns = ctx.action < NUM_SPECIAL_EVENTS
    else:
        return ctx.zero
    return select(earns, TONIC_REWARD, 0.0)


def repeated_notes_reward(ctx: RewardContext) -> np.ndarray:
    """-100 for excessive repetition (:func:`~melody_env.music.theory.is_excessive_repetition`)."""
    return select(ctx.is_repeating, REPEATING_PENALTY, 0.0)


def autocorrelation_reward(ctx: RewardContext) -> np.ndarray:
    """-3 |rho_k| for each lag k in 1..3 where the melodic line's |rho_k| > 0.15.

    Computed on the composition so far at every step, as in the original (so it is noisy on
    short prefixes: a two-note line always has rho_1 = -0.5). Unlike the original, only note
    onsets make the line (hold and rest are not pitches).
    """
    rho = theory.autocorrelation_from_sums(ctx.line_sums)  # [K, B], or K numbers
    # Summed lag after lag (0 + rho_1 + rho_2 + ...) on both paths, so they agree bit for bit.
    if isinstance(rho, np.ndarray):
        total = _strong_correlation(rho).sum(axis=0)
    else:
        total = sum(map(_strong_correlation, rho))
    return AUTOCORRELATION_PENALTY_SCALE * total


def _strong_correlation(rho):
    """``|rho|`` where it exceeds the threshold, else 0."""
    size = abs(rho)
    return select(size > AUTOCORRELATION_THRESHOLD, size, 0.0)


def motif_reward(ctx: RewardContext) -> np.ndarray:
    """+3 (+0.3 per distinct pitch beyond 3) when the last 8 tokens hold at least 3 pitches."""
    return _MOTIF_REWARDS[ctx.motif_notes]


def repeated_motif_reward(ctx: RewardContext) -> np.ndarray:
    """+4 (+1 per distinct pitch beyond 3) when the last 8 tokens are a motif that was already
    played, token for token, entirely before them."""
    repeated = theory.last_window_repeats(ctx.window_codes, MOTIF_LENGTH)
    return select(repeated, _REPEATED_MOTIF_REWARDS[ctx.motif_notes], 0.0)


def _motif_rewards(notes: np.ndarray, reward: float, bonus_per_note: float) -> np.ndarray:
    """A motif's reward by its number of distinct pitches (0 below ``MIN_MOTIF_NOTES``)."""
    bonus = bonus_per_note * np.maximum(notes - MIN_MOTIF_NOTES, 0)
    return np.where(notes >= MIN_MOTIF_NOTES, reward + bonus, 0.0)


_NOTE_COUNTS = np.arange(MOTIF_LENGTH + 1)  # distinct pitches a window can hold
_MOTIF_REWARDS = _motif_rewards(_NOTE_COUNTS, MOTIF_REWARD, MOTIF_BONUS_PER_EXTRA_NOTE)
_REPEATED_MOTIF_REWARDS = _motif_rewards(
    _NOTE_COUNTS, REPEATED_MOTIF_REWARD, REPEATED_MOTIF_BONUS_PER_EXTRA_NOTE
)


def preferred_intervals_reward(ctx: RewardContext) -> np.ndarray:
    """5 x the interval's base reward: steps, thirds and tonic-dominant fifths are preferred,
    sevenths and leaps beyond an octave punished, holding after the tonic or dominant rewarded."""
    return _INTERVAL_REWARDS[ctx.interval - theory.NO_PREVIOUS_NOTE]


def leap_resolution_reward(ctx: RewardContext) -> np.ndarray:
    """+5 when a leap is resolved, -5 when a leap is followed by another in the same direction."""
    return _LEAP_REWARDS[ctx.leap_outcome + 1]


def unique_extremes_reward(ctx: RewardContext) -> np.ndarray:
    """At the last step, +3 if the highest pitch is played once and +3 if the lowest is."""
    if not ctx.is_last_step:
        return ctx.zero
    high, low = theory.unique_extremes(ctx.sequence)
    return select(high, UNIQUE_EXTREME_REWARD, 0.0) + select(low, UNIQUE_EXTREME_REWARD, 0.0)


MUSIC_THEORY_RULES = {
    "key": key_reward,
    "tonic": tonic_reward,
    "repeated_notes": repeated_notes_reward,
    "autocorrelation": autocorrelation_reward,
    "motif": motif_reward,
    "repeated_motif": repeated_motif_reward,
    "preferred_intervals": preferred_intervals_reward,
    "leap_resolution": leap_resolution_reward,
    "unique_extremes": unique_extremes_reward,
}
"""The nine rules of r_MT, in the original's order."""
