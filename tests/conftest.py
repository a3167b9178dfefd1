"""Shared fixtures: a small seeded Note RNN and helpers to score hand-written melodies."""

from __future__ import annotations

import numpy as np
import pytest

from melody_env.envs.composition_state import CompositionState
from melody_env.models import NoteRNN, NoteRNNConfig
from melody_env.music.encoding import token_from_name
from melody_env.music.keys import Key
from melody_env.rewards.composition import RewardFunction


@pytest.fixture(scope="session")
def tiny_rnn() -> NoteRNN:
    """A seeded random Note RNN (16 units): fast, and enough where log p does not matter."""
    return NoteRNN(NoteRNNConfig(hidden_size=16), seed=0)


@pytest.fixture(scope="session")
def tiny_rnn_path(tiny_rnn, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("rnn") / "tiny.safetensors"
    tiny_rnn.save(path)
    return str(path)


def tiny_agent_config(reward_rnn: str, **overrides):
    """The RL Tuner's ``fast`` config shrunk to seconds: 8 compositions of 8 steps at once, 384
    steps, a gradient step per 16 transitions from step 64, a checkpoint every 128 steps, no
    evaluation, summary or samples. ``algo`` and any field can be overridden."""
    from agents.rl_tuner.config import make_config

    env = {"composition_length": 8, "reward_rnn": reward_rnn} | overrides.pop("env", {})
    base = dict(
        num_envs=8,
        env=env,
        total_steps=384,
        learning_starts=64,
        train_frequency=16,
        batch_size=4,
        exploration_steps=256,
        eval_every=0,
        checkpoint_every=128,
        summary_compositions=0,
        num_samples=0,
        progress_bar=False,
    )
    return make_config("fast", overrides.pop("algo", "q"), **(base | overrides))


def tokens(text: str) -> list[int]:
    """``"C4 hold D4 rest"`` -> tokens."""
    return [token_from_name(name) for name in text.split()]


_SCORING_RNN = NoteRNN(NoteRNNConfig(hidden_size=8), seed=0)


def score_melody(
    text: str, key: str = "C major", length: int | None = None, mode="music_theory_only"
):
    """Per-step reward terms of a melody placed after a one-token primer.

    Returns a dict term -> list of per-step values (and ``"music_theory"``).
    """
    melody = tokens(text)
    length = length or len(melody)
    state = CompositionState(1, length, _SCORING_RNN, RewardFunction(mode, reward_scaler=1.0))
    state.reset([np.array([0])], [Key.from_name(key)])
    per_step: dict[str, list[float]] = {}
    for token in melody:
        breakdown = state.advance(np.array([token]))
        for name, value in breakdown.terms.items():
            per_step.setdefault(name, []).append(round(float(value[0]), 6))
        per_step.setdefault("music_theory", []).append(round(float(breakdown.music_theory[0]), 6))
    return per_step
