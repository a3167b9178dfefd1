"""The reward–KL frontier: sweep each algorithm's pull toward the prior, seeds x values, and plot.

Each algorithm of :data:`FRONTIER_ALGOS` has one *knob* that sets how strongly it is pulled
toward the Note RNN (the prior), and default values to sweep:

- the RL Tuner's DQN family (``q``, ``psi``, ``g``) and SB3 (``sb3-ppo``): the env's
  ``reward_scaler`` ``s`` in ``s * r_MT + log p`` (``g``: ``s * r_MT`` with the prior in its
  policy). A **larger** ``s`` means **less** pull toward the prior (the paper: ``s = 2``, c = 0.5).
  ``pure_rl`` has no prior term: its ``s`` only scales the reward (a reference, not a pull);
- ``rloo``: its own KL weight ``kl_coef`` (``beta``): a larger value means **more** pull.

Every (algorithm, value, seed) *point* trains with ``melody-rl train`` (``--set`` for the knob)
or :func:`agents.baselines.train.train_baseline` for SB3 (each at its default budget unless
``total_steps`` is given), in its own process, ``jobs`` at a time, then composes ``eval_n``
compositions with the evaluation suite (:func:`agents.baselines.summary.evaluate_policy`:
Table 1, KL to the Note RNN, the 5-gram judge, diversity of sampled and greedy actions). The
untuned Note RNN is evaluated per seed as the reference (KL 0).

The same command continues a killed sweep: a point whose ``point.json`` exists is not run
again; an unfinished RL Tuner or RLOO point resumes from its checkpoint; an unfinished SB3
point, which cannot resume, is moved to ``seedN.unfinished`` and trained again (a stopped
run's ``model.zip`` is partial). Outputs in ``out``:

- ``frontier.json``: every point's statistics and counters;
- ``frontier.csv``: one row per point (:data:`CSV_COLUMNS`), ``pareto`` = its configuration is
  Pareto-optimal;
- ``frontier.md``: per configuration (algorithm, value) the mean ± std over seeds of the
  columns, Pareto-optimal ones marked;
- ``frontier.png``: left, r_MT per step against KL(pi ‖ Note RNN) per step (each seed a small
  dot, each configuration's mean a large marker, colour = distinct openings), the frontier
  drawn through the Pareto-optimal configurations; right, the judge: quality against coverage
  (both nats/token, lower is better), colour = distinct openings.

A configuration is *Pareto-optimal* when no other configuration has a higher-or-equal mean
r_MT per step and a lower-or-equal mean KL per step, one of them strictly. Adding an
algorithm is one :data:`FRONTIER_ALGOS` entry.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from melody_env.atomic import atomic_write_text

SUMMARY_FILE = "summary.json"
"""Written by every finished run (RL Tuner, RLOO, SB3), last: a point without it is unfinished."""


@dataclass(frozen=True)
class FrontierAlgo:
    """How to sweep one algorithm.

    Attributes:
        name: the algorithm (``melody-rl train --algo`` or an SB3 name).
        knob: the override the sweep sets (:func:`agents.overrides.apply_overrides`):
            ``env.reward_scaler`` or ``kl_coef``, through ``melody-rl train --set`` or on a
            :class:`~agents.baselines.config.BaselineConfig`.
        values: the default values swept.
        family: ``"train"`` (``melody-rl train``) or ``"sb3"``.
        train_args: extra ``melody-rl train`` arguments (e.g. skip its own summary).
        key_field: the ``--set`` field of the key of the compositions.
        policy: the :func:`~agents.policies.load_policy` spec of the trained
            policy, ``{run}`` standing for the run folder.
        more_is_less_pull: a larger value pulls less toward the prior (for the labels).
        default: the knob's value when the algorithm is trained with its own defaults (the
            column of ``frontier.md``'s table of every statistic).
    """

    name: str
    knob: str
    values: tuple[float, ...]
    family: str = "train"
    train_args: tuple[str, ...] = ()
    key_field: str = "env.key"
    policy: str = "agent:{run}"
    more_is_less_pull: bool = True
    default: float = 2.0


SCALERS = (0.25, 0.5, 1.0, 2.0)
"""Reward scalers swept by default: from a strong pull toward the prior to the paper's 2."""
_DQN_ARGS = ("--set", "summary_compositions=0", "--eval-every", "0", "--checkpoint-every", "0")
FRONTIER_ALGOS: dict[str, FrontierAlgo] = {
    "q": FrontierAlgo("q", "env.reward_scaler", SCALERS, train_args=_DQN_ARGS),
    "psi": FrontierAlgo("psi", "env.reward_scaler", SCALERS, train_args=_DQN_ARGS),
    "g": FrontierAlgo("g", "env.reward_scaler", SCALERS, train_args=_DQN_ARGS),
    "pure_rl": FrontierAlgo("pure_rl", "env.reward_scaler", SCALERS, train_args=_DQN_ARGS),
    "sb3-ppo": FrontierAlgo("sb3-ppo", "env.reward_scaler", SCALERS, family="sb3", policy=""),
    "rloo": FrontierAlgo(
        "rloo",
        "kl_coef",
        (1.0, 2.0, 4.0, 8.0),
        train_args=("--set", "summary_compositions=0", "--set", "torch_threads=1"),
        more_is_less_pull=False,
        default=4.0,
    ),
}
"""Every algorithm the frontier knows (``rloo`` needs ``melody-rl train --algo rloo``)."""
DEFAULT_ALGOS = ("q", "psi", "g", "pure_rl", "sb3-ppo", "rloo")
CSV_COLUMNS = (
    "algo",
    "knob",
    "value",
    "seed",
    "music_theory",
    "kl",
    "distinct_openings",
    "top_opening_share",
    "greedy_distinct_openings",
    "judge_quality",
    "judge_coverage",
    "interval_overlap",
    "starts_with_tonic",
    "excessively_repeated",
    "in_repeated_motif",
    "starts_on_lowest",
    "train_seconds",
    "pareto",
)
"""Columns of ``frontier.csv`` (statistics: the evaluation suite's names)."""


@dataclass(frozen=True)
class Point:
    """One (algorithm, knob value, seed) of the sweep."""

    algo: str
    value: float
    seed: int
    total_steps: int | None
    """Budget in env steps (``None``: the algorithm's own default)."""
    eval_n: int = 2000
    key: str = "C major"

    @property
    def name(self) -> str:
        knob = FRONTIER_ALGOS[self.algo].knob.split(".")[-1]
        return f"{self.algo}/{knob}={self.value:g}/seed{self.seed}"


@dataclass(frozen=True)
class FrontierConfig:
    """A sweep: algorithms, values per algorithm (default: each one's), seeds and budget."""

    algos: tuple[str, ...] = DEFAULT_ALGOS
    seeds: tuple[int, ...] = (0, 1, 2)
    total_steps: int | None = None
    """Env steps per run; ``None``: each algorithm's default budget (``melody-rl train``'s
    preset, 200,000 for SB3, RLOO's own iterations)."""
    eval_n: int = 2000
    jobs: int = 2
    key: str = "C major"
    values: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """Values per algorithm overriding :attr:`FrontierAlgo.values`."""

    def __post_init__(self) -> None:
        unknown = [a for a in (*self.algos, *self.values) if a not in FRONTIER_ALGOS]
        if unknown or not self.algos:
            raise ValueError(f"unknown algorithms {unknown}; choose from {sorted(FRONTIER_ALGOS)}")
        if not self.seeds:
            raise ValueError("give at least one seed")
        for name in ("total_steps", "eval_n", "jobs"):
            value = getattr(self, name)
            if name == "total_steps" and value is None:
                continue
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for algo, values in self.values.items():
            if not values or any(not v > 0 for v in values):
                raise ValueError(f"values for {algo} must be positive numbers, got {values!r}")

    def points(self) -> list[Point]:
        return [
            Point(algo, float(value), seed, self.total_steps, self.eval_n, self.key)
            for algo in self.algos
            for value in self.values.get(algo, FRONTIER_ALGOS[algo].values)
            for seed in self.seeds
        ]


def run_point(point: Point, out: str | os.PathLike) -> dict[str, Any]:
    """Train and evaluate one point in ``out / point.name``; return its ``point.json`` record."""
    import torch

    run_dir = Path(out) / point.name
    record_path = run_dir / "point.json"
    if record_path.is_file():
        return json.loads(record_path.read_text())
    torch.set_num_threads(1)
    algo = FRONTIER_ALGOS[point.algo]
    started = time.perf_counter()
    policy, env_kwargs = _train(algo, point, run_dir)
    train_seconds = time.perf_counter() - started
    from agents.baselines.summary import evaluate_policy, statistics
    from agents.baselines.train import load_reward_model

    result = evaluate_policy(
        policy, point.eval_n, point.seed, point.key, load_reward_model(None), env_kwargs
    )
    record = {
        "point": asdict(point),
        "knob": algo.knob,
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - started - train_seconds,
        "statistics": statistics(result),
    }
    atomic_write_text(record_path, json.dumps(record, indent=1) + "\n")
    return record


def _train(algo: FrontierAlgo, point: Point, run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Train ``point``; return its policy and the env arguments to evaluate it under."""
    from agents.policies import load_policy

    scaler = algo.knob.split(".")[-1] == "reward_scaler"
    env_kwargs = {"reward_scaler": point.value} if scaler else {}
    if algo.family == "sb3":
        from agents.baselines.algorithms import get_algorithm
        from agents.baselines.config import BaselineConfig
        from agents.baselines.train import MODEL_FILE, as_policy, train_baseline
        from agents.overrides import apply_overrides

        if not (run_dir / SUMMARY_FILE).is_file():
            _set_aside_unfinished(run_dir)
            budget = {} if point.total_steps is None else {"total_steps": point.total_steps}
            config = BaselineConfig(
                algo=point.algo, seed=point.seed, eval_compositions=0, num_samples=0, **budget
            )
            config = apply_overrides(
                config, [f"{algo.knob}={point.value!r}", f"{algo.key_field}={point.key}"]
            )
            train_baseline(config, run_dir, log=lambda message: None)
        from melody_env.io.sb3_zip import load_sb3_model

        # Never unpickle: the zip's pickled entries are rebuilt from their plain fields.
        model = load_sb3_model(run_dir / MODEL_FILE, get_algorithm(point.algo).load_class())
        return as_policy(model, point.algo), env_kwargs
    from agents.cli import main as cli

    argv = [
        "train",
        "--algo",
        point.algo,
        "--out",
        str(run_dir),
        "--seed",
        str(point.seed),
        *([] if point.total_steps is None else ["--steps", str(point.total_steps)]),
        "--no-progress",
        "--set",
        f"{algo.knob}={point.value!r}",
        "--set",
        f"{algo.key_field}={point.key}",
        *algo.train_args,
    ]
    if not (run_dir / SUMMARY_FILE).is_file():
        from agents.rl_tuner.checkpoint import CHECKPOINTS, LATEST

        if (run_dir / CHECKPOINTS / LATEST).is_file():
            # A stopped run continues from its checkpoint, under the config it was started with.
            argv = ["train", "--out", str(run_dir), "--resume", "--no-progress"]
        code = cli(argv)
        if code != 0:
            raise RuntimeError(f"melody-rl {' '.join(argv)} exited with {code}")
    return load_policy(algo.policy.format(run=run_dir)), env_kwargs


def _set_aside_unfinished(run_dir: Path) -> None:
    """Move an SB3 point's unfinished run (stopped or killed: no ``summary.json``) to
    ``NAME.unfinished[-N]`` beside it. SB3 runs cannot be resumed, and a stopped run's
    ``model.zip`` is a partial model that must not be evaluated as the point; moving it keeps
    what was written."""
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return
    target = run_dir.with_name(f"{run_dir.name}.unfinished")
    number = 1
    while target.exists():
        number += 1
        target = run_dir.with_name(f"{run_dir.name}.unfinished-{number}")
    run_dir.rename(target)


def reference_records(config: FrontierConfig) -> list[dict[str, Any]]:
    """The untuned Note RNN per seed (KL 0: the origin of the frontier)."""
    from agents.baselines.summary import evaluate_policy, statistics
    from agents.baselines.train import load_reward_model
    from melody_env.evaluation import NoteRNNPolicy

    rnn = load_reward_model(None)
    return [
        {
            "point": {"algo": "note_rnn", "value": 0.0, "seed": seed},
            "knob": "",
            "statistics": statistics(
                evaluate_policy(NoteRNNPolicy(), config.eval_n, seed, config.key, rnn)
            ),
        }
        for seed in config.seeds
    ]


def finished_records(out: str | os.PathLike) -> list[dict[str, Any]]:
    """The ``point.json`` record of every finished point under ``out``, whatever sweep wrote it."""
    return [json.loads(path.read_text()) for path in sorted(Path(out).glob("*/*/seed*/point.json"))]


def run_frontier(
    config: FrontierConfig,
    out: str | os.PathLike,
    log=print,
    report_only: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Run every point, then write the JSON, CSV, table and plot; return the JSON's content.

    With ``report_only`` nothing is trained: the outputs cover every point already finished in
    ``out`` (e.g. the union of several smaller sweeps), whatever ``config`` names. With
    ``progress``, a bar of the finished points with an ETA (on stderr).
    """
    from agents.baselines.frontier_report import write_outputs
    from agents.baselines.parallel import execute
    from agents.progress import log_function, progress_bar
    from agents.run_control import Stopped

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    points = config.points()
    log(f"Note RNN reference on {config.eval_n} compositions per seed")
    references = reference_records(config)
    if report_only:
        records = finished_records(out)
        log(f"{len(records)} finished points in {out}; nothing trained")
    else:
        log(f"{len(points)} points of {budget_text(config.total_steps)}, {config.jobs} at a time")
        records = []
        with progress_bar(len(points), "frontier", "point", enabled=progress) as bar:
            say = log_function(bar) if progress else log
            runs = execute(run_point, "point", points, str(out), config.jobs, quiet=progress)
            for point, record in runs:
                if "stopped" in record:  # a signal: the point's run saved its checkpoint
                    raise Stopped(record["stopped"], record["message"])
                records.append(record)
                bar.update(1)
                if "error" in record:
                    say(f"{record['point']} FAILED:\n{record['error']}")
                elif progress:
                    say(f"  {point.name} done")
    records.sort(key=lambda r: (r["point"]["algo"], r["point"]["value"], r["point"]["seed"]))
    results = {
        "config": asdict(config),
        "wall_seconds": None if report_only else time.perf_counter() - started,
        "points": records,
        "references": references,
    }
    write_outputs(results, out)
    return results


def budget_text(total_steps: int | None) -> str:
    """``"200,000 env steps"``, or the default budgets' description for ``None``."""
    if total_steps is None:
        return "each algorithm's default budget"
    return f"{total_steps:,} env steps"


def configuration_means(records: list[dict[str, Any]]) -> dict[tuple[str, float], dict[str, float]]:
    """Mean of every numeric statistic over the seeds of each (algorithm, value)."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for record in records:
        if "statistics" in record:
            point = record["point"]
            groups.setdefault((point["algo"], float(point["value"])), []).append(record)
    means = {}
    for key, group in groups.items():
        names = {
            name
            for record in group
            for name, value in record["statistics"].items()
            if isinstance(value, (int, float))
        }
        means[key] = {}
        for name in sorted(names):
            values = [r["statistics"].get(name) for r in group]
            values = [float(v) for v in values if isinstance(v, (int, float))]
            means[key][name] = float(np.mean(values)) if values else float("nan")
            means[key][f"{name}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        if "train_seconds" in group[0]:
            means[key]["train_seconds"] = float(np.mean([r["train_seconds"] for r in group]))
        means[key]["seeds"] = len(group)
    return means


def pareto_optimal(points: dict[Any, tuple[float, float]]) -> set[Any]:
    """The keys of ``points`` ``{key: (reward, kl)}`` that no other point dominates (reward
    higher-or-equal and KL lower-or-equal, one strictly); points with a NaN are never optimal.

    >>> sorted(pareto_optimal({"a": (1.0, 0.1), "b": (2.0, 0.5), "c": (1.5, 0.6), "d": (2.0, 0.5)}))
    ['a', 'b', 'd']
    """
    finite = {k: v for k, v in points.items() if np.isfinite(v[0]) and np.isfinite(v[1])}
    optimal = set()
    for key, (reward, kl) in finite.items():
        dominated = any(
            r >= reward and k <= kl and (r > reward or k < kl)
            for other, (r, k) in finite.items()
            if other != key
        )
        if not dominated:
            optimal.add(key)
    return optimal


def write_csv(results: dict[str, Any], path: Path, optimal: set) -> Path:
    """``frontier.csv``: one row per point (and per Note RNN reference seed)."""
    rows = []
    for record in [*results["references"], *results["points"]]:
        if "statistics" not in record:
            continue
        point, stats = record["point"], record["statistics"]
        row = {
            "algo": point["algo"],
            "knob": record.get("knob", ""),
            "value": point["value"],
            "seed": point["seed"],
            "train_seconds": record.get("train_seconds", ""),
            "pareto": (point["algo"], float(point["value"])) in optimal,
        }
        for name in CSV_COLUMNS:
            row.setdefault(name, stats.get(name))
        rows.append(row)
    from io import StringIO

    buffer = StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())
    return path
