"""Train one Stable-Baselines3 algorithm on the melody env, save it, and summarise it.

The run folder gets:

- ``model.zip``: the SB3 model (``Algo.load(...)``, or ``melody-rl evaluate --checkpoint
  sb3-ppo:RUN/model.zip``);
- ``tensorboard/``: SB3's own scalars (``rollout/``, ``train/``) and, under ``melody/``, the
  learning curves of :mod:`agents.baselines.callbacks` (also in ``curve.csv``);
- ``summary.json``, ``summary.md`` and ``report.json`` (:mod:`agents.baselines.summary`);
- ``samples/sample_*.mid``: compositions sampled from the trained policy.

The env is ``melody_env/MelodyComposition-v0`` composed ``num_envs`` at a time by the batched
:class:`~agents.sb3_vec_env.MelodySB3VecEnv` (in a ``VecMonitor``, so SB3 logs episode returns;
MaskablePPO gets :class:`~agents.baselines.masking.VecInKeyActionMask` too).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from agents.baselines.algorithms import get_algorithm
from agents.baselines.callbacks import MelodyMetricsCallback, ProgressBarCallback
from agents.baselines.config import BaselineConfig
from agents.baselines.masking import MaskedPolicy, VecInKeyActionMask
from agents.baselines.summary import evaluation_env_kwargs, summarize_policy, write_summary
from agents.run_control import GracefulStop, RunLock, Stopped, check_output_folder
from agents.sb3_vec_env import MelodySB3VecEnv
from melody_env.atomic import atomic_path
from melody_env.envs.melody_composition import load_reward_rnn
from melody_env.io.midi_writer import write_midi
from melody_env.models.note_rnn import NoteRNN

MODEL_FILE = "model.zip"


def load_reward_model(path: str | None) -> NoteRNN:
    """The env's Note RNN, with a hint when the shipped checkpoint is missing."""
    try:
        return load_reward_rnn(path)
    except FileNotFoundError as error:
        hint = "" if path else " (train it with `melody-rl pretrain --ship`, or pass --reward-rnn)"
        raise FileNotFoundError(f"{error}{hint}") from error


def make_training_env(config: BaselineConfig, reward_rnn: NoteRNN) -> VecEnv:
    """The batched env of a run, wrapped for the algorithm."""
    env_kwargs = config.env.replace(reward_rnn=reward_rnn).env_kwargs()
    envs: VecEnv = MelodySB3VecEnv(num_envs=config.num_envs, **env_kwargs)
    if get_algorithm(config.algo).masked:
        envs = VecInKeyActionMask(envs)
    return VecMonitor(envs)


def build_model(config: BaselineConfig, envs: VecEnv, tensorboard_log: str | None) -> Any:
    """The SB3 model of ``config`` on ``envs`` (CPU)."""
    spec = get_algorithm(config.algo)
    return spec.load_class()(
        spec.policy,
        envs,
        seed=config.seed,
        device="cpu",
        tensorboard_log=tensorboard_log,
        verbose=0,
        **config.algorithm_kwargs(),
    )


def as_policy(model: Any, algo: str) -> Any:
    """What the evaluation suite calls ``predict`` on: the model, masked for MaskablePPO."""
    return MaskedPolicy(model) if get_algorithm(algo).masked else model


class StopOnSignal(BaseCallback):
    """Ends ``learn`` at the next env step once a :class:`GracefulStop` caught a signal."""

    def __init__(self, stop: GracefulStop) -> None:
        super().__init__()
        self.stop = stop

    def _on_step(self) -> bool:
        return not self.stop.requested


def train_baseline(config: BaselineConfig, run_dir: str | os.PathLike, log=print) -> dict[str, Any]:
    """Train, save, evaluate and summarise one run; return the summary.

    The run folder is locked for the run (:class:`~agents.run_control.RunLock`). SIGINT or
    SIGTERM ends training at the next env step, saves ``model.zip`` (atomically) and raises
    :class:`~agents.run_control.Stopped` (SB3 runs are not resumable: the model is kept).

    Raises:
        FileExistsError: ``run_dir`` already holds a model.
        FileNotFoundError: the Note RNN checkpoint is missing.
        agents.run_control.RunLocked: another live run holds ``run_dir``.
        agents.run_control.Stopped: stopped by a signal.
    """
    run_dir = check_output_folder(run_dir)
    with RunLock(run_dir, "baseline"), GracefulStop() as stop:
        return _train_baseline(config, run_dir, stop, log)


def _train_baseline(config: BaselineConfig, run_dir: Path, stop: GracefulStop, log) -> dict:
    if (run_dir / MODEL_FILE).exists():
        raise FileExistsError(f"{run_dir} already holds a model; choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.torch_threads)
    started = time.perf_counter()
    reward_rnn = load_reward_model(config.env.reward_rnn)
    envs = make_training_env(config, reward_rnn)
    model = build_model(config, envs, str(run_dir / "tensorboard"))
    train_start = time.perf_counter()
    callbacks = [MelodyMetricsCallback(run_dir), StopOnSignal(stop)]
    if config.progress_bar:
        callbacks.append(ProgressBarCallback(f"{config.algo} seed {config.seed}"))
    model.learn(total_timesteps=config.total_steps, callback=callbacks, tb_log_name=config.algo)
    train_seconds = time.perf_counter() - train_start
    with atomic_path(run_dir / MODEL_FILE) as tmp, open(tmp, "wb") as handle:
        model.save(handle)  # SB3 writes a zip into the file object; the rename makes it whole
    envs.close()
    if stop.requested:
        name = signal.Signals(stop.signal).name
        raise Stopped(
            stop.signal,
            f"stopped by {name} at step {model.num_timesteps:,} of {config.total_steps:,}; the "
            f"model so far is in {run_dir / MODEL_FILE} (not evaluated; SB3 runs cannot be "
            "resumed: train again into a new --out)",
        )
    summary: dict[str, Any] = {
        "config": config.to_dict(),
        "algo": config.algo,
        "hyperparams": {k: repr(v) for k, v in config.algorithm_kwargs().items()},
        "global_step": int(model.num_timesteps),
        "gradient_steps": int(getattr(model, "_n_updates", 0)),
        "train_seconds": train_seconds,
        "steps_per_second": model.num_timesteps / max(train_seconds, 1e-9),
    }
    results = []
    if config.eval_compositions:
        policy = as_policy(model, config.algo)
        stats, results = summarize_policy(
            policy,
            config.algo,
            config.eval_compositions,
            config.seed,
            config.env.key,
            reward_rnn,
            evaluation_env_kwargs(config.env),
            config.note_rnn_column,
            progress=config.progress_bar,
        )
        summary.update(stats)
        sampled = next(r for r in results if r.name.endswith("sampled"))
        write_samples(run_dir / "samples", sampled.tokens[: config.num_samples])
    summary["total_seconds"] = time.perf_counter() - started
    header = (
        f"`{config.algo}`, seed {config.seed}: {summary['global_step']:,} env steps in "
        f"{train_seconds:.0f} s ({summary['steps_per_second']:.0f} steps/s), "
        f"{summary['total_seconds']:.0f} s with evaluation."
    )
    write_summary(run_dir, summary, results, f"Baseline run: {config.algo}", header)
    if "sampled" in summary:
        stats = summary["sampled"]
        log(
            f"{run_dir}: r_MT/step {stats['music_theory']:.2f}, log p {stats['log_prob']:.2f}, "
            f"not in key {100 * stats['not_in_key']:.2f}%, excessively repeated "
            f"{100 * stats['excessively_repeated']:.2f}% (see {run_dir}/summary.md)"
        )
    return summary


def write_samples(folder: Path, tokens: np.ndarray) -> None:
    """One MIDI file per composition."""
    width = max(3, len(str(len(tokens) - 1)))
    for index, row in enumerate(tokens):
        write_midi(folder / f"sample_{index:0{width}d}.mid", row)
