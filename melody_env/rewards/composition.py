"""Reward composition as data: named terms, weights, and the original's reward modes.

A reward is ``sum(weight[name] * term[name](ctx))`` over the terms with a non-zero weight. The
presets reproduce the reward modes of the original (spec §2.5) with ``s = reward_scaler``:

================================  ===============================================================
mode                              reward
================================  ===============================================================
``music_theory_all`` (default)    s * r_MT + log p(a | s)
``music_theory_only``             s * r_MT
``music_theory_basic``            s * (key + tonic + repeated_notes) + log p
``music_theory_basic_plus_variety`` s * (key + tonic + repeated_notes + autocorrelation) + log p
``music_theory_random``           s * (key + tonic + repeated_notes)
``key_and_tonic``                 s * (key + tonic)
``key``                           s * key_distribute_prob
``non_repeating``                 s * non_repeating
``preferred_intervals``           s * preferred_intervals
``scale``                         s * scale
================================  ===============================================================

>>> reward = RewardFunction("music_theory_basic", reward_scaler=2.0)
>>> reward.weights
{'key': 2.0, 'tonic': 2.0, 'repeated_notes': 2.0, 'log_prob': 1.0}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from melody_env.music import theory
from melody_env.music.encoding import MIN_PITCH, NO_EVENT, NUM_SPECIAL_EVENTS
from melody_env.music.keys import MODES, Key
from melody_env.rewards.context import RewardContext
from melody_env.rewards.rules import MUSIC_THEORY_RULES

RewardTerm = Callable[[RewardContext], "np.ndarray | float"]
"""A term maps a context of ``B`` compositions to ``B`` rewards (or one number for all)."""

NUM_IN_KEY_TOKENS = 23
"""21 in-key pitches in the three encoded octaves plus hold and rest, in every key."""
KEY_DISTRIBUTE_PROB = 1.0 / NUM_IN_KEY_TOKENS
NON_REPEATING_REWARD = 0.1
SCALE_HOLD_REWARD = 0.1
SCALE_STEP_UP_REWARD = 0.05
SCALE_IN_SCALE_REWARD = 0.01
SCALE_NEXT_DEGREE_REWARD = 0.8


def log_prob_term(ctx: RewardContext) -> np.ndarray:
    """log p(a | history) under the frozen reward RNN: stay close to what was learnt from music."""
    return ctx.log_prob.astype(np.float64)


def key_distribute_prob_term(ctx: RewardContext) -> np.ndarray:
    """1/23 for an in-key token (the original's ``key`` mode: uniform mass over the key)."""
    return np.where(ctx.in_key, KEY_DISTRIBUTE_PROB, 0.0)


def non_repeating_term(ctx: RewardContext) -> np.ndarray:
    """0.1 for a token that does not repeat excessively, else 0 (the original returned None)."""
    return np.where(ctx.is_repeating, 0.0, NON_REPEATING_REWARD)


def _scale_pitches(key: Key) -> np.ndarray:
    """The toy ``scale`` mode's scale: two octaves of the key upwards from its lowest tonic."""
    start = MIN_PITCH + (key.tonic - MIN_PITCH) % 12
    return np.array([p for p in range(start, start + 25) if key.scale_mask[p % 12]])


# [tonic, is_minor, 15 pitches]
_SCALES = np.array([[_scale_pitches(Key(tonic, mode)) for mode in MODES] for tonic in range(12)])


def scale_term(ctx: RewardContext) -> np.ndarray:
    """The original's toy ``scale`` mode: learn to play two octaves of the scale upwards.

    +0.1 for a hold; +0.05 for a note 1-2 semitones above the previous token; +0.01 for a note of
    the scale; +0.8 for the next degree of the scale after the previous token (the top wraps to
    the bottom).
    """
    is_minor = (ctx.keys.mediant - ctx.keys.tonic) % 12 == 3
    scale = _SCALES[ctx.keys.tonic, is_minor.astype(int)]  # [B, 15]
    previous = theory.TOKEN_PITCHES[ctx.previous_token]
    pitch = ctx.pitch
    is_note = ctx.action >= NUM_SPECIAL_EVENTS
    previous_is_note = ctx.previous_token >= NUM_SPECIAL_EVENTS
    in_scale = (scale == pitch[:, None]).any(axis=1) & is_note
    previous_index = (scale == previous[:, None]).argmax(axis=1)
    previous_in_scale = (scale == previous[:, None]).any(axis=1) & previous_is_note
    next_degree = scale[np.arange(len(pitch)), (previous_index + 1) % scale.shape[1]]
    step_up = is_note & previous_is_note & (pitch > previous) & (pitch < previous + 3)
    return (
        SCALE_HOLD_REWARD * (ctx.action == NO_EVENT)
        + SCALE_STEP_UP_REWARD * step_up
        + SCALE_IN_SCALE_REWARD * in_scale
        + SCALE_NEXT_DEGREE_REWARD * (previous_in_scale & (pitch == next_degree) & is_note)
    )


BUILTIN_TERMS: dict[str, RewardTerm] = {
    **MUSIC_THEORY_RULES,
    "log_prob": log_prob_term,
    "key_distribute_prob": key_distribute_prob_term,
    "non_repeating": non_repeating_term,
    "scale": scale_term,
}
"""Every term the package defines, by name."""
_RULE_NAMES = list(MUSIC_THEORY_RULES)

_BASIC = ("key", "tonic", "repeated_notes")
REWARD_MODES: dict[str, tuple[tuple[str, ...], bool]] = {
    "music_theory_all": (tuple(MUSIC_THEORY_RULES), True),
    "music_theory_only": (tuple(MUSIC_THEORY_RULES), False),
    "music_theory_basic": (_BASIC, True),
    "music_theory_basic_plus_variety": ((*_BASIC, "autocorrelation"), True),
    "music_theory_random": (_BASIC, False),
    "key_and_tonic": (("key", "tonic"), False),
    "key": (("key_distribute_prob",), False),
    "non_repeating": (("non_repeating",), False),
    "preferred_intervals": (("preferred_intervals",), False),
    "scale": (("scale",), False),
}
"""Mode -> (terms weighted by ``reward_scaler``, whether ``log_prob`` is added with weight 1)."""


def preset_weights(mode: str, reward_scaler: float) -> dict[str, float]:
    """Term weights of a reward mode of the original."""
    if mode not in REWARD_MODES:
        raise ValueError(f"unknown reward_mode {mode!r}; choose one of {sorted(REWARD_MODES)}")
    scaled_terms, with_log_prob = REWARD_MODES[mode]
    weights = {name: float(reward_scaler) for name in scaled_terms}
    if with_log_prob:
        weights["log_prob"] = 1.0
    return weights


@dataclass(frozen=True)
class RewardBreakdown:
    """One step's rewards for ``B`` compositions.

    Attributes:
        total: ``float [B]``: the reward returned by the env.
        terms: each active term's unweighted value, ``float [B]``.
        music_theory: ``float [B]``: r_MT, the sum of the nine rules (whatever the mode).
        log_prob: ``float [B]``: log p(a | history) under the reward RNN.
    """

    total: np.ndarray
    terms: dict[str, np.ndarray]
    music_theory: np.ndarray
    log_prob: np.ndarray


class RewardFunction:
    """A weighted sum of named reward terms.

    Args:
        mode: a preset of :data:`REWARD_MODES`.
        reward_scaler: ``s = 1 / c`` of the paper; the weight of the music-theory terms (2.0 is
            the paper's c = 0.5).
        terms: extra terms by name, each a callable ``RewardContext -> float [B]``. They get
            weight 1 unless ``weights`` says otherwise.
        weights: weight overrides by term name (built-in or extra); 0 switches a term off, and a
            built-in term absent from the preset is switched on.
    """

    def __init__(
        self,
        mode: str = "music_theory_all",
        reward_scaler: float = 2.0,
        terms: Mapping[str, RewardTerm] | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        if not np.isfinite(reward_scaler):
            raise ValueError(f"reward_scaler must be a finite number, got {reward_scaler!r}")
        self.mode = mode
        self.reward_scaler = float(reward_scaler)
        extra = dict(terms or {})
        for name, term in extra.items():
            if not callable(term):
                raise ValueError(f"reward term {name!r} must be callable, got {term!r}")
            if name in BUILTIN_TERMS:
                raise ValueError(f"reward term {name!r} would shadow a built-in term of that name")
        self.available_terms = {**BUILTIN_TERMS, **extra}
        merged = preset_weights(mode, reward_scaler) | {name: 1.0 for name in extra}
        for name, weight in (weights or {}).items():
            if name not in self.available_terms:
                raise ValueError(
                    f"unknown reward term {name!r} in reward_weights; known terms: "
                    f"{sorted(self.available_terms)}"
                )
            if not np.isfinite(weight):
                raise ValueError(f"reward weight of {name!r} must be finite, got {weight!r}")
            merged[name] = float(weight)
        self.weights = {name: weight for name, weight in merged.items() if weight != 0.0}

    def __call__(self, ctx: RewardContext) -> RewardBreakdown:
        zero = np.zeros(ctx.batch_size)
        rule_values = {name: rule(ctx) for name, rule in MUSIC_THEORY_RULES.items()}
        # ``0 + v1 + v2 + ...`` in term order, as one call: ``np.add.accumulate`` adds row by row.
        music_theory = np.add.accumulate(np.array([zero, *rule_values.values()]), axis=0)[-1]
        terms = {
            name: rule_values[name] if name in rule_values else self._evaluate(name, ctx)
            for name in self.weights
        }
        total = self._weighted_sum(terms, music_theory, zero)
        log_prob = terms["log_prob"] if "log_prob" in terms else ctx.log_prob.astype(np.float64)
        return RewardBreakdown(total, terms, music_theory, log_prob)

    def _weighted_sum(
        self, terms: dict[str, np.ndarray], music_theory: np.ndarray, zero: np.ndarray
    ) -> np.ndarray:
        """``0 + w1 * v1 + w2 * v2 + ...`` in term order (the floating-point sum is order-bound)."""
        weights = self.weights
        names = list(weights)
        scale = weights.get(_RULE_NAMES[0], 0.0)
        if (
            names[: len(_RULE_NAMES)] == _RULE_NAMES
            and scale >= 1.0
            and math.frexp(scale)[0] == 0.5
            and all(weights[name] == scale for name in _RULE_NAMES)
        ):
            # The presets: the nine rules first, weighted by a power of two such as the default
            # 2.0. Scaling by a power of two is exact, so their weighted sum is s * r_MT, bit for
            # bit, and only the remaining terms (log p) need adding.
            total = scale * music_theory
            for name in names[len(_RULE_NAMES) :]:
                total = total + weights[name] * terms[name]
            return total
        weighted = np.array([zero, *terms.values()], dtype=np.float64)
        weighted[1:] *= np.array(list(weights.values()))[:, None]
        return np.add.accumulate(weighted, axis=0)[-1]

    def _evaluate(self, name: str, ctx: RewardContext) -> np.ndarray:
        value = np.asarray(self.available_terms[name](ctx), dtype=np.float64)
        if value.shape != (ctx.batch_size,):
            try:
                value = np.broadcast_to(value, (ctx.batch_size,))
            except ValueError as error:
                raise ValueError(
                    f"reward term {name!r} returned shape {value.shape}; it must return one "
                    f"number or an array of shape ({ctx.batch_size},)"
                ) from error
        if not np.isfinite(value).all():
            raise ValueError(f"reward term {name!r} returned a non-finite value: {value}")
        return value
