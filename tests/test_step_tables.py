"""The rule engine's incremental state and lookup tables answer exactly as the theory functions.

The rule engine keeps what the rules need token by token (step tables, melodic line, window
codes); the whole-composition functions of :mod:`melody_env.music.theory` recompute everything
from the bare history. Both must give the same detectors and rewards, bit for bit, on any melody
in any key.
"""

from __future__ import annotations

import numpy as np
import pytest

from melody_env.envs.composition_state import CompositionState
from melody_env.models import NoteRNN, NoteRNNConfig
from melody_env.music import theory
from melody_env.music.encoding import NO_EVENT, NOTE_OFF
from melody_env.music.keys import KEY_NAMES, Key
from melody_env.rewards import rule_engine, rules
from melody_env.rewards.composition import RewardFunction
from melody_env.rewards.context import RewardContext
from melody_env.rewards.rules import MUSIC_THEORY_RULES, RULE_NAMES

DERIVED = ("pitch", "in_key", "interval", "is_repeating", "motif_notes")


def random_melodies(rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
    """Melodies rich in what the rules look for: repeats, holds, rests, leaps and motifs."""
    kinds = rng.integers(0, 4, size=batch)
    melodies = rng.integers(0, 38, size=(batch, length))
    few = rng.choice([0, 0, 1, 14, 14, 16, 21, 26, 2, 37], size=(batch, length))
    motif = np.tile(rng.choice([0, 1, 14, 16, 18, 21], size=(batch, 8)), (1, length // 8 + 1))
    walk = np.clip(
        14 + np.cumsum(rng.choice([-12, -7, -2, -1, 1, 2, 7, 9], (batch, length)), 1), 2, 37
    )
    walk = np.where(rng.random((batch, length)) < 0.3, rng.integers(0, 2, (batch, length)), walk)
    for kind, source in enumerate((few, motif[:, :length], walk)):
        melodies[kinds == kind + 1] = source[kinds == kind + 1]
    return melodies


class Recorder:
    """A reward function that keeps each step's context (and rewards as the env's)."""

    def __init__(self) -> None:
        self.reward = RewardFunction("music_theory_all")
        self.contexts: list[RewardContext] = []

    def __call__(self, ctx: RewardContext):
        self.contexts.append(ctx)
        return self.reward(ctx)


@pytest.mark.parametrize("batch", [1, 13])
def test_incremental_state_equals_whole_history_functions(batch):
    rng = np.random.default_rng(batch)
    rnn = NoteRNN(NoteRNNConfig(hidden_size=4), seed=0)
    length = 40
    for episode in range(6):
        recorder = Recorder()
        state = CompositionState(batch, length, rnn, recorder)
        keys = [Key.from_name(KEY_NAMES[i]) for i in rng.integers(0, 24, batch)]
        state.reset([rng.integers(0, 38, size=1 + episode % 3) for _ in range(batch)], keys)
        melodies = random_melodies(rng, batch, length)
        for step in range(length):
            state.advance(melodies[:, step].copy())
            fast = recorder.contexts[-1]
            slow = RewardContext(
                fast.history.copy(),
                fast.action,
                fast.step,
                fast.length,
                fast.keys,
                fast.previous_token,
                fast.log_prob,
                fast.leap_outcome,
            )
            for name in DERIVED:  # the engine's facts, and theory's from the history
                got, expected = getattr(fast, name), getattr(slow, name)
                assert got.dtype == expected.dtype, name
                np.testing.assert_array_equal(got, expected, err_msg=f"{name} at step {step}")
            expected = rules_from_history(slow)
            for index, name in enumerate(RULE_NAMES):
                got = fast.rule_values[index]
                assert got.tobytes() == expected[index].tobytes(), f"{name} at step {step}"
            # A context built by hand steps the engine through its history: the same values.
            assert slow.rule_values.tobytes() == fast.rule_values.tobytes()
            assert slow.music_theory.tobytes() == fast.music_theory.tobytes()


def rules_from_history(ctx: RewardContext) -> np.ndarray:
    """``float64 [9, B]``: each rule of each composition, its facts found by the whole-history
    functions of :mod:`melody_env.music.theory` (not by the engine's incremental state)."""
    sequence = ctx.sequence
    rho = theory.onset_autocorrelation(sequence, theory.AUTOCORRELATION_LAGS)
    notes = theory.motif_distinct_notes(sequence)
    repeats = theory.repeats_earlier_window(sequence)
    high, low = theory.unique_extremes(sequence)
    is_tonic = theory.is_pitch_class(ctx.pitch, ctx.keys.tonic)
    last = ctx.is_last_step
    values = np.empty((len(RULE_NAMES), ctx.batch_size))
    for b in range(ctx.batch_size):
        values[:, b] = [
            rules.key_reward(ctx.in_key[b]),
            rules.tonic_reward(ctx.step, ctx.length, ctx.action[b], is_tonic[b]),
            rules.repeated_notes_reward(ctx.is_repeating[b]),
            rules.autocorrelation_reward(rho[b]),
            rules.motif_reward(notes[b]),
            rules.repeated_motif_reward(repeats[b], notes[b]),
            rules.preferred_intervals_reward(ctx.interval[b]),
            rules.leap_resolution_reward(ctx.leap_outcome[b]),
            rules.unique_extremes_reward(last, high[b], low[b]),
        ]
    return values


def test_leap_memory_matches_leap_step():
    """The tabulated leap state gives leap_step's outcomes over whole melodies."""
    rng = np.random.default_rng(0)
    melodies = random_melodies(rng, 64, 48)
    recorder = Recorder()
    state = CompositionState(64, 48, NoteRNN(NoteRNNConfig(hidden_size=2), seed=0), recorder)
    state.reset([np.array([1])] * 64, [Key.from_name("D minor")] * 64)
    leap, previous = theory.LeapState.empty(64), np.full(64, theory.NOT_A_PITCH)
    for step in range(48):
        state.advance(melodies[:, step].copy())
        outcome, leap = theory.leap_step(leap, previous, melodies[:, step])
        np.testing.assert_array_equal(recorder.contexts[-1].leap_outcome, outcome)
        pitch = theory.TOKEN_PITCHES[melodies[:, step]]
        previous = np.where(pitch != theory.NOT_A_PITCH, pitch, previous)


def repetition_by_scanning(history: list[int], action: int) -> bool:
    """The docstring's definition, one melody at a time: scan back over the current run."""
    repeats, interrupted = 0, False
    for token in reversed(history):
        if token == action:
            repeats += 1
        elif token in (NO_EVENT, NOTE_OFF):
            interrupted = True
        else:
            break
    if action == NOTE_OFF:
        return repeats > 1
    return repeats > (6 if interrupted else 4)


def test_repetition_follows_its_definition():
    rng = np.random.default_rng(1)
    for _ in range(300):
        length = int(rng.integers(0, 20))
        history = rng.choice([0, 0, 1, 5, 5, 5, 7], size=(8, length))
        action = rng.choice([0, 1, 5, 7], size=8)
        got = theory.is_excessive_repetition(history, action)
        expected = [
            repetition_by_scanning(list(h), a) for h, a in zip(history, action, strict=True)
        ]
        assert got.tolist() == expected, (history, action)


def test_window_codes_identify_windows():
    rng = np.random.default_rng(2)
    sequence = rng.integers(0, 38, size=(3, 30))
    codes = theory.window_codes(sequence, 8)
    windows = np.lib.stride_tricks.sliding_window_view(sequence, 8, axis=1)
    same_code = codes[:, :, None] == codes[:, None, :]
    same_window = (windows[:, :, None, :] == windows[:, None, :, :]).all(axis=3)
    np.testing.assert_array_equal(same_code, same_window)
    engine = rule_engine.RuleEngine(3, 30)  # the engine's code, kept token by token
    for step, column in enumerate(sequence.T):
        engine.advance(step, column)
        if step >= 7:
            np.testing.assert_array_equal(engine.state[rule_engine.WINDOW_CODE], codes[:, step - 7])


def autocorrelation_by_formula(tokens: list[int], lag: int) -> float:
    """rho_k of the onsets' pitches, straight from the docstring's formula."""
    line = [float(theory.TOKEN_PITCHES[t]) for t in tokens if theory.TOKEN_PITCHES[t] >= 0]
    n = len(line)
    if lag >= n:
        return 0.0
    mean = sum(line) / n
    variance = sum((x - mean) ** 2 for x in line) / n
    if variance == 0:
        return 0.0
    products = sum((line[i] - mean) * (line[i - lag] - mean) for i in range(lag, n))
    return products / (n * variance)


def test_autocorrelation_follows_its_formula():
    rng = np.random.default_rng(3)
    for _ in range(200):
        sequence = random_melodies(rng, 4, int(rng.integers(0, 40)))
        got = theory.onset_autocorrelation(sequence, (1, 2, 3))
        for row, tokens in enumerate(sequence.tolist()):
            expected = [autocorrelation_by_formula(tokens, lag) for lag in (1, 2, 3)]
            np.testing.assert_allclose(got[row], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scaler", [2.0, 1.0, 0.5, 0.1, 8.0])
@pytest.mark.parametrize("mode", ["music_theory_all", "music_theory_basic", "scale"])
def test_reward_sums_run_in_term_order(mode, scaler):
    """Total and r_MT equal ``0 + w1 * v1 + w2 * v2 + ...`` bit for bit, whatever the weights."""
    rng = np.random.default_rng(4)
    recorder = Recorder()
    recorder.reward = RewardFunction(mode, reward_scaler=scaler)
    state = CompositionState(16, 32, NoteRNN(NoteRNNConfig(hidden_size=4), seed=0), recorder)
    state.reset([np.array([1])] * 16, [Key.from_name("E minor")] * 16)
    for step_tokens in random_melodies(rng, 16, 32).T:
        breakdown = state.advance(step_tokens.copy())
        ctx = recorder.contexts[-1]
        total, music_theory = np.zeros(16), 0
        for name, weight in recorder.reward.weights.items():
            total = total + weight * breakdown.terms[name]
        for rule in MUSIC_THEORY_RULES.values():
            music_theory = music_theory + rule(ctx)
        assert breakdown.total.tobytes() == total.tobytes()
        assert breakdown.music_theory.tobytes() == music_theory.tobytes()


@pytest.mark.parametrize("bad", [-1, 38, 10**6])
def test_engine_refuses_a_token_out_of_range_before_changing_its_state(bad):
    engine = rule_engine.RuleEngine(3, 8)
    engine.advance(0, np.array([14, 16, 18]))
    before = engine.state.copy()
    with pytest.raises(IndexError, match=r"outside 0\.\.37"):
        engine.advance(1, np.array([14, bad, 18]))
    np.testing.assert_array_equal(engine.state, before)
