"""The RL Tuner's wiring: each config switch reaches the code it names.

Each test here kills a mutation that once left the whole suite green: epsilon-greedy inverted,
learning-rate annealing removed, Double DQN switched off in the learner, Huber and MSE swapped;
plus short runs of the ``paper`` preset and of epsilon-greedy exploration, which no other test ran.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from agents.rl_tuner import dqn
from agents.rl_tuner.agent import RLTunerAgent
from agents.rl_tuner.config import make_config
from agents.rl_tuner.replay import CompositionBatch
from agents.rl_tuner.trainer import Trainer
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig
from melody_env.music.encoding import NUM_CLASSES
from tests.conftest import tiny_agent_config

BEST = NUM_CLASSES - 1
LOGITS = np.tile(np.arange(NUM_CLASSES, dtype=np.float64), (4000, 1))  # argmax: the last token


@pytest.mark.parametrize(
    ("epsilon", "low", "high"),
    [
        (0.0, 1.0, 1.0),  # never explores: always the argmax
        (0.5, 0.45, 0.58),  # half the time the argmax, else uniform: 0.5 + 0.5 / 38 = 0.513
        (1.0, 0.0, 0.06),  # always uniform: 1 / 38 = 0.026
    ],
)
def test_epsilon_greedy_explores_with_probability_epsilon(epsilon, low, high):
    rng = np.random.default_rng(0)
    actions = dqn.select_actions(LOGITS, "egreedy", epsilon, temperature=1.0, rng=rng)
    share_of_argmax = float(np.mean(actions == BEST))
    assert low <= share_of_argmax <= high
    if epsilon == 1.0:
        assert len(np.unique(actions)) == NUM_CLASSES


def test_boltzmann_samples_the_softmax_and_ignores_epsilon():
    logits = np.zeros((4000, NUM_CLASSES))
    logits[:, 5] = np.log(37.0)  # token 5 has half the probability mass
    rng = np.random.default_rng(0)
    actions = dqn.select_actions(logits, "boltzmann", epsilon=1.0, temperature=1.0, rng=rng)
    assert 0.46 <= float(np.mean(actions == 5)) <= 0.54


def _batch(length: int = 4, rows: int = 3, reward: float = 10.0) -> CompositionBatch:
    rng = np.random.default_rng(0)
    prior = np.log(np.full((rows, length, NUM_CLASSES), 1.0 / NUM_CLASSES, np.float32))
    terminals = np.zeros((rows, length), bool)
    terminals[:, -1] = True
    return CompositionBatch(
        primers=rng.integers(0, NUM_CLASSES, (rows, 1)),
        primer_lengths=np.ones(rows, np.int64),
        actions=rng.integers(0, NUM_CLASSES, (rows, length)),
        rewards=np.full((rows, length), reward, np.float32),
        prior_log_probs=prior.astype(np.float32),
        terminals=terminals,
    )


def _agent(**overrides) -> RLTunerAgent:
    config = make_config("fast", overrides.pop("algo", "q"), **overrides)
    agent = RLTunerAgent(config, NoteRNN(NoteRNNConfig(hidden_size=8), seed=0))
    with torch.no_grad():  # make the target network differ from the online one
        for parameter in agent.target_q_network.parameters():
            parameter.add_(torch.randn_like(parameter))
    return agent


@pytest.mark.parametrize(("loss", "reference"), [("huber", F.smooth_l1_loss), ("mse", F.mse_loss)])
def test_the_configured_loss_is_the_one_minimised(loss, reference):
    agent = _agent(loss=loss)
    batch = _batch(reward=10.0)  # TD errors far above 1, where Huber and MSE differ
    mask = np.ones(batch.actions.shape, bool)
    value, q_taken, targets = dqn.td_loss(agent, batch, mask, step=0)
    value = value.item()
    other = F.mse_loss if reference is F.smooth_l1_loss else F.smooth_l1_loss
    assert value == pytest.approx(float(reference(q_taken, targets)), rel=1e-6)
    assert value != pytest.approx(float(other(q_taken, targets)), rel=1e-3)


@pytest.mark.parametrize(
    ("algo", "double_dqn", "expected"),
    [("q", True, True), ("q", False, False), ("pure_rl", True, True), ("psi", True, False)],
)
def test_double_dqn_reaches_the_td_target(monkeypatch, algo, double_dqn, expected):
    """The learner bootstraps from the online argmax exactly when the config asks for Double DQN
    (and never for the soft backups of Psi and G)."""
    agent = _agent(algo=algo, double_dqn=double_dqn)
    batch = _batch()
    mask = np.ones(batch.actions.shape, bool)
    seen = []
    original = dqn.td_target

    def spy(*args, **kwargs):
        seen.append(kwargs["double_dqn"])
        return original(*args, **kwargs)

    monkeypatch.setattr(dqn, "td_target", spy)
    targets = dqn.td_loss(agent, batch, mask, step=0)[2]
    assert seen == [expected]
    # And the value itself: with Double DQN the target network is read at the online argmax.
    if algo == "q":
        _, next_online, next_target = dqn.recompute_scores(agent, batch)
        index = (next_online if expected else next_target).argmax(-1, keepdim=True)
        bootstrap = next_target.gather(-1, index).squeeze(-1)
        not_last = torch.from_numpy(~batch.terminals).float()
        by_hand = torch.from_numpy(batch.rewards) + agent.config.gamma * not_last * bootstrap
        assert torch.allclose(targets, by_hand.reshape(-1), atol=1e-5)


def test_learning_rate_is_annealed_in_the_optimizer(tiny_rnn_path, tmp_path, monkeypatch):
    config = tiny_agent_config(tiny_rnn_path, learning_rate=1e-3, final_learning_rate=1e-4)
    trainer = Trainer(config, tmp_path / "run", log=lambda *_: None)
    applied = []
    original = dqn.gradient_step

    def spy(agent, optimizer, *args, **kwargs):
        applied.append((trainer.progress.global_step, optimizer.param_groups[0]["lr"]))
        return original(agent, optimizer, *args, **kwargs)

    monkeypatch.setattr("agents.rl_tuner.dqn.gradient_step", spy)
    trainer.train()
    assert len(applied) >= 3
    for step, lr in applied:
        fraction = min(step / config.total_steps, 1.0)
        assert lr == pytest.approx(1e-3 + fraction * (1e-4 - 1e-3))
    assert applied[-1][1] < applied[0][1]


def test_epsilon_greedy_run_anneals_epsilon(tiny_rnn_path, tmp_path, monkeypatch):
    config = tiny_agent_config(
        tiny_rnn_path, exploration="egreedy", start_epsilon=1.0, end_epsilon=0.1
    )
    seen = []
    original = dqn.select_actions

    def spy(logits, mode, epsilon, temperature, rng):
        seen.append((mode, epsilon))
        return original(logits, mode, epsilon, temperature, rng)

    monkeypatch.setattr("agents.rl_tuner.dqn.select_actions", spy)
    Trainer(config, tmp_path / "run", log=lambda *_: None).train()
    modes = {mode for mode, _ in seen}
    epsilons = [epsilon for _, epsilon in seen]
    assert modes == {"egreedy"}
    assert epsilons[0] == 1.0 and epsilons[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(epsilons))


def test_a_shrunk_paper_preset_run_trains(tiny_rnn_path, tmp_path):
    """The ``paper`` preset (one composition at a time, epsilon-greedy, MSE, gamma 0.5, a batch of
    one random step per composition) runs end to end and writes its checkpoint."""
    config = make_config(
        "paper",
        "q",
        env={"composition_length": 8, "reward_rnn": tiny_rnn_path},
        total_steps=256,
        learning_starts=32,
        exploration_steps=128,
        replay_capacity=2048,
        eval_every=0,
        checkpoint_every=0,
        summary_compositions=0,
        num_samples=0,
        progress_bar=False,
    )
    assert (config.num_envs, config.loss, config.exploration, config.gamma) == (
        1,
        "mse",
        "egreedy",
        0.5,
    )
    trainer = Trainer(config, tmp_path / "run", log=lambda *_: None)
    before = [p.detach().clone() for p in trainer.agent.q_network.parameters()]
    trainer.train()
    assert trainer.progress.global_step >= 256
    assert trainer.progress.gradient_steps == pytest.approx((256 - 32) / 5, abs=2)
    after = list(trainer.agent.q_network.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert (tmp_path / "run" / "checkpoints").is_dir()


def test_eval_statistics_have_the_suites_names_and_hand_computed_values():
    """Two compositions of C4 E4 C4 D4 (eighths): a unique highest note (E4) and a lowest one
    played twice (C4). The motif term is positive at 3 + 1 of the 16 steps, the repeated-motif
    term at 1, the tonic term at the first step of the first composition only. A summary that
    swaps unique max and min, or motif and repeated motif, or renames a statistic, fails here."""
    from agents.rl_tuner.rollout import Compositions
    from agents.rl_tuner.summary import composition_stats
    from melody_env.rewards.rules import MUSIC_THEORY_RULES

    actions = np.array([[14, 0, 18, 0, 14, 1, 16, 0]] * 2)
    terms = {name: np.zeros((2, 8), np.float32) for name in MUSIC_THEORY_RULES}
    terms["motif"][0, [0, 2, 4]] = 1.0
    terms["motif"][1, 6] = 1.0
    terms["repeated_motif"][1, 6] = 1.0
    terms["tonic"][0, 0] = 3.0
    terms["key"][1, 2] = -1.0  # one note out of key
    zeros = np.zeros((2, 8), np.float32)
    compositions = Compositions(
        np.zeros((2, 1), np.int64),
        np.ones(2, np.int64),
        actions,
        zeros + 0.5,
        np.zeros((2, 8, NUM_CLASSES), np.float32),
        zeros,
        zeros - 1.0,
        terms,
    )
    stats = composition_stats(compositions)
    assert stats["unique_max"] == 1.0 and stats["unique_min"] == 0.0
    assert stats["in_motif"] == 4 / 16 and stats["in_repeated_motif"] == 1 / 16
    assert stats["starts_with_tonic"] == 0.5 and stats["not_in_key"] == 1 / 16
    assert stats["log_prob"] == -1.0 and stats["return"] == 4.0
    assert "starting_with_tonic" not in stats


def test_the_configs_reward_rnn_is_the_one_the_agent_and_its_envs_use(tiny_rnn_path):
    """``env.reward_rnn`` (the one place it lives since TrainConfig lost its own) is the Note RNN
    the agent starts from and its envs score with; a stored config with the older top-level
    ``reward_rnn`` loads into ``env``."""
    from agents.rl_tuner.config import TrainConfig
    from agents.tuner import RLTuner

    config = tiny_agent_config(tiny_rnn_path)
    assert config.env.reward_rnn == tiny_rnn_path
    model = RLTuner.from_config(config, verbose=0)
    expected = NoteRNN.load(tiny_rnn_path).state_dict()
    for name, tensor in model.agent.q_network.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    env_rnn = model.get_env().unwrapped.reward_rnn
    assert env_rnn.config.hidden_size == NoteRNN.load(tiny_rnn_path).config.hidden_size

    stored = config.to_dict()
    stored["reward_rnn"] = stored["env"].pop("reward_rnn")
    assert TrainConfig.from_dict(stored) == config
