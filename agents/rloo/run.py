"""A ``melody-rl train --algo rloo`` run in a folder, over :class:`~agents.rloo.model.RLOO`.

The class trains; this module adds what a run folder needs around it: the run lock, graceful
stop on SIGINT/SIGTERM (:mod:`agents.run_control`), periodic and final checkpoints, exact
resume, TensorBoard in ``RUN/tensorboard`` and the summary through the evaluation suite.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.rl_tuner.summary import write_summary
from agents.rloo import checkpoint as ckpt
from agents.rloo.config import RLOOConfig
from agents.rloo.model import RLOO
from agents.rloo.policy import RLOOPolicy
from agents.run_control import GracefulStop, RunLock, Stopped, check_output_folder
from melody_env import ENV_ID
from melody_env.atomic import atomic_write_text, remove_temporaries
from melody_env.io.midi_writer import write_midi


def train(
    config: RLOOConfig,
    run_dir: str | os.PathLike,
    resume: bool = False,
    log=print,
    on_trained=None,
) -> dict[str, Any]:
    """Train (or resume) a run to ``config.iterations``; write checkpoints, samples, summary.

    As the RL Tuner's runs: the run folder is locked for the whole run
    (:class:`~agents.run_control.RunLock`), and SIGINT or SIGTERM finish the iteration, write a
    checkpoint and raise :class:`~agents.run_control.Stopped` saying how to resume.

    Args:
        config: the run's config (on resume only its ``total_steps`` and ``progress_bar`` are
            used; the rest comes from the checkpoint).
        run_dir: the run folder (``checkpoints/``, ``tensorboard/``, ``samples/``,
            ``summary.json``, ``summary.md``).
        resume: continue from the run folder's latest checkpoint, exactly.
        log: prints progress messages.
        on_trained: called after the final checkpoint, before the summary's evaluation.

    Returns:
        The summary (also in ``summary.json``).

    Raises:
        FileExistsError: ``run_dir`` holds a run and ``resume`` is false.
        FileNotFoundError: ``resume`` and no checkpoint in ``run_dir``.
        ValueError: ``run_dir`` cannot hold a run.
        agents.run_control.RunLocked: another live run holds ``run_dir``.
        agents.run_control.Stopped: stopped by a signal after checkpointing.
    """
    run_dir = check_output_folder(run_dir)
    with RunLock(run_dir, "train"):
        return _train(config, run_dir, resume, log, on_trained)


def _train(config: RLOOConfig, run_dir: Path, resume: bool, log, on_trained) -> dict[str, Any]:
    tensorboard = run_dir / "tensorboard" if _has_tensorboard() else None
    if resume:
        try:
            model = RLOO.load(run_dir, ENV_ID, tensorboard_log=tensorboard)
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"cannot resume: {error}. Start a new run without --resume."
            ) from error
        model.config = replace(model.config, progress_bar=config.progress_bar)
        for folder in (run_dir, run_dir / "samples"):
            remove_temporaries(folder)  # what a kill during the summary left behind
        log(f"resumed from {model.loaded_from} at step {model.num_timesteps:,}")
    elif (run_dir / ckpt.CHECKPOINTS / ckpt.LATEST).exists():
        raise FileExistsError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --out"
        )
    else:
        model = RLOO.from_config(config, ENV_ID, tensorboard_log=tensorboard)
    torch.set_num_threads(model.config.torch_threads)  # also for the summary's evaluation
    per_iteration = model.config.batch_compositions * model.config.env.composition_length
    end = -(-config.total_steps // per_iteration) * per_iteration
    last_saved = model.num_timesteps if resume else None
    started = time.perf_counter()

    def checkpoint_or_stop(local: dict[str, Any], _globals: dict[str, Any]) -> bool:
        nonlocal last_saved
        step, every = model.num_timesteps, model.config.checkpoint_every
        if every and step // every > (step - local["steps"]) // every:
            model.save(run_dir)
            last_saved = step
        if stop.requested:
            if last_saved != step:
                model.save(run_dir)
            raise Stopped(
                stop.signal,
                f"stopped by {signal.Signals(stop.signal).name} at step {step:,} of {end:,}; "
                f"checkpoint saved; resume with: melody-rl train --resume --out "
                f"{shlex.quote(str(run_dir))}",
            )
        return True

    stop = GracefulStop().__enter__()  # Ctrl-C / SIGTERM: finish the iteration, save, stop
    try:
        model.learn(
            config.total_steps - model.num_timesteps,
            callback=checkpoint_or_stop,
            progress_bar=model.config.progress_bar,
            reset_num_timesteps=not resume,
        )
    finally:
        stop.__exit__()
        model.env.close()
    if last_saved != model.num_timesteps:
        model.save(run_dir)
    if on_trained is not None:
        on_trained()
    summary = summarize_run(model.policy, model.config, model.progress, run_dir, started)
    if model.writer is not None:
        for name, value in summary.get("sampled", {}).items():
            if isinstance(value, (int, float)) and np.isfinite(value):
                model.writer.add_scalar(f"final/{name}", value, model.num_timesteps)
        model.writer.close()
    return summary


def _has_tensorboard() -> bool:
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def summarize_run(
    policy: RLOOPolicy,
    config: RLOOConfig,
    progress: ckpt.Progress,
    run_dir: Path,
    started: float,
) -> dict[str, Any]:
    """The run's summary through the evaluation suite, as ``melody-rl train`` writes it for the
    RL Tuner: ``summary_compositions`` compositions sampled (the policy's ``predict``) and
    greedy, the untuned Note RNN on the same primers, Table 1 with the music rows and the exact
    KL; ``summary.json``, ``summary.md``, ``report.json`` and MIDI samples. A run trained with
    ``key="any"`` is summarised in C major (``melody-rl evaluate --key all`` gives every key).
    ``started``: the ``time.perf_counter()`` of the run's start (for ``total_seconds``)."""
    from agents.baselines.summary import evaluation_env_kwargs, summarize_policy

    summary: dict[str, Any] = {
        "config": {"algo": "rloo", "preset": "default", **config.to_dict()},
        "global_step": progress.global_step,
        "gradient_steps": progress.iteration,
        "train_seconds": progress.train_seconds,
    }
    results = []
    if config.summary_compositions:
        key, env_kwargs = config.env.key, evaluation_env_kwargs(config.env)
        if key == "any":  # the suite takes one key, as for the RL Tuner's key-any runs
            key = "C major"
        columns, results = summarize_policy(
            policy, "rloo", config.summary_compositions, config.seed, key, policy.prior, env_kwargs
        )
        for stats in columns.values():
            for name, value in stats.items():
                stats[name] = float("nan") if value is None else value
        summary.update(columns)
        sampled = next(result for result in results if result.name.endswith("sampled"))
        width = max(3, len(str(config.num_samples - 1)))
        for index, tokens in enumerate(sampled.tokens[: config.num_samples]):
            write_midi(run_dir / "samples" / f"sample_{index:0{width}d}.mid", tokens)
    summary["total_seconds"] = time.perf_counter() - started  # training, checkpoints, summary
    if results:
        write_summary(run_dir, summary, results)
    else:
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary
