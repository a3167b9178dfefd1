"""The single env's engine (the rule engine for a batch of one, Python scalars for the terms)
gives the batched engine's rewards, bit for bit, rule by rule."""

from __future__ import annotations

import numpy as np
import pytest

from melody_env.envs.composition_state import CompositionState
from melody_env.envs.single_state import SingleCompositionState
from melody_env.models import NoteRNN, NoteRNNConfig
from melody_env.music.keys import KEY_NAMES, Key
from melody_env.rewards import RewardFunction
from melody_env.rewards.composition import REWARD_MODES
from melody_env.rewards.context import RewardContext, SingleRewardContext
from melody_env.rewards.rules import MUSIC_THEORY_RULES
from tests.test_step_tables import random_melodies

RNN = NoteRNN(NoteRNNConfig(hidden_size=4), seed=0)


class Recorder:
    """Keeps each step's context; rewards as ``reward``."""

    def __init__(self, reward: RewardFunction) -> None:
        self.reward = reward
        self.contexts: list = []

    def __call__(self, ctx):
        self.contexts.append(ctx)
        return self.reward(ctx)


def play(mode: str, melodies: np.ndarray, keys: list[Key], primers: list[np.ndarray], **kwargs):
    """Each melody through one SingleCompositionState, and all of them as one batch."""
    batch, length = melodies.shape
    batched = CompositionState(batch, length, RNN, Recorder(RewardFunction(mode, **kwargs)))
    batched.reset(primers, keys)
    batch_steps = [batched.advance(melodies[:, step].copy()) for step in range(length)]
    singles = []
    for row in range(batch):
        state = SingleCompositionState(length, RNN, Recorder(RewardFunction(mode, **kwargs)))
        state.reset(primers[row], keys[row])
        singles.append([state.advance(int(token)) for token in melodies[row]])
        assert state.finished and state.composition.tolist() == melodies[row].tolist()
    return batched, batch_steps, singles


@pytest.mark.parametrize("mode", sorted(REWARD_MODES))
def test_single_engine_rewards_equal_the_batched_engine(mode):
    rng = np.random.default_rng(len(mode))
    batch, length = 12, 40
    keys = [Key.from_name(KEY_NAMES[i]) for i in rng.integers(0, 24, batch)]
    primers = [rng.integers(0, 38, size=1 + row % 3) for row in range(batch)]
    melodies = random_melodies(rng, batch, length)
    _, batch_steps, singles = play(mode, melodies, keys, primers)
    for step, batch_breakdown in enumerate(batch_steps):
        for row, steps in enumerate(singles):
            single = steps[step]
            assert isinstance(single.total, float), type(single.total)
            assert list(single.terms) == list(batch_breakdown.terms)
            for name, value in single.terms.items():
                if name == "log_prob":  # numpy's batch-of-one LSTM step vs a batched one
                    assert value == pytest.approx(batch_breakdown.terms[name][row], abs=1e-5)
                else:
                    assert value == batch_breakdown.terms[name][row], (name, step, row)
            assert single.music_theory == batch_breakdown.music_theory[row], (step, row)


def test_every_rule_and_derived_value_matches_on_scalars():
    """The single engine's context holds, as Python scalars, the batch context's values."""
    rng = np.random.default_rng(7)
    batch, length = 10, 48
    keys = [Key.from_name(KEY_NAMES[i]) for i in rng.integers(0, 24, batch)]
    primers = [np.array([row % 38]) for row in range(batch)]
    melodies = random_melodies(rng, batch, length)
    batched = CompositionState(batch, length, RNN, Recorder(RewardFunction()))
    batched.reset(primers, keys)
    recorders = []
    states = []
    for row in range(batch):
        recorders.append(Recorder(RewardFunction()))
        states.append(SingleCompositionState(length, RNN, recorders[-1]))
        states[-1].reset(primers[row], keys[row])
    for step in range(length):
        batched.advance(melodies[:, step].copy())
        batch_ctx: RewardContext = batched.reward_function.contexts[-1]
        for row, state in enumerate(states):
            state.advance(int(melodies[row, step]))
            ctx: SingleRewardContext = recorders[row].contexts[-1]
            for name in ("pitch", "in_key", "interval", "is_repeating", "leap_outcome"):
                assert getattr(ctx, name) == getattr(batch_ctx, name)[row], (name, step)
                assert type(getattr(ctx, name)) in (int, bool), (name, type(getattr(ctx, name)))
            assert ctx.motif_notes == batch_ctx.motif_notes[row]
            assert type(ctx.music_theory) is float
            assert ctx.music_theory == batch_ctx.music_theory[row]
            for name, rule in MUSIC_THEORY_RULES.items():
                single, batch_value = rule(ctx), rule(batch_ctx)[row]
                assert type(single) is float, (name, type(single))
                assert single == batch_value and np.signbit(single) == np.signbit(batch_value), (
                    name,
                    step,
                    row,
                )


def test_user_terms_see_a_batch_of_one_in_the_single_engine():
    """Terms a user adds are written for batches: the single engine hands them ``[1]`` arrays."""
    seen = []

    def low_notes(ctx):
        seen.append((type(ctx), ctx.action.shape, ctx.history.shape, ctx.keys.tonic.tolist()))
        return ((ctx.pitch >= 48) & (ctx.pitch < 60)).astype(float)

    state = SingleCompositionState(
        4, RNN, RewardFunction(terms={"low_notes": low_notes}, weights={"low_notes": 2.0})
    )
    state.reset(np.array([5]), Key.from_name("D major"))
    rewards = [state.advance(token).terms["low_notes"] for token in (2, 30, 0, 3)]
    assert rewards == [1.0, 0.0, 0.0, 1.0]
    assert seen[1] == (RewardContext, (1,), (1, 1), [2])


def test_a_user_term_with_a_wrong_shape_is_named_in_the_single_engine():
    state = SingleCompositionState(4, RNN, RewardFunction(terms={"bad": lambda ctx: np.zeros(3)}))
    state.reset(np.array([5]), Key.from_name("C major"))
    with pytest.raises(ValueError, match=r"reward term 'bad' returned shape \(3,\)"):
        state.advance(14)
