"""Behaviour tests of the RL Tuner's I/O modules (config, checkpoint, trainer, rollout, agent,
summary) written against mutmut's survivors (docs/mutation_testing.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agents.rl_tuner.config import TrainConfig, make_config, paper_config
from melody_env import EnvConfig

# The original's training run (../shared/spec/rl_tuner.md §3.3, rl_tuner_train.py and the paper):
# 1M steps, 500k of them exploring epsilon-greedily down to 0.1, gamma 0.5, a minibatch of 32
# every 5 steps from a 100k replay, target update rate 0.01, MSE, no Double DQN, Adam clipped
# at 5; one composition at a time; evaluation every 100k steps, checkpoints every 50k.
PAPER = {
    "preset": "paper",
    "total_steps": 1_000_000,
    "num_envs": 1,
    "gamma": 0.5,
    "learning_rate": 1e-3,
    "batch_size": 32,
    "transitions_per_composition": 1,
    "train_frequency": 5,
    "learning_starts": 32,
    "target_network_update_rate": 0.01,
    "replay_capacity": 100_000,
    "loss": "mse",
    "max_grad_norm": 5.0,
    "double_dqn": False,
    "exploration": "egreedy",
    "start_epsilon": 1.0,
    "end_epsilon": 0.1,
    "exploration_steps": 500_000,
    "eval_every": 100_000,
    "eval_compositions": 100,
    "eval_num_envs": 100,
    "checkpoint_every": 50_000,
}


@pytest.mark.parametrize("algo", ["q", "psi", "g", "pure_rl"])
def test_the_paper_preset_is_the_originals_run(algo):
    config = paper_config(algo)
    assert make_config("paper", algo) == config
    fields = dataclasses.asdict(config)
    assert {name: fields[name] for name in PAPER} == PAPER
    assert type(config.gamma) is float and type(config.double_dqn) is bool
    # Everything else is TrainConfig's default, and the env is the paper's reward for algo.
    mode = "music_theory_only" if algo in ("g", "pure_rl") else "music_theory_all"
    assert config.algo == algo and config.env == EnvConfig(reward_mode=mode)
    assert config == dataclasses.replace(TrainConfig(algo=algo, env=config.env), **PAPER)


def test_a_stored_config_gets_its_algorithms_reward_mode_only_when_it_has_none():
    # Stored before the reward mode was part of env: the algorithm's (G sees music theory only).
    assert TrainConfig.from_dict({"algo": "g"}).env.reward_mode == "music_theory_only"
    assert TrainConfig.from_dict({"algo": "g", "env": {}}).env.reward_mode == "music_theory_only"
    assert TrainConfig.from_dict({}).env.reward_mode == "music_theory_all"  # the default algo, q
    # A stored mode is kept, whatever the algorithm's default.
    stored = {"algo": "g", "env": {"reward_mode": "music_theory_all"}}
    assert TrainConfig.from_dict(stored).env.reward_mode == "music_theory_all"
    with pytest.raises(ValueError):
        TrainConfig.from_dict(["algo", "q"])


def test_loading_tensors_names_their_source(tiny_rnn_path):
    from agents.rl_tuner.agent import RLTunerAgent
    from melody_env.models.note_rnn import NoteRNN
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(tiny_rnn_path)
    agent = RLTunerAgent(config, NoteRNN.load(tiny_rnn_path))
    with pytest.raises(ValueError, match=r"^tensors \(q_network\.\*\) does not match"):
        agent.load_named_tensors({})
    with pytest.raises(ValueError, match=r"^my\.safetensors \(q_network\.\*\)"):
        agent.load_named_tensors({}, source="my.safetensors")


def test_train_prints_its_messages_with_print_only(tiny_rnn_path, tmp_path, capsys):
    from agents.rl_tuner.trainer import train
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(tiny_rnn_path, total_steps=64, eval_every=64, eval_compositions=8)
    train(config, tmp_path / "quiet", log=lambda message: None)
    assert capsys.readouterr().out == ""
    train(config, tmp_path / "loud")
    assert capsys.readouterr().out.startswith("eval @ 0: r_MT/step ")


def test_a_resumed_optimizer_has_the_settings_it_was_saved_with(tiny_rnn_path, tmp_path):
    from agents.rl_tuner.checkpoint import load_checkpoint
    from agents.rl_tuner.trainer import Trainer, train
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(tiny_rnn_path, total_steps=128)
    train(config, tmp_path / "run", log=lambda message: None)
    fresh = Trainer(config, None).optimizer.param_groups[0]
    resumed = Trainer(load_checkpoint(tmp_path / "run").config, tmp_path / "run", resume=True)
    group = resumed.optimizer.param_groups[0]
    assert group["betas"] == fresh["betas"] and isinstance(group["betas"], tuple)
    assert {k: v for k, v in group.items() if k not in ("params", "lr")} == {
        k: v for k, v in fresh.items() if k not in ("params", "lr")
    }


def test_load_agent_loads_an_rloo_run_as_its_policy(tiny_rnn_path, tmp_path):
    from agents.rl_tuner.checkpoint import load_agent
    from agents.rloo.config import RLOOConfig, default_env
    from agents.rloo.policy import RLOOPolicy
    from agents.rloo.run import train

    config = RLOOConfig(
        env=default_env().replace(reward_rnn=tiny_rnn_path, composition_length=8),
        num_primers=4,
        samples_per_primer=2,
        total_steps=64,
        summary_compositions=0,
        eval_num_envs=8,
    )
    train(config, tmp_path / "rloo", log=lambda message: None)
    policy = load_agent(tmp_path / "rloo")
    assert isinstance(policy, RLOOPolicy) and policy.config == config


def hand_compositions():
    """Two compositions of 8 steps: one opens on C3 (the lowest pitch) and has a resolved and a
    doubled leap, the other opens on middle C and has one resolved leap."""
    import numpy as np

    from agents.rl_tuner.rollout import Compositions
    from melody_env.evaluation.metrics import MUSIC_THEORY_RULES

    actions = np.array([[2, 1, 1, 14, 16, 18, 19, 21], [14, 16, 18, 19, 21, 23, 25, 26]])
    terms = {name: np.zeros((2, 8), np.float32) for name in MUSIC_THEORY_RULES}
    terms["leap_resolution"][0, [3, 6]] = (5.0, -5.0)
    terms["leap_resolution"][1, 4] = 5.0
    music_theory = np.full((2, 8), 0.5, np.float32)
    music_theory[1] = 1.5
    return Compositions(
        primers=np.array([[0, 3], [5, 6]]),
        primer_lengths=np.array([1, 2]),
        actions=actions,
        rewards=np.full((2, 8), 0.25, np.float32),
        prior_log_probs=np.zeros((2, 8, 38), np.float32),
        music_theory=music_theory,
        log_prob=np.full((2, 8), -1.0, np.float32),
        terms=terms,
        keys=np.array([0, 7]),
    )


def test_composition_stats_by_hand():
    from agents.rl_tuner.summary import composition_stats

    stats = composition_stats(hand_compositions())
    assert stats["compositions"] == 2
    assert stats["music_theory_per_composition"] == (8 * 0.5 + 8 * 1.5) / 2
    assert stats["return"] == 8 * 0.25
    assert stats["leaps_per_composition"] == 3 / 2  # resolved and doubled leaps alike
    assert stats["starts_on_lowest"] == 0.5 and stats["starts_on_highest"] == 0.0  # exploit
    assert stats["distinct_compositions"] == 2 and stats["distinct_openings"] == 2
    assert stats["music_theory"] == 1.0 and stats["log_prob"] == -1.0  # per step
    assert all(np.isfinite(value) for value in stats.values())


def test_take_keeps_the_first_rows_of_every_field():
    compositions = hand_compositions()
    first = compositions.take(1)
    for field in dataclasses.fields(compositions):
        whole, taken = getattr(compositions, field.name), getattr(first, field.name)
        if field.name == "terms":
            assert all(np.array_equal(taken[n], whole[n][:1]) for n in whole)
        else:
            assert np.array_equal(taken, whole[:1]), field.name


class ScalarRecorder:
    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def flush(self):
        pass


def test_an_evaluation_writes_every_finite_statistic_and_one_line(tiny_rnn_path):
    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    messages = []
    config = tiny_agent_config(tiny_rnn_path, eval_compositions=8, eval_num_envs=8)
    trainer = Trainer(config, None, log=messages.append, tensorboard_log=None)
    recorder = ScalarRecorder()
    stats = trainer._evaluate(recorder)
    assert recorder.scalars == [
        (f"eval/{name}", value, 0) for name, value in stats.items() if np.isfinite(value)
    ]
    assert len(recorder.scalars) > 20
    assert messages == [
        f"eval @ 0: r_MT/step {stats['music_theory']:.2f}, log p {stats['log_prob']:.2f}, "
        f"not in key {100 * stats['not_in_key']:.1f}%, repeated "
        f"{100 * stats['excessively_repeated']:.2f}%, tonic {100 * stats['starts_with_tonic']:.0f}%"
    ]


def test_an_evaluation_samples_at_the_configured_temperature(tiny_rnn_path):
    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    def evaluate(temperature):
        config = tiny_agent_config(
            tiny_rnn_path, eval_compositions=16, eval_num_envs=16, temperature=temperature
        )
        trainer = Trainer(config, None, log=lambda message: None, tensorboard_log=None)
        return trainer._evaluate(ScalarRecorder())

    cold, warm = evaluate(0.01), evaluate(1.0)
    assert cold["distinct_compositions"] < warm["distinct_compositions"]


def test_a_key_any_run_is_summarised_in_c_major_under_its_own_reward_rnn(tiny_rnn_path):
    import json

    from agents.rl_tuner.agent import RLTunerAgent
    from agents.rl_tuner.summary import evaluation_summary
    from melody_env.models.note_rnn import NoteRNN
    from tests.conftest import tiny_agent_config

    any_key = tiny_agent_config(
        tiny_rnn_path, summary_compositions=8, eval_num_envs=8, env={"key": "any"}
    )
    agent = RLTunerAgent(any_key, NoteRNN.load(tiny_rnn_path))
    columns, results = evaluation_summary(agent, any_key)
    c_major = dataclasses.replace(any_key, env=any_key.env.replace(key="C major"))
    # The untuned Note RNN's column does not depend on the agent: the same env, key and primers.
    note_rnn = evaluation_summary(agent, c_major)[0]["note_rnn"]
    assert json.dumps(columns["note_rnn"]) == json.dumps(note_rnn)
    assert [result.name for result in results] == ["Note RNN (untuned)", "q sampled", "q greedy"]
    assert all(value is not None for stats in columns.values() for value in stats.values())
    # The tiny reward RNN scores the compositions (the shipped one would give about -1).
    assert -4.0 < columns["note_rnn"]["log_prob"] < -3.0


def test_a_stop_checkpoints_once_and_says_how_to_resume(tiny_rnn_path, tmp_path):
    import shlex
    import signal

    from agents.rl_tuner import checkpoint as ckpt
    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    run = tmp_path / "a run"
    trainer = Trainer(tiny_agent_config(tiny_rnn_path), run, log=lambda message: None)
    stopped = trainer._stop(signal.SIGTERM)
    assert stopped.signum == signal.SIGTERM
    assert str(stopped) == (
        "stopped by SIGTERM at step 0 of 384; checkpoint saved; resume with: melody-rl train "
        f"--resume --out {shlex.quote(str(run))}"
    )
    assert ckpt.find_checkpoint(run).name == "step_000000000"
    saved = (ckpt.find_checkpoint(run) / ckpt.WEIGHTS).stat().st_mtime_ns
    trainer._stop(signal.SIGINT)  # already saved at this step: not written again
    assert (ckpt.find_checkpoint(run) / ckpt.WEIGHTS).stat().st_mtime_ns == saved


def test_compose_is_seeded_by_round_and_returns_exactly_count(tiny_rnn_path):
    from agents.rl_tuner.agent import RLTunerAgent
    from agents.rl_tuner.rollout import compose, make_vector_env
    from melody_env.models.note_rnn import NoteRNN
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(tiny_rnn_path)
    rnn = NoteRNN.load(tiny_rnn_path)
    agent, envs = RLTunerAgent(config, rnn), make_vector_env(config, 4, rnn)
    five = compose(agent, envs, 5, seed=3)  # one round of 4 and one more
    assert len(five) == 5 and five.actions.shape == (5, 8)
    # The defaults: the evaluation stream, sampled at temperature 1.
    same = compose(agent, envs, 5, seed=3, purpose="eval", greedy=False, temperature=1.0)
    assert np.array_equal(same.actions, five.actions)
    assert np.array_equal(compose(agent, envs, 4, seed=3).actions, five.actions[:4])
    assert not np.array_equal(compose(agent, envs, 5, seed=4).actions, five.actions)
    greedy = compose(agent, envs, 5, seed=3, greedy=True)
    assert not np.array_equal(greedy.actions, five.actions)
    assert np.array_equal(compose(agent, envs, 5, seed=3, greedy=True).actions, greedy.actions)
    cold = compose(agent, envs, 5, seed=3, temperature=0.01)
    assert not np.array_equal(cold.actions, five.actions)


def test_an_episode_start_resets_the_state_of_action_log_probs(tiny_rnn_path):
    import gymnasium as gym

    from agents.rl_tuner.agent import RLTunerAgent
    from melody_env.models.note_rnn import NoteRNN
    from tests.conftest import tiny_agent_config

    agent = RLTunerAgent(tiny_agent_config(tiny_rnn_path), NoteRNN.load(tiny_rnn_path))
    envs = gym.make_vec(
        "melody_env/MelodyComposition-v0",
        num_envs=3,
        reward_rnn=tiny_rnn_path,
        composition_length=8,
    )
    obs, _ = envs.reset(seed=0)
    _, state = agent.predict(obs, None, np.ones(3, bool))
    fresh = agent.action_log_probs(obs)
    assert not np.allclose(agent.action_log_probs(obs, state, np.zeros(3, bool)), fresh)
    np.testing.assert_array_equal(agent.action_log_probs(obs, state, np.ones(3, bool)), fresh)


def test_finish_writes_the_final_scalars_samples_and_summary(tiny_rnn_path, tmp_path):
    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(
        tiny_rnn_path, summary_compositions=8, eval_num_envs=8, num_samples=2
    )
    trainer = Trainer(config, tmp_path / "run", log=lambda message: None, tensorboard_log=None)
    trainer.writer.close()
    trainer.writer = recorder = ScalarRecorder()
    recorder.close = lambda: None
    summary = trainer.finish(12.5)
    assert summary["total_seconds"] == 12.5 and summary["global_step"] == 0
    assert recorder.scalars == [
        (f"final/{name}", value, 0)
        for name, value in summary["sampled"].items()
        if np.isfinite(value)
    ]
    samples = sorted(path.name for path in (tmp_path / "run" / "samples").iterdir())
    assert samples == ["sample_000.mid", "sample_001.mid"]
    markdown = (tmp_path / "run" / "summary.md").read_text()
    assert markdown.startswith("# RL Tuner run\n") and "`q`, preset `fast`, seed 0: " in markdown


def test_train_reports_its_own_duration(tiny_rnn_path, tmp_path):
    import time

    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(tiny_rnn_path, total_steps=64)
    trainer = Trainer(config, tmp_path / "run", log=lambda message: None, tensorboard_log=None)
    started = time.perf_counter()
    summary = trainer.train()
    assert 0 < summary["total_seconds"] <= time.perf_counter() - started


def test_run_header_by_hand():
    from agents.rl_tuner.summary import run_header

    summary = {
        "config": {"algo": "psi", "seed": 3},
        "global_step": 12345,
        "gradient_steps": 67,
        "train_seconds": 41.6,
        "total_seconds": 50.2,
    }
    expected = (
        "`psi`, preset `default`, seed 3: 12,345 training transitions, 67 gradient steps, 42 s "
        "of training (50 s with evaluation). *sampled*: each token drawn from the softmax of the "
        "policy's logits (the paper's protocol); *greedy*: their argmax."
    )
    assert run_header(summary) == expected
    summary["config"]["preset"] = "paper"
    assert run_header(summary) == expected.replace("`default`", "`paper`")


def test_a_missing_note_rnn_says_how_to_get_one(monkeypatch):
    from agents.rl_tuner.trainer import load_note_rnn
    from melody_env.models.note_rnn import NoteRNN

    def missing(path=None):
        raise FileNotFoundError(f"no Note RNN at {path}")

    monkeypatch.setattr(NoteRNN, "load", staticmethod(missing))
    hint = " (train it with `melody-rl pretrain --ship`, or pass --reward-rnn)"
    with pytest.raises(FileNotFoundError) as shipped:
        load_note_rnn(None)
    assert str(shipped.value) == f"no Note RNN at None{hint}"
    with pytest.raises(FileNotFoundError) as given:
        load_note_rnn("mine.safetensors")
    assert str(given.value) == "no Note RNN at mine.safetensors"


def test_discarding_a_checkpoint_clears_a_stale_trash_of_the_same_name(tmp_path):
    import os

    from agents.rl_tuner.checkpoint import discard

    folder = tmp_path / "step_000000128"
    folder.mkdir()
    (folder / "weights.safetensors").write_bytes(b"w")
    stale = tmp_path / f".step_000000128.del{os.getpid()}"
    stale.mkdir()
    (stale / "left.over").write_bytes(b"x")
    discard(folder)
    assert list(tmp_path.iterdir()) == []


class RecordingCallback:
    def __init__(self):
        self.calls = []

    def on_training_start(self, locals_, globals_):
        self.calls.append(("start", type(locals_), type(globals_)))

    def on_rollout_start(self):
        self.calls.append("rollout start")

    def on_step(self):
        return True

    def on_rollout_end(self):
        self.calls.append("rollout end")

    def on_training_end(self):
        self.calls.append("end")


def test_learn_evaluates_on_schedule_and_logs_every_round(tiny_rnn_path, capsys):
    import time

    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    # 64 transitions per round (8 compositions of 8 steps), 4 rounds, an evaluation every 128.
    config = tiny_agent_config(
        tiny_rnn_path, total_steps=256, eval_every=128, eval_compositions=8, eval_num_envs=8
    )
    messages = []
    trainer = Trainer(config, None, log=messages.append, tensorboard_log=None)
    trainer.writer = recorder = ScalarRecorder()
    callback = RecordingCallback()
    started = time.perf_counter()
    trainer.learn(callback, progress_bar=False)
    assert [m.split(":")[0] for m in messages] == ["eval @ 0", "eval @ 128"]
    assert trainer.progress.rounds == 4
    assert 0 < trainer.progress.train_seconds <= time.perf_counter() - started
    returns = [
        (step, value) for tag, value, step in recorder.scalars if tag == "charts/episodic_return"
    ]
    assert [step for step, _ in returns] == [64, 128, 192, 256]
    assert callback.calls == [("start", dict, dict)] + ["rollout start", "rollout end"] * 4 + [
        "end"
    ]
    assert capsys.readouterr().err == ""


def test_learn_shows_a_progress_bar_when_asked_whatever_the_config(tiny_rnn_path, capsys):
    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(tiny_rnn_path, total_steps=64, progress_bar=False)
    trainer = Trainer(config, None, log=lambda message: None, tensorboard_log=None)
    trainer.learn()
    assert capsys.readouterr().err == ""  # the config's choice
    trainer = Trainer(config, None, log=lambda message: None, tensorboard_log=None)
    trainer.learn(progress_bar=True)
    err = capsys.readouterr().err
    assert "64/64" in err and "SPS=" in err and "eps=" in err and "ret=" in err


def test_sigterm_during_learn_saves_and_raises_stopped(tiny_rnn_path, tmp_path):
    import os
    import signal

    from agents.rl_tuner import checkpoint as ckpt
    from agents.rl_tuner.trainer import Trainer
    from agents.run_control import Stopped
    from tests.conftest import tiny_agent_config

    class SignalOnce(RecordingCallback):
        def on_step(self):
            if not self.calls.count("sent"):
                self.calls.append("sent")
                os.kill(os.getpid(), signal.SIGTERM)
            return True

    trainer = Trainer(tiny_agent_config(tiny_rnn_path), tmp_path / "run", log=lambda m: None)
    with pytest.raises(Stopped, match="stopped by SIGTERM at step 64 of 384"):
        trainer.learn(SignalOnce())
    assert ckpt.find_checkpoint(tmp_path / "run").name == "step_000000064"


def test_a_run_without_a_folder_cannot_save_without_a_path(tiny_rnn_path):
    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    trainer = Trainer(tiny_agent_config(tiny_rnn_path), None, log=lambda m: None)
    with pytest.raises(ValueError, match=r"^this run has no folder: pass one to save\(path\)$"):
        trainer.save()


def test_checkpoint_files_are_tagged_readable_and_replaced_in_place(tiny_rnn_path, tmp_path):
    import json

    from safetensors import safe_open

    from agents.rl_tuner import checkpoint as ckpt
    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    trainer = Trainer(tiny_agent_config(tiny_rnn_path), tmp_path / "run", log=lambda m: None)
    trainer.save()
    trainer.save()  # the same step again: the folder is replaced
    root = tmp_path / "run" / ckpt.CHECKPOINTS
    assert sorted(p.name for p in root.iterdir()) == [ckpt.LATEST, "step_000000000"]
    assert json.loads((root / ckpt.LATEST).read_text()) == {
        "checkpoint": "step_000000000",
        "step": 0,
    }
    folder = root / "step_000000000"
    with safe_open(str(folder / ckpt.WEIGHTS), "pt") as weights:
        assert weights.metadata() == {"format": ckpt.FORMAT}
    assert (folder / ckpt.STATE).read_text().startswith('{\n "format": ')  # indented


def test_remove_leftovers_removes_killed_saves_only(tmp_path):
    from agents.rl_tuner import checkpoint as ckpt

    (tmp_path / ".step_000000064").mkdir()
    (tmp_path / ".step_000000064" / "weights.safetensors").write_bytes(b"half")
    (tmp_path / f".{ckpt.LATEST}.123.tmp").write_text("{")
    (tmp_path / "step_000000000").mkdir()
    (tmp_path / ckpt.LATEST).write_text("{}")
    ckpt.remove_leftovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt.LATEST, "step_000000000"]


def test_paper_config_defaults_to_q():
    assert paper_config() == paper_config("q")


def test_compose_seeds_every_round_apart(tiny_rnn_path):
    from agents.rl_tuner.agent import RLTunerAgent
    from agents.rl_tuner.rollout import compose, make_vector_env
    from melody_env.models.note_rnn import NoteRNN
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(tiny_rnn_path)
    rnn = NoteRNN.load(tiny_rnn_path)
    agent, envs = RLTunerAgent(config, rnn), make_vector_env(config, 4, rnn)
    rounds = compose(agent, envs, 12, seed=0).primers.reshape(3, 4, -1)
    assert not np.array_equal(rounds[1], rounds[2]) and not np.array_equal(rounds[0], rounds[1])


def test_take_without_keys():
    compositions = dataclasses.replace(hand_compositions(), keys=None)
    assert compositions.take(1).keys is None


def test_the_evaluation_line_shows_percentages(tiny_rnn_path, monkeypatch):
    from agents.rl_tuner import trainer as trainer_module
    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    stats = {
        "music_theory": 1.234,
        "log_prob": -2.5,
        "not_in_key": 0.0123,
        "excessively_repeated": 0.00456,
        "starts_with_tonic": 0.789,
    }
    monkeypatch.setattr(trainer_module, "composition_stats", lambda compositions: stats)
    messages = []
    config = tiny_agent_config(tiny_rnn_path, eval_compositions=8, eval_num_envs=8)
    Trainer(config, None, log=messages.append, tensorboard_log=None)._evaluate(ScalarRecorder())
    assert messages == [
        "eval @ 0: r_MT/step 1.23, log p -2.50, not in key 1.2%, repeated 0.46%, tonic 79%"
    ]


def test_learn_logs_the_losses_of_every_50th_gradient_step(tiny_rnn_path):
    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(tiny_rnn_path, total_steps=1024, train_frequency=8)
    trainer = Trainer(config, None, log=lambda message: None, tensorboard_log=None)
    trainer.writer = recorder = ScalarRecorder()
    trainer.learn()
    assert trainer.progress.gradient_steps > 51
    losses = [(tag, step) for tag, _, step in recorder.scalars if tag.startswith("losses/")]
    assert "losses/td_loss" in {tag for tag, _ in losses}
    steps = sorted({step for _, step in losses})
    # Gradient steps 1, 51, 101, ...: one every 8 transitions after the first 64.
    assert steps == list(range(64 + 8, 1024 + 1, 50 * 8))


def test_a_stop_asked_by_a_callback_ends_learn_which_continues_on_the_next_call(tiny_rnn_path):
    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    class StopAtOnce(RecordingCallback):
        def on_step(self):
            return False

    config = tiny_agent_config(tiny_rnn_path, total_steps=192, progress_bar=True)
    trainer = Trainer(config, None, log=lambda message: None, tensorboard_log=None)
    callback = StopAtOnce()
    trainer.learn(callback, progress_bar=False)
    assert trainer.progress.global_step == 64 and callback.calls[-1] == "end"
    trainer.learn(RecordingCallback(), progress_bar=False)
    assert trainer.progress.global_step == 192


def test_the_progress_bar_follows_the_config_and_shows_speed_epsilon_and_return(
    tiny_rnn_path, capsys
):
    import re

    from agents.rl_tuner.trainer import Trainer
    from tests.conftest import tiny_agent_config

    config = tiny_agent_config(tiny_rnn_path, total_steps=128, progress_bar=True)
    Trainer(config, None, log=lambda message: None, tensorboard_log=None).learn()
    err = capsys.readouterr().err
    assert "128/128" in err and "192/128" not in err
    assert re.search(r"SPS=\d+, eps=0\.000, ret=-?\d+\.\d", err)
