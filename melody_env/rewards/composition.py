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
from typing import NamedTuple

import numpy as np

from melody_env.music import theory
from melody_env.music.encoding import MIN_PITCH, NO_EVENT, NUM_CLASSES, NUM_SPECIAL_EVENTS
from melody_env.music.keys import KEY_NAMES, MODES, Key
from melody_env.music.theory import select
from melody_env.rewards.context import RewardContext, SingleRewardContext
from melody_env.rewards.rules import MUSIC_THEORY_RULES, RULE_NAMES

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
    return ctx.log_prob


def key_distribute_prob_term(ctx: RewardContext) -> np.ndarray:
    """1/23 for an in-key token (the original's ``key`` mode: uniform mass over the key)."""
    return select(ctx.in_key, KEY_DISTRIBUTE_PROB, 0.0)


def non_repeating_term(ctx: RewardContext) -> np.ndarray:
    """0.1 for a token that does not repeat excessively, else 0 (the original returned None)."""
    return select(ctx.is_repeating, 0.0, NON_REPEATING_REWARD)


def _scale_pitches(key: Key) -> np.ndarray:
    """The toy ``scale`` mode's scale: two octaves of the key upwards from its lowest tonic."""
    start = MIN_PITCH + (key.tonic - MIN_PITCH) % 12
    return np.array([p for p in range(start, start + 25) if key.scale_mask[p % 12]])


# [tonic, is_minor, 15 pitches]
_SCALES = np.array([[_scale_pitches(Key(tonic, mode)) for mode in MODES] for tonic in range(12)])


def scale_rewards(
    key_index: np.ndarray, previous_token: np.ndarray, action: np.ndarray
) -> np.ndarray:
    """The original's toy ``scale`` mode: learn to play two octaves of the scale upwards.

    +0.1 for a hold; +0.05 for a note 1-2 semitones above the previous token; +0.01 for a note of
    the scale; +0.8 for the next degree of the scale after the previous token (the top wraps to
    the bottom). Arrays ``[B]`` of :attr:`Key.index <melody_env.music.keys.Key.index>` and tokens.
    """
    is_minor, tonic = np.divmod(key_index, 12)  # Key.index = mode * 12 + tonic
    scale = _SCALES[tonic, is_minor]  # [B, 15]
    previous = theory.TOKEN_PITCHES[previous_token]
    pitch = theory.TOKEN_PITCHES[action]
    is_note = action >= NUM_SPECIAL_EVENTS
    previous_is_note = previous_token >= NUM_SPECIAL_EVENTS
    in_scale = (scale == pitch[:, None]).any(axis=1) & is_note
    previous_index = (scale == previous[:, None]).argmax(axis=1)
    previous_in_scale = (scale == previous[:, None]).any(axis=1) & previous_is_note
    next_degree = scale[np.arange(len(pitch)), (previous_index + 1) % scale.shape[1]]
    step_up = is_note & previous_is_note & (pitch > previous) & (pitch < previous + 3)
    return (
        SCALE_HOLD_REWARD * (action == NO_EVENT)
        + SCALE_STEP_UP_REWARD * step_up
        + SCALE_IN_SCALE_REWARD * in_scale
        + SCALE_NEXT_DEGREE_REWARD * (previous_in_scale & (pitch == next_degree) & is_note)
    )


def _scale_table() -> np.ndarray:
    """:func:`scale_rewards` of every ``(key, previous token, token)``, flat."""
    key, rest = np.divmod(np.arange(len(KEY_NAMES) * NUM_CLASSES**2), NUM_CLASSES**2)
    previous, token = np.divmod(rest, NUM_CLASSES)
    return scale_rewards(key, previous, token)


_SCALE_REWARDS = _scale_table()


def scale_term(ctx: RewardContext) -> np.ndarray:
    """:func:`scale_rewards` of the step (looked up in a table of all cases)."""
    index = (ctx.keys.index * NUM_CLASSES + ctx.previous_token) * NUM_CLASSES + ctx.action
    return _SCALE_REWARDS[index]


BUILTIN_TERMS: dict[str, RewardTerm] = {
    **MUSIC_THEORY_RULES,
    "log_prob": log_prob_term,
    "key_distribute_prob": key_distribute_prob_term,
    "non_repeating": non_repeating_term,
    "scale": scale_term,
}
"""Every term the package defines, by name."""
_RULE_NAMES = list(RULE_NAMES)

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


def _finite_number(name: str, value) -> float:
    """``value`` as a float if it is a finite real number (not a bool or a string)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name} must be a finite number, got {value!r:.60}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def preset_weights(mode: str, reward_scaler: float) -> dict[str, float]:
    """Term weights of a reward mode of the original."""
    if mode not in REWARD_MODES:
        raise ValueError(f"unknown reward_mode {mode!r}; choose one of {sorted(REWARD_MODES)}")
    scaled_terms, with_log_prob = REWARD_MODES[mode]
    weights = {name: float(reward_scaler) for name in scaled_terms}
    if with_log_prob:
        weights["log_prob"] = 1.0
    return weights


class RewardBreakdown(NamedTuple):
    """One step's rewards for ``B`` compositions (arrays; floats for one composition).

    For a batch, each array is made anew by the call that returns it and belongs to no one
    else, so callers may keep it without copying. The one exception is ``log_prob`` (and the
    ``log_prob`` term, the same array): it is the context's ``log_prob``, which the envs'
    composition state makes anew each step.

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

    Attributes:
        weights: the active terms' weights, in the order they are summed (a copy: they are
            fixed at construction).
    """

    def __init__(
        self,
        mode: str = "music_theory_all",
        reward_scaler: float = 2.0,
        terms: Mapping[str, RewardTerm] | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        if not isinstance(mode, str):
            raise ValueError(
                f"reward_mode must be a name, one of {sorted(REWARD_MODES)}, got {mode!r}"
            )
        reward_scaler = _finite_number("reward_scaler", reward_scaler)
        for argument, value in (("reward_terms", terms), ("reward_weights", weights)):
            if value is not None and not isinstance(value, Mapping):
                raise ValueError(
                    f"{argument} must be a dict of term name -> "
                    f"{'callable' if argument == 'reward_terms' else 'weight'}, got {value!r:.80}"
                )
        self.mode = mode
        self.reward_scaler = reward_scaler
        extra = dict(terms or {})
        for name, term in extra.items():
            if not isinstance(name, str):
                raise ValueError(f"reward term names must be strings, got {name!r}")
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
            merged[name] = _finite_number(f"reward weight of {name!r}", weight)
        # Fixed here: the order of summation is planned from it once.
        self._weights = {name: weight for name, weight in merged.items() if weight != 0.0}
        names = list(self._weights)
        # The nine rules first (all presets): the rules' values become the head of the terms.
        self._rules_lead = names[: len(_RULE_NAMES)] == _RULE_NAMES
        self._other_names = names[len(_RULE_NAMES) :]
        self._rules_scale, self._other_terms = self._plan_sum()

    @property
    def weights(self) -> dict[str, float]:
        """The active terms' weights, in the order they are summed (a copy)."""
        return dict(self._weights)

    def _plan_sum(self) -> tuple[float | None, list[tuple[str, float]]]:
        """How :meth:`_weighted_sum` adds the terms up: ``(s, rest)`` when the nine rules come
        first with one weight ``s``, a power of two such as the presets' 2.0 (scaling by it is
        exact, so their weighted sum is ``s * r_MT`` bit for bit and only ``rest`` needs
        adding); ``(None, all terms)`` otherwise."""
        weights = self._weights
        scale = weights.get(_RULE_NAMES[0], 0.0)
        if (
            self._rules_lead
            and scale >= 1.0
            and math.frexp(scale)[0] == 0.5
            and all(weights[name] == scale for name in _RULE_NAMES)
        ):
            return scale, [(name, weights[name]) for name in self._other_names]
        return None, list(weights.items())

    def __call__(self, ctx: RewardContext | SingleRewardContext) -> RewardBreakdown:
        """The rewards of one step: arrays ``[B]`` for a :class:`RewardContext`, floats for a
        :class:`SingleRewardContext` (the same arithmetic, in the same order)."""
        zero = ctx.zero
        # The rule engine computed the nine rules and r_MT (0 + v1 + v2 + ... in rule order).
        rule_values = dict(zip(_RULE_NAMES, ctx.rule_values, strict=True))
        music_theory = ctx.music_theory
        if self._rules_lead:  # the rules' dict grows into the terms' dict
            terms = rule_values
            for name in self._other_names:
                terms[name] = self._evaluate(name, ctx)
        else:
            terms = {
                name: rule_values[name] if name in rule_values else self._evaluate(name, ctx)
                for name in self._weights
            }
        total = self._weighted_sum(terms, music_theory, zero)
        log_prob = terms.get("log_prob", ctx.log_prob)
        return RewardBreakdown(total, terms, music_theory, log_prob)

    def _weighted_sum(self, terms: dict, music_theory, zero):
        """``0 + w1 * v1 + w2 * v2 + ...`` in term order (the floating-point sum is order-bound)."""
        scale = self._rules_scale
        total = zero if scale is None else scale * music_theory
        for name, weight in self._other_terms:
            total = total + weight * terms[name]
        return total

    def _evaluate(self, name: str, ctx: RewardContext | SingleRewardContext):
        term = self.available_terms[name]
        if name in BUILTIN_TERMS:  # written for batches and single compositions alike
            return term(ctx)
        if isinstance(ctx, SingleRewardContext):  # a user's term sees a batch of one
            return float(self._checked(name, term(ctx.batch()), 1)[0])
        return self._checked(name, term(ctx), ctx.batch_size)

    @staticmethod
    def _checked(name: str, value, batch_size: int) -> np.ndarray:
        returned = value
        try:
            if value is None or isinstance(value, (str, bytes)):  # numpy makes None a NaN
                raise TypeError
            value = np.array(value, dtype=np.float64)  # a copy: the breakdown owns its arrays
        except (TypeError, ValueError, OverflowError):
            raise ValueError(
                f"reward term {name!r} returned {type(returned).__name__} {returned!r:.60}; it "
                "must return one number or an array of numbers"
            ) from None
        if value.shape != (batch_size,):
            try:
                value = np.broadcast_to(value, (batch_size,)).copy()
            except ValueError as error:
                raise ValueError(
                    f"reward term {name!r} returned shape {value.shape}; it must return one "
                    f"number or an array of shape ({batch_size},)"
                ) from error
        if not np.isfinite(value).all():
            raise ValueError(f"reward term {name!r} returned a non-finite value: {value}")
        return value
