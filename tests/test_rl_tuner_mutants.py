"""Behaviour tests of agents/rl_tuner written against mutmut's survivors (docs/mutation_testing.md).

Hand-computed values of the algorithm's pieces: exploration and its schedules, the learning-rate
schedule, the TD targets, the replay and the gradient step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.rl_tuner import dqn, targets
from agents.rl_tuner.config import make_config
from agents.rl_tuner.replay import _ARRAYS, CompositionBatch, CompositionReplay
from agents.rl_tuner.trainer import Trainer
from melody_env.music.keys import Key
from melody_env.music.transposition import from_reference_log_probs, to_reference_tokens
from tests.conftest import tiny_agent_config


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


# --- One round of the loop: acting, learning as transitions come in, storing.


def test_a_round_learns_on_schedule_and_stores_compositions_that_end_terminal(
    tiny_rnn_path, tmp_path
):
    # 8 envs x 8 steps: a round is 8 vector steps of 8 transitions. Learning starts at the
    # 72nd transition (the first vector step of round 2: the replay is empty during round 1),
    # then one gradient step per 8 transitions: 8 in round 2 (at 72, 80, ..., 128).
    config = tiny_agent_config(tiny_rnn_path, learning_starts=72, train_frequency=8)
    trainer = Trainer(config, tmp_path / "run", log=lambda *_: None)
    run = trainer.dqn_run()
    learned = []
    finished, stop = dqn.play_round(run, on_learn=learned.append)
    assert (trainer.progress.global_step, len(learned), stop) == (64, 0, False)
    assert finished.actions.shape == (8, 8)
    assert len(trainer.replay) == 8
    expected = [[False] * 7 + [True]] * 8
    assert trainer.replay.terminals[:8].tolist() == expected
    np.testing.assert_array_equal(trainer.replay.actions[:8], finished.actions)  # C major
    np.testing.assert_array_equal(trainer.replay.primer_lengths[:8], finished.primer_lengths)
    for row, length in enumerate(finished.primer_lengths):
        stored = trainer.replay.primers[row, trainer.replay.primer_width - length :]
        np.testing.assert_array_equal(stored, finished.primers[row, -length:])

    trainer.progress.rounds += 1
    dqn.play_round(run, on_learn=learned.append)
    assert trainer.progress.global_step == 128
    assert len(learned) == trainer.progress.gradient_steps == 8
    assert all(isinstance(stats, dqn.StepStats) for stats in learned)
    assert trainer.replay.terminals[:16].tolist() == expected * 2


def test_a_replay_needs_room_for_one_composition():
    with pytest.raises(
        ValueError, match=r"^replay capacity must hold at least 1 composition, got 0$"
    ):
        CompositionReplay(0, 8, 1)


def test_a_replay_buffer_has_the_documented_types_and_keeps_one_primer_token_at_least():
    replay = CompositionReplay(3, 4, primer_width=0, num_classes=5, seed=1)
    assert (replay.capacity, replay.length, replay.primer_width, replay.num_classes) == (3, 4, 1, 5)
    assert (len(replay), replay.position, replay.transitions) == (0, 0, 0)
    assert replay.primers.shape == (3, 1) and replay.primers.dtype == np.int64
    assert replay.primer_lengths.dtype == replay.actions.dtype == np.int64
    assert replay.rewards.dtype == replay.prior_log_probs.dtype == np.float32
    assert replay.prior_log_probs.shape == (3, 4, 5)
    assert replay.terminals.dtype == np.bool_
    with pytest.raises(ValueError, match=r"^cannot sample from an empty replay buffer$"):
        replay.sample(1)


def test_the_replay_is_a_ring_of_right_aligned_primers():
    replay = CompositionReplay(2, 2, primer_width=3, num_classes=3)
    replay.add([7], [0, 1], [1.0, 2.0], np.zeros((2, 3)), [False, True])
    assert replay.primers[0].tolist() == [0, 0, 7]
    assert replay.primer_lengths[0] == 1
    replay.add([5, 6, 7, 8], [1, 1], [3.0, 4.0], np.zeros((2, 3)), [False, True])
    assert replay.primers[1].tolist() == [6, 7, 8]  # the last primer_width tokens
    assert replay.primer_lengths[1] == 3
    assert (len(replay), replay.position, replay.transitions) == (2, 0, 4)
    replay.add([9, 9], [2, 2], [5.0, 6.0], np.ones((2, 3)), [False, True])  # overwrites the oldest
    assert (len(replay), replay.position) == (2, 1)
    assert replay.primers[0].tolist() == [0, 9, 9]
    assert replay.actions[0].tolist() == [2, 2]
    assert replay.rewards[0].tolist() == [5.0, 6.0]
    assert replay.prior_log_probs[0].tolist() == [[1.0] * 3] * 2
    assert replay.terminals[0].tolist() == [False, True]
    with pytest.raises(ValueError, match=r"^a stored composition needs at least one primer token$"):
        replay.add([], [0, 0], [0.0, 0.0], np.zeros((2, 3)), [False, True])


def test_a_composition_in_another_key_is_stored_as_the_networks_read_it():
    replay = CompositionReplay(2, 3, primer_width=2)
    primer, actions = np.array([16, 0]), np.array([20, 1, 25])  # D4 hold | F#4 rest B4
    prior = np.log(np.arange(1, 39, dtype=np.float64) / 741)[None].repeat(3, axis=0)
    d_major = Key.from_name("D major")
    replay.add(primer, actions, [0.0] * 3, prior, [False, False, True], key_index=d_major.index)
    assert replay.primers[0].tolist() == to_reference_tokens(primer, d_major).tolist()
    assert replay.actions[0].tolist() == to_reference_tokens(actions, d_major).tolist()
    assert replay.actions[0].tolist() == [18, 1, 23]  # E4 rest A4: two semitones down
    np.testing.assert_allclose(
        from_reference_log_probs(replay.prior_log_probs[0], d_major), prior, rtol=1e-6
    )
    replay.add(primer, actions, [0.0] * 3, prior, [False, False, True], key_index=9 + 12)
    assert replay.actions[1].tolist() == actions.tolist()  # A minor is a reference key


def test_sampling_draws_distinct_compositions_when_it_can():
    replay = CompositionReplay(8, 2, primer_width=1, num_classes=3, seed=0)
    for n in range(5):
        replay.add([n + 1], [n % 3, 0], [float(n), 0.0], np.zeros((2, 3)), [False, True])
    batch = replay.sample(5)
    assert sorted(batch.rewards[:, 0].tolist()) == [0.0, 1.0, 2.0, 3.0, 4.0]  # each once
    assert batch.primers.shape == (5, 1) and batch.terminals[:, -1].all()
    assert batch.primer_lengths.tolist() == [1] * 5
    assert sorted(batch.primers[:, 0].tolist()) == [1, 2, 3, 4, 5]
    assert batch.prior_log_probs.shape == (5, 2, 3)
    assert replay.sample(12).rewards.shape == (12, 2)  # more than stored: with replacement


@pytest.mark.parametrize("per_composition", [1, 3])
def test_sample_steps_picks_distinct_steps_of_each_composition(per_composition):
    replay = CompositionReplay(2, 4, primer_width=1, seed=3)
    mask = replay.sample_steps(6, per_composition)
    assert mask.shape == (6, 4) and mask.dtype == np.bool_
    assert mask.sum(axis=1).tolist() == [per_composition] * 6
    assert mask.any(axis=0).all() or per_composition == 1  # spread over the steps


@pytest.mark.parametrize("per_composition", [None, 4, 9])
def test_sample_steps_takes_every_step_by_default(per_composition):
    mask = CompositionReplay(2, 4, primer_width=1).sample_steps(3, per_composition)
    assert mask.tolist() == [[True] * 4] * 3


def test_a_replay_of_one_composition_samples_it():
    replay = CompositionReplay(4, 2, primer_width=1, num_classes=3)
    replay.add([1], [2, 0], [1.5, 0.0], np.zeros((2, 3)), [False, True])
    assert replay.sample(3).actions.tolist() == [[2, 0]] * 3


def test_the_learning_rate_reaches_its_end_at_total_steps_of_one():
    config = make_config(
        "fast", "q", total_steps=1, learning_starts=0, learning_rate=0.003,
        final_learning_rate=0.001,
    )  # fmt: skip
    assert dqn.learning_rate(config, 1) == pytest.approx(0.001)


def test_boltzmann_exploration_samples_at_its_temperature():
    logits = np.tile([0.0, np.log(3.0)], (4000, 1))  # p = 1/4, 3/4 at temperature 1
    rng = np.random.default_rng(0)
    cold = dqn.select_actions(logits, "boltzmann", 0.0, 0.5, rng)  # softmax([0, 2 log 3]): 9/10
    assert 0.87 <= cold.mean() <= 0.93
    warm = dqn.select_actions(logits, "boltzmann", 0.0, 1.0, rng)
    assert 0.72 <= warm.mean() <= 0.78


def _run_after_one_round(tiny_rnn_path, tmp_path, **overrides):
    """A trainer's run after one round of acting (no learning yet): 8 compositions stored."""
    config = tiny_agent_config(tiny_rnn_path, learning_starts=384, **overrides)
    trainer = Trainer(config, tmp_path / "run", log=lambda *_: None)
    run = trainer.dqn_run()
    dqn.play_round(run)
    return run


def test_learn_step_samples_the_configured_steps_at_the_current_learning_rate(
    tiny_rnn_path, tmp_path, monkeypatch
):
    run = _run_after_one_round(
        tiny_rnn_path, tmp_path, transitions_per_composition=2, batch_size=3,
        learning_rate=0.01, final_learning_rate=0.001,
    )  # fmt: skip
    seen = []
    original = dqn.gradient_step

    def spy(agent, optimizer, batch, mask, step):
        seen.append((batch.actions.shape, mask.sum(axis=1).tolist(), step))
        return original(agent, optimizer, batch, mask, step)

    monkeypatch.setattr("agents.rl_tuner.dqn.gradient_step", spy)
    stats = dqn.learn_step(run)
    assert seen == [((3, 8), [2, 2, 2], 64)]
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 + 64 / 384 * (0.001 - 0.01))
    assert run.progress.gradient_steps == 1
    assert np.isfinite(stats.td_loss)


def test_a_non_finite_reward_stops_learn_step_naming_the_training_step(tiny_rnn_path, tmp_path):
    run = _run_after_one_round(tiny_rnn_path, tmp_path)
    run.replay.rewards[:] = np.inf
    message = r"^non-finite TD target at training step 64: \[inf, inf, inf, inf, inf\]; stopping "
    with pytest.raises(FloatingPointError, match=message):
        dqn.learn_step(run)


def test_a_round_in_another_key_stores_what_the_networks_read(tiny_rnn_path, tmp_path):
    config = tiny_agent_config(tiny_rnn_path, env={"composition_length": 8, "key": "D major"})
    trainer = Trainer(config, tmp_path / "run", log=lambda *_: None)
    run = trainer.dqn_run()
    finished, _ = dqn.play_round(run)
    expected = to_reference_tokens(finished.actions, "D major")
    assert not np.array_equal(expected, finished.actions)
    np.testing.assert_array_equal(trainer.replay.actions[:8], expected)


def test_td_loss_is_the_configured_loss_of_the_taken_actions_q_values(tiny_rnn_path, tmp_path):
    run = _run_after_one_round(tiny_rnn_path, tmp_path, loss="mse")
    batch = run.replay.sample(3)
    mask = run.replay.sample_steps(3, 2)
    loss, q_taken, targets = dqn.td_loss(run.agent, batch, mask, 64)
    assert q_taken.shape == targets.shape == (6,)  # one Q(s, a) per chosen step
    current = dqn.recompute_scores(run.agent, batch)[0].detach()
    rows, steps = mask.nonzero()
    by_hand = current[rows, steps, batch.actions[rows, steps]]
    np.testing.assert_allclose(q_taken.numpy(), by_hand, rtol=1e-6)
    assert float(loss.detach()) == pytest.approx(float(((q_taken - targets) ** 2).mean()), rel=1e-6)


def test_a_non_finite_q_value_stops_training_naming_the_loss_and_step(tiny_rnn_path, tmp_path):
    run = _run_after_one_round(tiny_rnn_path, tmp_path)
    with torch.no_grad():
        for parameter in run.agent.q_network.parameters():
            parameter.fill_(float("nan"))
    batch, mask = run.replay.sample(2), run.replay.sample_steps(2, None)
    with pytest.raises(FloatingPointError, match=r"^non-finite TD loss nan at training step 7$"):
        dqn.td_loss(run.agent, batch, mask, 7)


def test_a_non_finite_gradient_norm_stops_training_naming_the_step(
    tiny_rnn_path, tmp_path, monkeypatch
):
    run = _run_after_one_round(tiny_rnn_path, tmp_path)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *_: torch.tensor(float("inf")))
    batch, mask = run.replay.sample(2), run.replay.sample_steps(2, None)
    with pytest.raises(FloatingPointError, match=r"^non-finite gradient norm at training step 9$"):
        dqn.gradient_step(run.agent, run.optimizer, batch, mask, 9)


# --- The targets' arguments.


def test_bootstrap_value_is_the_plain_max_unless_double_dqn_is_asked():
    next_target = torch.tensor([[1.0, 3.0, 2.0]])
    assert targets.bootstrap_value("q", next_target).tolist() == [3.0]
    online = torch.tensor([[0.0, 0.0, 9.0]])
    assert targets.bootstrap_value("q", next_target, None, online, double_dqn=True).tolist() == [
        2.0
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: targets.policy_scores("g", torch.zeros(3)),
            "^G-learning's policy needs the prior's log-probabilities$",
        ),
        (
            lambda: targets.bootstrap_value("g", torch.zeros(1, 3)),
            "^the G-learning target needs the prior's log-probabilities at s'$",
        ),
        (
            lambda: targets.bootstrap_value("q", torch.zeros(1, 3), double_dqn=True),
            "^Double DQN needs the online network's scores at s'$",
        ),
    ],
)
def test_a_target_missing_an_input_says_which(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("rows", [[0, 1, 2, 3], [1, 2]])  # three primer lengths, and two
def test_recompute_scores_of_mixed_primer_lengths_equal_each_composition_alone(
    tiny_rnn_path, tmp_path, rows
):
    run = _run_after_one_round(tiny_rnn_path, tmp_path)
    rng = np.random.default_rng(0)
    primers = np.array([[0, 0, 5], [0, 7, 9], [0, 0, 11], [4, 6, 8]])
    lengths = np.array([1, 2, 1, 3])
    actions = rng.integers(0, 38, (4, 8))

    def batch(rows):
        return CompositionBatch(
            primers[rows],
            lengths[rows],
            actions[rows],
            np.zeros((len(rows), 8), np.float32),
            np.zeros((len(rows), 8, 38), np.float32),
            np.zeros((len(rows), 8), bool),
        )

    together = dqn.recompute_scores(run.agent, batch(rows))
    for position, row in enumerate(rows):
        alone = dqn.recompute_scores(run.agent, batch([row]))
        for mixed, single in zip(together, alone, strict=True):
            assert mixed.shape == (len(rows), 8, 38)
            torch.testing.assert_close(mixed[position : position + 1].detach(), single.detach())


def test_a_replay_of_capacity_one_keeps_the_latest_composition():
    replay = CompositionReplay(1, 2, primer_width=1, num_classes=3)
    for n in range(2):
        replay.add([1], [n, n], [0.0, 0.0], np.zeros((2, 3)), [False, True])
    assert (len(replay), replay.actions.tolist()) == (1, [[1, 1]])
