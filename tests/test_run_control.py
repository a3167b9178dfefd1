"""Graceful stops, the run-folder lock, output-folder checks and the CLI's one-line errors."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from agents import run_control
from agents.cli import main
from agents.rl_tuner import checkpoint as ckpt
from agents.rl_tuner.trainer import Trainer, train
from agents.run_control import GracefulStop, RunLock, RunLocked, Stopped, check_output_folder
from tests.conftest import tiny_agent_config

QUIET = {"log": lambda *_: None}


def signal_at_round(monkeypatch, signum: int, round_index: int) -> None:
    """Deliver ``signum`` to this process in the middle of round ``round_index`` (a real signal,
    through the real handler)."""
    real = Trainer._play_round

    def play_round(self, writer):
        if self.progress.rounds == round_index:
            os.kill(os.getpid(), signum)
        return real(self, writer)

    monkeypatch.setattr(Trainer, "_play_round", play_round)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_finishes_the_round_saves_and_resume_is_bit_exact(
    tiny_rnn_path, tmp_path, monkeypatch, signum, status
):
    config = tiny_agent_config(tiny_rnn_path)  # 384 steps, rounds of 64
    train(config, tmp_path / "straight", **QUIET)
    with monkeypatch.context() as patch:
        signal_at_round(patch, signum, 2)
        with pytest.raises(Stopped) as stopped:
            train(config, tmp_path / "run", **QUIET)
    assert stopped.value.exit_status == status
    assert "at step 192 of 384" in stopped.value.message  # round 2 (steps 128-192) finished
    assert f"melody-rl train --resume --out {tmp_path / 'run'}" in stopped.value.message
    assert ckpt.load_checkpoint(tmp_path / "run").state["progress"]["global_step"] == 192
    assert signal.getsignal(signum) is not None  # handlers restored
    train(config, tmp_path / "run", resume=True, **QUIET)
    straight = ckpt.load_checkpoint(tmp_path / "straight").tensors
    resumed = ckpt.load_checkpoint(tmp_path / "run").tensors
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)


def test_the_cli_prints_how_to_resume_and_exits_130(tiny_rnn_path, tmp_path, monkeypatch, capsys):
    signal_at_round(monkeypatch, signal.SIGINT, 1)
    out = tmp_path / "run"
    argv = ["train", "--algo", "q", "--out", str(out), "--reward-rnn", tiny_rnn_path]
    argv += ["--steps", "384"]
    argv += ["--num-envs", "8", "--no-progress", "--eval-every", "0"]
    argv += ["--set", "env.composition_length=8", "--set", "summary_compositions=0"]
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("melody-rl train: stopped by SIGINT at step ")
    assert err[-1].endswith(f"resume with: melody-rl train --resume --out {out}")


def test_a_second_signal_stops_at_once():
    with GracefulStop() as stop, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signal == signal.SIGINT
        os.kill(os.getpid(), signal.SIGINT)


def test_a_second_run_into_a_locked_folder_is_refused_naming_the_pid(
    tiny_rnn_path, tmp_path, capsys
):
    config = tiny_agent_config(tiny_rnn_path)
    with RunLock(tmp_path / "run", "train"):
        with pytest.raises(
            RunLocked, match=rf"in use by another melody-rl train \(pid {os.getpid()}"
        ):
            train(config, tmp_path / "run", **QUIET)
        argv = ["train", "--algo", "q", "--out", str(tmp_path / "run")]
        code = main([*argv, "--reward-rnn", tiny_rnn_path])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"(pid {os.getpid()}" in err
    assert not (tmp_path / "run" / ckpt.CHECKPOINTS).exists()  # nothing touched


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    (tmp_path / run_control.LOCK_NAME).write_text(json.dumps({"pid": 999999999}))
    with RunLock(tmp_path, "train") as lock:
        holder = json.loads(lock.path.read_text())
        assert holder["pid"] == os.getpid() and holder["command"] == "train"
    with RunLock(tmp_path, "train"):  # released
        pass


@pytest.mark.parametrize(
    "out, message",
    [
        ("", "empty path"),
        ("   ", "empty path"),
        ("FILE", "exists and is not a folder"),
        ("FILE/sub", "is not a folder"),
        ("x" * 300, "longer than 255 bytes"),
    ],
)
def test_output_folder_checks(tmp_path, out, message):
    (tmp_path / "FILE").write_text("")
    path = out if not out.strip() else str(tmp_path / out)
    with pytest.raises(ValueError, match=message):
        check_output_folder(path)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "--algo", "q", "--set", "gamma=abc"],
            "--set 'gamma=abc': expected float, got 'abc'",
        ),
        (["train", "--algo", "q", "--set", "seed=1.5"], "--set 'seed=1.5': expected int"),
        (
            ["train", "--algo", "q", "--set", "env.composition_length=0"],
            "composition_length must be an integer",
        ),
        (
            ["train", "--algo", "q", "--set", "env.primer_context=1000000"],
            "primer_context must be at most 1,024",
        ),
        (
            ["train", "--algo", "q", "--set", "num_envs=3000000"],
            "num_envs must be an integer in [1, 65,536]",
        ),
        (["train", "--algo", "q", "--set", "nope=1"], "unknown config field 'nope'"),
        (["sample", "--n", "0"], "n must be an integer in [1, 65,536], got 0"),
        (["sample", "--temperature", "0"], "temperature must be in [0.01, 100.0], got 0.0"),
        (["sample", "--seed", "-1"], "seed must be a non-negative integer, got -1"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"melody-rl {argv[0]}: error: ")
    assert message in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="temperature must be in"):
        main(["--debug", "sample", "--temperature", "0", "--out", str(tmp_path)])


def test_a_missing_extra_is_named_before_any_work(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name)
    )
    assert main(["train", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert (
        "needs tensorboard, not installed" in err and "pip install 'melody-rl[tensorboard]'" in err
    )
    assert not (tmp_path / "run").exists()


def test_a_baseline_stops_on_a_signal_and_keeps_its_model(tiny_rnn_path, tmp_path, monkeypatch):
    pytest.importorskip("stable_baselines3")
    from agents.baselines import train as baseline_train
    from agents.baselines.config import BaselineConfig
    from melody_env import EnvConfig
    from melody_env.io.sb3_zip import load_sb3_model

    real = baseline_train.StopOnSignal._on_step

    def on_step(self):
        if self.num_timesteps == 64:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self)

    monkeypatch.setattr(baseline_train.StopOnSignal, "_on_step", on_step)
    config = BaselineConfig(
        algo="sb3-a2c",
        total_steps=100_000,
        num_envs=4,
        env=EnvConfig(reward_rnn=tiny_rnn_path),
        hyperparams={"policy_kwargs": {"net_arch": [8]}, "n_steps": 4},
        eval_compositions=0,
        num_samples=0,
    )
    with pytest.raises(Stopped, match="stopped by SIGTERM at step 64 of 100,000") as stopped:
        baseline_train.train_baseline(config, tmp_path / "run", log=lambda *_: None)
    assert stopped.value.exit_status == 143
    from stable_baselines3 import A2C

    assert load_sb3_model(tmp_path / "run" / "model.zip", A2C).num_timesteps == 64
    with RunLock(tmp_path / "run"), pytest.raises(RunLocked):
        baseline_train.train_baseline(config, tmp_path / "run", log=lambda *_: None)


def test_a_benchmark_stops_on_a_signal_and_the_same_command_continues(
    tiny_rnn_path, tmp_path, monkeypatch, capsys
):
    """A signal during a benchmark (one job: the runs train in this process) stops the run at
    hand with its checkpoint, starts no other run, and exits 130 in one line; the same command
    then resumes the stopped run and trains the rest."""
    signal_at_round(monkeypatch, signal.SIGINT, 1)
    out = tmp_path / "bench"
    argv = ["benchmark", "--algos", "q", "--seeds", "0,1", "--steps", "1024", "--jobs", "1"]
    argv += ["--eval-n", "8", "--num-envs", "8", "--reward-rnn", tiny_rnn_path, "--out", str(out)]
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("melody-rl benchmark: stopped by SIGINT: 0 of 2 runs finished")
    assert (out / "q_seed0" / ckpt.CHECKPOINTS / ckpt.LATEST).is_file()
    assert not (out / "q_seed1").exists() and not (out / "results.json").exists()
    monkeypatch.undo()
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert [run["spec"]["seed"] for run in results["runs"]["q"]] == [0, 1]
    assert all("statistics" in run for run in results["runs"]["q"])


def test_version(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"melody-rl {metadata.version('melody-rl')}"
