"""Behaviour tests of agents/rl_tuner written against mutmut's survivors (docs/mutation_testing.md).

Hand-computed values of the algorithm's pieces: exploration and its schedules, the learning-rate
schedule, the TD targets, the replay and the gradient step.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.rl_tuner import dqn
from agents.rl_tuner.config import make_config


@pytest.mark.parametrize(
    ("step", "start", "end", "duration", "expected"),
    [
        (0, 1.0, 0.1, 100, 1.0),
        (25, 1.0, 0.1, 100, 0.775),
        (100, 1.0, 0.1, 100, 0.1),
        (150, 1.0, 0.1, 100, 0.1),  # held at the end
        (10, 0.5, 0.3, 0, 0.3),  # no annealing: the end value at once
        (10, 0.5, 0.3, -5, 0.3),
        (1, 1.0, 0.0, 3, 0.666666666667),  # rounded to 12 decimals
    ],
)
def test_linear_epsilon(step, start, end, duration, expected):
    assert dqn.linear_epsilon(step, start, end, duration) == expected


def test_epsilon_follows_the_config_and_is_zero_for_boltzmann():
    config = make_config(
        "fast", "q", exploration="egreedy", start_epsilon=0.9, end_epsilon=0.1,
        exploration_steps=80,
    )  # fmt: skip
    assert [dqn.epsilon(config, step) for step in (0, 40, 80, 1000)] == [0.9, 0.5, 0.1, 0.1]
    boltzmann = make_config("fast", "q", exploration="boltzmann")
    assert dqn.epsilon(boltzmann, 0) == 0.0


def test_learning_rate_is_constant_or_annealed_linearly_to_total_steps():
    constant = make_config("fast", "q", learning_rate=0.01, final_learning_rate=None)
    assert dqn.learning_rate(constant, 0) == dqn.learning_rate(constant, 10**6) == 0.01
    annealed = make_config(
        "fast", "q", learning_rate=0.01, final_learning_rate=0.002, total_steps=400
    )
    rates = [dqn.learning_rate(annealed, step) for step in (0, 100, 400, 800)]
    assert rates == pytest.approx([0.01, 0.008, 0.002, 0.002])


def test_an_unknown_exploration_mode_is_named():
    with pytest.raises(ValueError, match=r"^unknown exploration mode 'greedy'; choose egreedy or"):
        dqn.select_actions(np.zeros((2, 3)), "greedy", 0.1, 1.0, np.random.default_rng(0))


def test_epsilon_greedy_takes_the_argmax_at_epsilon_zero_and_random_tokens_at_one():
    logits = np.array([[0.0, 2.0, 1.0], [5.0, 0.0, 0.0]])
    rng = np.random.default_rng(0)
    greedy = dqn.select_actions(logits, "egreedy", 0.0, 1.0, rng)
    assert greedy.tolist() == [1, 0]
    assert greedy.dtype == np.int64
    many = np.repeat(logits, 500, axis=0)
    explored = dqn.select_actions(many, "egreedy", 1.0, 1.0, rng)
    assert set(explored.tolist()) == {0, 1, 2}  # every token, uniformly
    assert abs((explored == 2).mean() - 1 / 3) < 0.05
