"""One benchmark run: train an algorithm for a budget of env steps, then evaluate it.

Every run, whichever its family, ends the same way: the trained policy writes ``n``
compositions through :func:`melody_env.evaluation.evaluate` (same ``n``, same seed, hence the
same primers, for every algorithm of a seed), and ``bench.json`` records the statistics, the
env steps really taken, the training wall time and the env steps per second. A run folder that
already holds ``bench.json`` is not run again, so a killed benchmark continues where it stopped.

RL Tuner runs (``q``, ``psi``, ``g``, ``pure_rl``) use the agent's ``fast`` preset (or
``paper``) with its epsilon schedule scaled to the budget (half of it, as the presets' 100k of
200k and 500k of 1M), no periodic evaluation and no summary (the benchmark evaluates). SB3 runs use
:mod:`agents.baselines.algorithms`' defaults.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from melody_env.atomic import atomic_write_text
from melody_env.io.sb3_zip import load_sb3_model

RL_TUNER_ALGOS = ("q", "psi", "g", "pure_rl")
"""The RL Tuner agent's algorithms (``melody-rl train --algo``)."""
RESULT_FILE = "bench.json"


@dataclass(frozen=True)
class RunSpec:
    """One (algorithm, seed) cell of the benchmark."""

    algo: str
    """An RL Tuner algorithm or an SB3 one (``sb3-ppo``, ...)."""
    seed: int
    """Training seed; also the evaluation's seed."""
    total_steps: int
    """Budget in env steps."""
    num_envs: int = 64
    """Compositions composed at once while training."""
    eval_compositions: int = 1000
    """Compositions of the evaluation."""
    deterministic: bool = False
    """Evaluate greedy actions instead of the policy's sampling."""
    key: str = "C major"
    """Key of training and evaluation."""
    reward_rnn: str | None = None
    """Note RNN checkpoint (``None``: shipped)."""
    preset: str = "fast"
    """The RL Tuner runs' preset (``fast`` or ``paper``; SB3 runs ignore it)."""

    @property
    def name(self) -> str:
        return f"{self.algo}_seed{self.seed}"


def run(spec: RunSpec, out: str | Path) -> dict[str, Any]:
    """Train and evaluate ``spec`` in ``out / spec.name``; return its ``bench.json`` record."""
    run_dir = Path(out) / spec.name
    result_path = run_dir / RESULT_FILE
    if result_path.is_file():
        return json.loads(result_path.read_text())
    torch.set_num_threads(1)
    started = time.perf_counter()
    if spec.algo in RL_TUNER_ALGOS:
        policy, counters = _train_rl_tuner(spec, run_dir)
    else:
        policy, counters = _train_sb3(spec, run_dir)
    from agents.baselines.summary import evaluate_policy, statistics
    from agents.baselines.train import load_reward_model

    eval_start = time.perf_counter()
    result = evaluate_policy(
        policy,
        spec.eval_compositions,
        spec.seed,
        spec.key,
        load_reward_model(spec.reward_rnn),
        deterministic=spec.deterministic,
        name=spec.name,
    )
    record = {
        "spec": asdict(spec),
        **counters,
        "steps_per_second": counters["global_step"] / max(counters["train_seconds"], 1e-9),
        "eval_seconds": time.perf_counter() - eval_start,
        "wall_seconds": time.perf_counter() - started,
        "statistics": statistics(result),
    }
    atomic_write_text(result_path, json.dumps(record, indent=1) + "\n")
    return record


def _train_rl_tuner(spec: RunSpec, run_dir: Path) -> tuple[Any, dict[str, Any]]:
    from agents.rl_tuner import checkpoint as ckpt
    from agents.rl_tuner.config import make_config
    from agents.rl_tuner.trainer import train

    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        preset = make_config(spec.preset, spec.algo)
        config = make_config(
            spec.preset,
            spec.algo,
            seed=spec.seed,
            total_steps=spec.total_steps,
            num_envs=spec.num_envs,
            exploration_steps=max(1, spec.total_steps // 2),
            learning_starts=min(preset.learning_starts, spec.total_steps // 4),
            env={"key": spec.key, "reward_rnn": spec.reward_rnn},
            eval_every=0,
            checkpoint_every=0,
            summary_compositions=0,
            progress_bar=False,
        )
        resume = (run_dir / ckpt.CHECKPOINTS / ckpt.LATEST).exists()
        train(config, run_dir, resume=resume, log=lambda message: None)
    summary = json.loads(summary_path.read_text())
    counters = {
        "global_step": summary["global_step"],
        "train_seconds": summary["train_seconds"],
        "gradient_steps": summary.get("gradient_steps", 0),
    }
    return ckpt.load_agent(run_dir), counters


def _train_sb3(spec: RunSpec, run_dir: Path) -> tuple[Any, dict[str, Any]]:
    from agents.baselines.algorithms import get_algorithm
    from agents.baselines.config import BaselineConfig
    from agents.baselines.train import MODEL_FILE, as_policy, train_baseline
    from melody_env.envs.env_config import EnvConfig

    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        if (run_dir / MODEL_FILE).exists():  # killed between saving and summarising
            (run_dir / MODEL_FILE).unlink()
        config = BaselineConfig(
            algo=spec.algo,
            total_steps=spec.total_steps,
            seed=spec.seed,
            num_envs=spec.num_envs,
            env=EnvConfig(key=spec.key, reward_rnn=spec.reward_rnn),
            eval_compositions=0,
            num_samples=0,
        )
        train_baseline(config, run_dir, log=lambda message: None)
    summary = json.loads(summary_path.read_text())
    # Without unpickling: a run folder may come from someone else (melody_env.io.sb3_zip).
    model = load_sb3_model(run_dir / MODEL_FILE, get_algorithm(spec.algo).load_class())
    counters = {
        "global_step": summary["global_step"],
        "train_seconds": summary["train_seconds"],
        "gradient_steps": summary.get("gradient_steps", 0),
    }
    return as_policy(model, spec.algo), counters
