"""Behaviour tests of agents/rl_tuner written against mutmut's survivors (docs/mutation_testing.md).

Hand-computed values of the algorithm's pieces: exploration and its schedules, the learning-rate
schedule, the TD targets, the replay and the gradient step.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.rl_tuner import dqn
from agents.rl_tuner.config import make_config
from agents.rl_tuner.replay import _ARRAYS, CompositionReplay


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


def test_linear_epsilon_over_one_step():
    assert dqn.linear_epsilon(0, 1.0, 0.1, 1) == 1.0
    assert dqn.linear_epsilon(1, 1.0, 0.1, 1) == 0.1


# --- The replay of whole compositions.


def filled_replay(capacity=4, compositions=3, length=2, seed=0) -> CompositionReplay:
    replay = CompositionReplay(capacity, length, primer_width=2, num_classes=3, seed=seed)
    for n in range(compositions):
        replay.add(
            primer=[1, 2 + n],
            actions=[n, n + 1],
            rewards=[0.5 * n, -1.0],
            prior_log_probs=np.full((length, 3), -float(n)),
            terminals=[False, True],
        )
    return replay


def test_replay_files_round_trip(tmp_path):
    replay = filled_replay()
    replay.save(tmp_path / "replay.npz")
    restored = CompositionReplay(4, 2, primer_width=2, num_classes=3, seed=9)
    restored.load(tmp_path / "replay.npz", replay.state())
    assert (len(restored), restored.position) == (3, 3)
    np.testing.assert_array_equal(restored.primers[:3], [[1, 2], [1, 3], [1, 4]])
    np.testing.assert_array_equal(restored.rewards[:3, 0], [0.0, 0.5, 1.0])
    assert restored.sample(2).actions.tolist() == replay.sample(2).actions.tolist()


def test_a_replay_file_without_an_array_is_named(tmp_path):
    path = tmp_path / "replay.npz"
    arrays = {name: getattr(filled_replay(), name)[:3] for name in _ARRAYS[:-1]}
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"^replay file .* lacks the arrays \['terminals'\]$"):
        filled_replay().load(path, filled_replay().state())


def test_a_replay_file_of_another_shape_is_named(tmp_path):
    path = tmp_path / "replay.npz"
    filled_replay(length=2).save(path)
    other = CompositionReplay(4, 3, primer_width=2, num_classes=3)
    message = r"^replay file .*: array 'actions' has shape \(3, 2\), expected \(3, 3\)$"
    with pytest.raises(ValueError, match=message):
        other.load(path, {"size": 3, "position": 3, "rng": other.state()["rng"]})


@pytest.mark.parametrize("content", ["truncated", "pickled"])
def test_an_unreadable_or_pickled_replay_file_is_refused(tmp_path, content):
    path = tmp_path / "replay.npz"
    replay = filled_replay()
    replay.save(path)
    if content == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    else:  # object arrays load only with pickle, which a checkpoint must never run
        arrays = {name: getattr(replay, name)[:3] for name in _ARRAYS}
        arrays["actions"] = np.array([[0, 1], [1, 2], [2, None]], dtype=object)
        np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"^replay file .* is unreadable: "):
        filled_replay().load(path, replay.state())
