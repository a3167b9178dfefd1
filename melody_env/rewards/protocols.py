"""What a rule's reward term needs from a reward context: the rule engine's values.

The rules (:mod:`melody_env.rewards.rules`) are the lowest layer of the rewards package: the
rule engine (:mod:`melody_env.rewards.rule_engine`) calls them, the contexts
(:mod:`melody_env.rewards.context`) hold what the engine computed, and the reward function
(:mod:`melody_env.rewards.composition`) sums the terms. A rule's term only reads
``ctx.rule_values``, so it is typed with this protocol instead of the context classes: the
imports then go one way, ``composition -> context -> rule_engine -> rules -> protocols``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class HasRuleValues(Protocol):
    """A reward context: :class:`~melody_env.rewards.context.RewardContext` (``rule_values`` is
    ``float64 [9, B]``, a row per rule) or :class:`~melody_env.rewards.context.
    SingleRewardContext` (a list of nine floats), in the order of
    :data:`~melody_env.rewards.rules.RULE_NAMES`."""

    @property
    def rule_values(self) -> Sequence[Any]: ...
