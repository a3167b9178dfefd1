"""Training runs: learnability, exact resume after a kill, the autoreset path, clear errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.rl_tuner import checkpoint as ckpt
from agents.rl_tuner.agent import RLTunerAgent
from agents.rl_tuner.config import make_config
from agents.rl_tuner.rollout import VectorComposer
from agents.rl_tuner.trainer import Trainer, train
from melody_env import ENV_ID
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig
from tests.conftest import tiny_agent_config


@pytest.fixture(scope="module")
def note_rnn_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("note_rnn") / "note_rnn.safetensors"
    NoteRNN(NoteRNNConfig(hidden_size=32), seed=0).save(path)
    return str(path)


def test_a_short_run_raises_music_theory_above_the_untuned_model(tmp_path):
    """About 15 s: the shipped Note RNN, 16-step compositions, 8,192 steps of the default."""
    config = make_config(
        "fast",
        "q",
        num_envs=32,
        env={"composition_length": 16},
        total_steps=8192,
        learning_starts=512,
        train_frequency=16,
        batch_size=16,
        eval_every=0,
        eval_compositions=128,
        eval_num_envs=64,
        checkpoint_every=0,
        summary_compositions=128,
        num_samples=0,
        progress_bar=False,
    )
    trainer = Trainer(config, tmp_path / "run", log=lambda *_: None)
    untuned = trainer._evaluate(_NullWriter())
    tuned = trainer.train()["sampled"]
    assert tuned["music_theory"] > untuned["music_theory"] + 3.0  # about -4.5 -> +0.6
    assert tuned["excessively_repeated"] < untuned["excessively_repeated"] / 3


class _NullWriter:
    def add_scalar(self, *args, **kwargs):
        pass

    def flush(self):
        pass


def final_state(run_dir):
    loaded = ckpt.load_checkpoint(run_dir)
    return loaded.tensors, loaded.state


@pytest.mark.parametrize("algo", ["q", "g"])
def test_a_killed_run_resumes_exactly(note_rnn_path, tmp_path, monkeypatch, algo):
    config = tiny_agent_config(note_rnn_path, algo=algo)
    train(config, tmp_path / "straight", log=lambda *_: None)

    real_save = ckpt.save_checkpoint
    saves = []

    def save_then_die(*args, **kwargs):
        path = real_save(*args, **kwargs)
        saves.append(path)
        if len(saves) == 2:
            raise KeyboardInterrupt("killed")
        return path

    monkeypatch.setattr(ckpt, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "killed", log=lambda *_: None)
    monkeypatch.setattr(ckpt, "save_checkpoint", real_save)
    assert ckpt.load_checkpoint(tmp_path / "killed").state["progress"]["global_step"] == 256
    train(config, tmp_path / "killed", resume=True, log=lambda *_: None)

    tensors_a, state_a = final_state(tmp_path / "straight")
    tensors_b, state_b = final_state(tmp_path / "killed")
    assert state_a["progress"]["global_step"] == 384
    assert tensors_a.keys() == tensors_b.keys()
    for name in tensors_a:
        assert torch.equal(tensors_a[name], tensors_b[name]), name
    progress_a = dict(state_a["progress"], train_seconds=0)
    progress_b = dict(state_b["progress"], train_seconds=0)
    assert progress_a == progress_b
    for key in ("exploration_rng", "predict_rng", "replay", "optimizer"):
        assert state_a[key] == state_b[key], key
    replay_a = np.load(tmp_path / "straight" / "checkpoints" / "step_000000384" / "replay.npz")
    replay_b = np.load(tmp_path / "killed" / "checkpoints" / "step_000000384" / "replay.npz")
    for name in replay_a.files:
        assert np.array_equal(replay_a[name], replay_b[name]), name


def test_checkpoints_hold_no_pickle_and_keep_the_prior_frozen(note_rnn_path, tmp_path):
    config = tiny_agent_config(note_rnn_path, algo="g")
    train(config, tmp_path / "run", log=lambda *_: None)
    loaded = ckpt.load_checkpoint(tmp_path / "run")
    with np.load(loaded.replay_path, allow_pickle=False) as replay:
        assert replay["actions"].shape == (48, 8)
    original = NoteRNN.load(note_rnn_path).state_dict()
    for name, tensor in original.items():
        assert torch.equal(loaded.tensors[f"reward_rnn.{name}"], tensor)
    assert not torch.equal(loaded.tensors["q_network.head.bias"], original["head.bias"])
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "latest.json",
        "step_000000256",
        "step_000000384",
    ]


def test_resume_errors_name_the_problem(note_rnn_path, tmp_path):
    config = tiny_agent_config(note_rnn_path)
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        Trainer(config, tmp_path / "nothing_here", resume=True)
    train(config, tmp_path / "run", log=lambda *_: None)
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(config, tmp_path / "run")
    latest = ckpt.find_checkpoint(tmp_path / "run")
    (latest / "weights.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="corrupt checkpoint weights"):
        Trainer(config, tmp_path / "run", resume=True)
    (latest / "state.json").write_text("{")
    with pytest.raises(ValueError, match="corrupt checkpoint state"):
        ckpt.load_checkpoint(tmp_path / "run")


def test_the_step_after_a_termination_is_a_reset_step_and_is_not_recorded(note_rnn_path):
    config = tiny_agent_config(note_rnn_path, num_envs=3, env={"composition_length": 4})
    agent = RLTunerAgent(config, NoteRNN.load(note_rnn_path))
    envs = gym.make_vec(
        ENV_ID, 3, vectorization_mode="sync", config=config.env, reward_rnn=agent.reward_rnn
    )
    composer = VectorComposer(envs, agent, 4)
    composer.reset([0, 1, 2])

    def choose(logits):
        return logits.argmax(axis=1)

    results = [composer.step(choose) for _ in range(4)]
    assert [recorded for recorded, _ in results] == [3, 3, 3, 3]
    assert composer.round_done and len(results[-1][1]) == 3
    composer.round_done = False  # carry on through Gymnasium's autoreset instead of reset()
    recorded, finished = composer.step(choose)
    assert recorded == 0 and finished is None and composer.episode_start.all()
    assert np.array_equal(composer.primers[:, -1], composer.obs[:, :38].argmax(axis=1))
    results = [composer.step(choose) for _ in range(4)]
    assert [recorded for recorded, _ in results] == [3, 3, 3, 3]
    assert not composer.episode_start.any()
    assert len(results[-1][1]) == 3


def test_a_non_finite_target_stops_the_run_without_a_poisoned_checkpoint(
    note_rnn_path, tmp_path, monkeypatch
):
    from agents.rl_tuner.replay import CompositionReplay

    real_sample = CompositionReplay.sample
    calls = []

    def poisoned_sample(self, batch_size):
        batch = real_sample(self, batch_size)
        calls.append(1)
        if len(calls) > 4:  # in the round after the first checkpoint (step 128)
            batch.rewards[0, 0] = np.inf
        return batch

    monkeypatch.setattr(CompositionReplay, "sample", poisoned_sample)
    with pytest.raises(FloatingPointError, match=r"non-finite TD target at training step \d+"):
        train(tiny_agent_config(note_rnn_path), tmp_path / "run", log=lambda *_: None)
    loaded = ckpt.load_checkpoint(tmp_path / "run")
    assert loaded.state["progress"]["global_step"] == 128
    assert all(torch.isfinite(t).all() for t in loaded.tensors.values() if t.is_floating_point())


def test_on_trained_runs_after_the_final_checkpoint_and_before_the_summary(note_rnn_path, tmp_path):
    config = tiny_agent_config(note_rnn_path)
    trainer = Trainer(config, tmp_path / "run", log=lambda *_: None)
    seen = []

    def on_trained():
        latest = ckpt.load_checkpoint(tmp_path / "run").state["progress"]["global_step"]
        seen.append(
            (trainer.progress.global_step, latest, (tmp_path / "run/summary.json").exists())
        )

    trainer.train(on_trained=on_trained)
    assert seen == [(config.total_steps, config.total_steps, False)]
    assert (tmp_path / "run" / "summary.json").exists()
