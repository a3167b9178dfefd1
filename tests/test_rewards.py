"""Reward composition: presets of the original's modes, weights, custom terms, info breakdown."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import melody_env  # noqa: F401  (registers the env)
from melody_env.rewards import REWARD_MODES, RewardFunction, preset_weights
from melody_env.rewards.rules import MUSIC_THEORY_RULES
from tests.conftest import score_melody

NINE = list(MUSIC_THEORY_RULES)


def test_default_mode_is_the_papers_reward():
    weights = preset_weights("music_theory_all", 2.0)
    assert weights == {**{name: 2.0 for name in NINE}, "log_prob": 1.0}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("music_theory_only", {name: 3.0 for name in NINE}),
        ("music_theory_basic", {"key": 3.0, "tonic": 3.0, "repeated_notes": 3.0, "log_prob": 1.0}),
        (
            "music_theory_basic_plus_variety",
            {
                "key": 3.0,
                "tonic": 3.0,
                "repeated_notes": 3.0,
                "autocorrelation": 3.0,
                "log_prob": 1.0,
            },
        ),
        ("music_theory_random", {"key": 3.0, "tonic": 3.0, "repeated_notes": 3.0}),
        ("key_and_tonic", {"key": 3.0, "tonic": 3.0}),
        ("key", {"key_distribute_prob": 3.0}),
        ("non_repeating", {"non_repeating": 3.0}),
        ("preferred_intervals", {"preferred_intervals": 3.0}),
        ("scale", {"scale": 3.0}),
    ],
)
def test_presets(mode, expected):
    assert preset_weights(mode, 3.0) == expected


def test_every_mode_gives_finite_numbers_on_every_token(tiny_rnn):
    for mode in REWARD_MODES:
        env = gym.make("melody_env/MelodyComposition-v0", reward_mode=mode, reward_rnn=tiny_rnn)
        env.reset(seed=0)
        for token in range(38):
            if env.unwrapped.composition.size == 32:
                env.reset()
            _, reward, *_ = env.step(token)
            assert isinstance(reward, float) and np.isfinite(reward)


def test_key_distribute_prob_and_non_repeating():
    scored = score_melody("C4 C#4 C4 C4 C4 C4 C4 C4", mode="key")
    assert scored["key_distribute_prob"] == pytest.approx(
        [1 / 23, 0, 1 / 23, 1 / 23, 1 / 23, 1 / 23, 1 / 23, 1 / 23], abs=1e-6
    )
    scored = score_melody("C4 C4 C4 C4 C4 C4", mode="non_repeating")
    assert scored["non_repeating"] == [0.1, 0.1, 0.1, 0.1, 0.1, 0.0]


def test_scale_toy_mode_rewards_the_next_degree():
    scored = score_melody("C4 D4 E4 F4 hold F#4", mode="scale")
    # D4 after C4: next degree (0.8) + in scale (0.01) + a step up (0.05).
    assert scored["scale"][1:4] == pytest.approx([0.86, 0.86, 0.86])
    assert scored["scale"][4] == pytest.approx(0.1)  # hold
    assert scored["scale"][5] == pytest.approx(0.0)  # F#4 after the hold: nothing


def test_step_info_recombines_into_the_reward(tiny_rnn):
    env = gym.make("melody_env/MelodyComposition-v0", reward_rnn=tiny_rnn)
    _, info = env.reset(seed=3)
    prior = info["prior_log_probs"]
    assert prior.shape == (38,) and np.exp(prior).sum() == pytest.approx(1.0, abs=1e-5)
    rng = np.random.default_rng(0)
    for _ in range(32):
        action = int(rng.integers(38))
        _, reward, _, _, info = env.step(action)
        assert info["log_prob"] == pytest.approx(float(prior[action]), abs=1e-6)
        assert info["music_theory"] == pytest.approx(sum(info["reward_terms"][n] for n in NINE))
        assert reward == pytest.approx(2.0 * info["music_theory"] + info["log_prob"])
        prior = info["prior_log_probs"]


def test_custom_term_and_weights_through_make(tiny_rnn):
    def prefers_c(ctx):
        return (ctx.pitch % 12 == 0).astype(float)

    env = gym.make(
        "melody_env/MelodyComposition-v0",
        reward_rnn=tiny_rnn,
        reward_mode="key_and_tonic",
        reward_terms={"prefers_c": prefers_c},
        reward_weights={"prefers_c": 10.0, "tonic": 0.0, "motif": 1.0},
    )
    env.reset(seed=0)
    _, reward, _, _, info = env.step(14)  # C4 at step 0: would earn the tonic, switched off
    assert set(info["reward_terms"]) == {"key", "prefers_c", "motif"}
    assert reward == pytest.approx(10.0)
    _, reward, _, _, info = env.step(15)  # C#4: out of key
    assert reward == pytest.approx(-2.0)


def test_bad_reward_configuration_names_the_value(tiny_rnn):
    with pytest.raises(ValueError, match="no_such_mode"):
        RewardFunction("no_such_mode")
    with pytest.raises(ValueError, match="no_such_term"):
        RewardFunction(weights={"no_such_term": 1.0})
    with pytest.raises(ValueError, match="callable"):
        RewardFunction(terms={"x": 3})
    with pytest.raises(ValueError, match="shadow"):
        RewardFunction(terms={"key": lambda ctx: 0.0})
    env = gym.make(
        "melody_env/MelodyComposition-v0",
        reward_rnn=tiny_rnn,
        reward_terms={"broken": lambda ctx: np.zeros(5)},
    )
    env.reset(seed=0)
    with pytest.raises(ValueError, match="broken"):
        env.step(2)
