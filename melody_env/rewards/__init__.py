"""Rewards: the music-theory rules, the reward RNN's log-probability, and their composition."""

from melody_env.rewards.composition import (
    BUILTIN_TERMS,
    REWARD_MODES,
    RewardBreakdown,
    RewardFunction,
    RewardTerm,
    preset_weights,
)
from melody_env.rewards.context import KeyArrays, RewardContext
from melody_env.rewards.rules import MUSIC_THEORY_RULES

__all__ = [
    "BUILTIN_TERMS",
    "MUSIC_THEORY_RULES",
    "REWARD_MODES",
    "KeyArrays",
    "RewardBreakdown",
    "RewardContext",
    "RewardFunction",
    "RewardTerm",
    "preset_weights",
]
