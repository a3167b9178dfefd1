"""The algorithm benchmark: algorithms x seeds at one budget of env steps, in parallel processes.

:func:`run_benchmark` trains and evaluates every (algorithm, seed) of a
:class:`BenchmarkConfig` (:mod:`agents.baselines.runs`, one fresh process per run, ``jobs`` at a
time), evaluates two references on the same primers (the untuned Note RNN, sampled, and a
uniformly random policy), and writes into the output folder:

- ``results.md`` / ``results.json``: per statistic, mean ± std over seeds for every algorithm
  (the paper's Table-1 rows, the KL to the Note RNN, the music rows of
  :mod:`melody_env.evaluation.music_summary` (the 5-gram judge, histogram overlaps with the
  corpus, diversity of sampled and greedy actions, exploit watch), r_MT and log p per step, the
  env reward per step, the training wall time and env steps per second);
- ``learning_curves.png``: r_MT and log p per step against env steps, every algorithm on one
  plot (mean over seeds, ± std shaded; the references as dashed lines).

Optionally it writes the same table into the ``## RL algorithms`` section of a shared results
file (:func:`update_results_section`), leaving the file's other sections as they are.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import shlex
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.baselines.parallel import execute
from agents.baselines.runs import RL_TUNER_ALGOS, RunSpec, run
from agents.run_control import GracefulStop, Stopped
from melody_env.atomic import atomic_write_text
from melody_env.evaluation.metrics import STATISTICS
from melody_env.evaluation.music_summary import MUSIC_ROWS
from melody_env.evaluation.stats import Estimate, format_mean_std, mean_std

DEFAULT_ALGOS = (
    "q",
    "psi",
    "g",
    "pure_rl",
    "sb3-dqn",
    "sb3-ppo",
    "sb3-a2c",
    "sb3-qrdqn",
    "sb3-recurrentppo",
)
LABELS = {
    "q": "Q",
    "psi": "Ψ",
    "g": "G",
    "pure_rl": "RL only",
    "sb3-dqn": "DQN",
    "sb3-ppo": "PPO",
    "sb3-a2c": "A2C",
    "sb3-qrdqn": "QR-DQN",
    "sb3-recurrentppo": "RecurrentPPO",
    "sb3-maskableppo": "MaskablePPO",
    "note_rnn": "Note RNN (untuned)",
    "random": "Random",
}
"""Column names of the table."""
EXTRA_ROWS = (
    ("music_theory", "r_MT per step", False),
    ("log_prob", "log p per step (Note RNN)", False),
    ("total_reward", "Env reward per step (2 r_MT + log p)", False),
    ("train_seconds", "Training wall time (s)", False),
    ("steps_per_second", "Env steps per second", False),
)
"""Rows after the Table-1 rows: (key, label, percent)."""
FULL_BUDGET = 200_000
"""Env steps per run of the full benchmark; a smaller budget is flagged in the table's text."""
SECTION = "## RL algorithms"
"""Heading of our section in the shared results file."""


@dataclass(frozen=True)
class BenchmarkConfig:
    """A benchmark: which algorithms, seeds and budget, and how to evaluate."""

    algos: tuple[str, ...] = DEFAULT_ALGOS
    """RL Tuner algorithms (``q``, ``psi``, ``g``, ``pure_rl``) and SB3 ones (``sb3-ppo``...)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds; each seed's evaluation uses the same primers for every algorithm."""
    total_steps: int = 200_000
    """Budget of every run in env steps (tokens placed while training)."""
    jobs: int = 2
    """Runs in parallel, each in its own process with one torch thread (1: one after the other
    in the calling process)."""
    num_envs: int = 64
    """Compositions composed at once while training (all algorithms)."""
    eval_compositions: int = 1000
    """Compositions per evaluation (every run and reference)."""
    deterministic: bool = False
    """Evaluate greedy actions (default: each policy's own sampling, the paper's protocol)."""
    key: str = "C major"
    """Key of training and evaluation."""
    reward_rnn: str | None = None
    """Note RNN checkpoint (``None``: shipped)."""
    preset: str = "fast"
    """The RL Tuner runs' preset: ``fast`` or ``paper`` (its hyperparameters; the budget, the
    compositions at once and the key are the benchmark's: ``--num-envs 1`` for the paper's one
    composition at a time)."""
    command: str = field(default="", compare=False)
    """The command line, recorded beside the table."""
    note: str = field(default="", compare=False)
    """A sentence printed beside the table (e.g. what else ran on the machine)."""

    def __post_init__(self) -> None:
        from agents.baselines.algorithms import ALGORITHMS

        known = set(RL_TUNER_ALGOS) | set(ALGORITHMS)
        unknown = [algo for algo in self.algos if algo not in known]
        if unknown or not self.algos:
            raise ValueError(
                f"unknown algorithms {unknown}; choose from {', '.join(sorted(known))}"
            )
        if not self.seeds:
            raise ValueError("give at least one seed")
        from agents.rl_tuner.config import PRESETS

        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        for name in ("total_steps", "jobs", "num_envs", "eval_compositions"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def specs(self) -> list[RunSpec]:
        return [
            RunSpec(
                algo,
                seed,
                self.total_steps,
                self.num_envs,
                self.eval_compositions,
                self.deterministic,
                self.key,
                self.reward_rnn,
                self.preset,
            )
            for algo in self.algos
            for seed in self.seeds
        ]


def _pass_on_sigterm(signum: int) -> None:
    """A SIGTERM sent to the benchmark alone reaches its worker processes too (a SIGINT from the
    terminal reaches the whole process group already)."""
    if signum == signal.SIGTERM:
        for child in multiprocessing.active_children():
            os.kill(child.pid, signum)


def evaluate_references(config: BenchmarkConfig) -> dict[str, list[dict[str, Any]]]:
    """The Note RNN and the random policy, evaluated per seed like the runs."""
    from agents.baselines.summary import evaluate_policy, statistics
    from agents.baselines.train import load_reward_model
    from melody_env.evaluation import NoteRNNPolicy, RandomPolicy

    reward_rnn = load_reward_model(config.reward_rnn)
    references: dict[str, list[dict[str, Any]]] = {"note_rnn": [], "random": []}
    for seed in config.seeds:
        for name, policy in (("note_rnn", NoteRNNPolicy()), ("random", RandomPolicy(seed))):
            result = evaluate_policy(
                policy, config.eval_compositions, seed, config.key, reward_rnn, name=name
            )
            references[name].append({"seed": seed, "statistics": statistics(result)})
    return references


def run_benchmark(
    config: BenchmarkConfig, out: str | os.PathLike, log=print, progress: bool = False
) -> dict[str, Any]:
    """Run every (algorithm, seed), then tabulate and plot; return ``results.json``'s content.

    With ``progress``, a bar of the finished runs with an ETA (on stderr) replaces the runs'
    own "done" lines."""
    from agents.progress import log_function, progress_bar

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log(f"references (Note RNN, random) on {config.eval_compositions} compositions per seed")
    references = evaluate_references(config)
    specs = config.specs()
    log(f"{len(specs)} runs of {config.total_steps:,} env steps, {config.jobs} at a time")
    records: dict[str, list[dict[str, Any]]] = {algo: [] for algo in config.algos}
    stopped = None
    bar = progress_bar(len(specs), "benchmark", "run", enabled=progress)
    with bar, GracefulStop(on_signal=_pass_on_sigterm) as stop:
        say = log_function(bar) if progress else log
        runs = execute(run, "spec", specs, str(out), config.jobs, stop, quiet=progress)
        for spec, record in runs:
            records[spec.algo].append(record)
            bar.update(1)
            if "error" in record:
                say(f"{spec.name} FAILED:\n{record['error']}")
            elif progress and "statistics" in record:
                say(f"  {spec.name} done ({record.get('wall_seconds', 0.0):.0f} s)")
            stopped = stopped or record.get("stopped") or stop.signal
    if stopped:
        finished = sum("statistics" in r for runs in records.values() for r in runs)
        raise Stopped(
            stopped,
            f"stopped by {signal.Signals(stopped).name}: {finished} of {len(specs)} runs "
            "finished; run the same command to continue (RL Tuner runs resume from their "
            "checkpoints, SB3 runs start again)",
        )
    for algo in records:
        records[algo].sort(key=lambda record: record["spec"]["seed"])
    results = {
        "config": asdict(config),
        "machine": machine_description(),
        "wall_seconds": time.perf_counter() - started,
        "runs": records,
        "references": references,
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=1) + "\n")
    table = results_markdown(results, out)
    atomic_write_text(out / "results.md", table)
    try:
        learning_curves(config, out, references, out / "learning_curves.png")
    except (ImportError, ValueError) as error:  # matplotlib missing, or nothing logged
        log(f"no learning-curve plot: {error}")
    return results


def machine_description() -> str:
    """CPU model, cores, Python and torch versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores visible, Python {platform.python_version()}, "
        f"torch {torch.__version__}"
    )


def column_estimates(runs: list[dict[str, Any]]) -> dict[str, Estimate]:
    """Mean ± std over seeds of every statistic and counter of the successful runs."""
    rows = []
    for record in runs:
        if "statistics" not in record:
            continue
        values = {k: v for k, v in record["statistics"].items() if isinstance(v, (int, float))}
        for name in ("train_seconds", "steps_per_second", "global_step"):
            if name in record:
                values[name] = record[name]
        rows.append(values)
    return mean_std(rows) if rows else {}


def results_markdown(results: dict[str, Any], out: Path | None = None) -> str:
    """The results table (statistics x algorithms) with the setup above it."""
    config = results["config"]
    columns: dict[str, dict[str, Estimate]] = {}
    failures = []
    for algo, runs in results["runs"].items():
        columns[LABELS.get(algo, algo)] = column_estimates(runs)
        failures += [r["spec"] for r in runs if "error" in r]
    for name, runs in results["references"].items():
        columns[LABELS[name]] = column_estimates(runs)
    rows = [
        (s.name, s.label, "percent" if s.percent else "number")
        for s in STATISTICS
        if s.group == "table1"
    ]
    rows += [("kl", "KL(policy ‖ Note RNN) per step", "number")]
    rows += [(row.name, row.label, row.format) for row in MUSIC_ROWS]
    rows += [(key, label, "percent" if percent else "number") for key, label, percent in EXTRA_ROWS]
    header = ["Statistic", *columns]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["--:"] * len(columns)) + "|",
    ]
    for key, label, kind in rows:
        cells = [label]
        for estimates in columns.values():
            estimate = estimates.get(key)
            whole = kind == "count" or key in ("train_seconds", "steps_per_second")
            percent = kind == "percent"
            digits = 0 if whole else (1 if percent else 2)
            cells.append("n/a" if estimate is None else format_mean_std(estimate, percent, digits))
        lines.append("| " + " | ".join(cells) + " |")
    steps = [e["global_step"].value for e in columns.values() if "global_step" in e]
    mode = "greedy actions" if config["deterministic"] else "each policy's own sampling"
    text = [
        SECTION,
        "",
        f"Command: `{config['command'] or 'run_benchmark(...)'}`",
        "",
        f"Machine: {results['machine']}. Budget: {config['total_steps']:,} env steps per run "
        f"(runs took {int(min(steps)):,} to {int(max(steps)):,} including the rest of the last "
        f"rollout), seeds {', '.join(map(str, config['seeds']))}, {config['jobs']} runs in "
        f"parallel, {config['num_envs']} compositions at once; whole benchmark "
        f"{results['wall_seconds'] / 60:.0f} min."
        if steps
        else f"Machine: {results['machine']}.",
        "",
        *([config["note"], ""] if config.get("note") else []),
        *(
            [
                f"**Reduced budget**: {config['total_steps']:,} env steps per run, not the "
                f"{FULL_BUDGET:,} of the full benchmark (which needs several CPU hours); the "
                "numbers show where each algorithm stands early in training, not where it ends.",
                "",
            ]
            if config["total_steps"] < FULL_BUDGET
            else []
        ),
        f"Each run and reference composed {config['eval_compositions']:,} compositions per seed "
        f"(key {config['key']}, one random primer token, the same primers for every column of a "
        f"seed), scored by the evaluation suite; {mode} (DQN and QR-DQN: epsilon-greedy at their "
        "final epsilon, 0.05). Cells: mean ± std over seeds. Wall time is training only, with the "
        "runs sharing the cores with each other (and, on a shared machine, with other work). "
        "The learning curves are training-time (with exploration), read from each run's logs.",
        "",
        *lines,
        "",
    ]
    if failures:
        text += [
            "Failed runs (see results.json): "
            + ", ".join(f"{spec['algo']} seed {spec['seed']}" for spec in failures),
            "",
        ]
    if out is not None:
        text += [f"Learning curves: `{out / 'learning_curves.png'}`.", ""]
    return "\n".join(text)


def learning_curves(
    config: BenchmarkConfig,
    out: Path,
    references: dict[str, list[dict[str, Any]]],
    path: Path,
    points: int = 60,
) -> Path:
    """r_MT and log p per step against env steps for every algorithm (mean ± std over seeds)."""
    from melody_env.evaluation.plots import _figure, _save, read_training_log

    length = 32
    panels = (
        ("charts/music_theory", "r_MT per step", 1.0 / length, "music_theory"),
        ("charts/log_prob", "log p per step (Note RNN)", 1.0, "log_prob"),
    )
    figure = _figure(12.0, 4.5)
    axes = [figure.add_subplot(1, 2, index + 1) for index in range(len(panels))]
    colors = iter(
        [
            "#1f77b4",
            "#ff7f0e",
            "#2ca02c",
            "#d62728",
            "#9467bd",
            "#8c564b",
            "#e377c2",
            "#17becf",
            "#bcbd22",
            "#7f7f7f",
        ]
        * 2
    )
    plotted = 0
    for algo in config.algos:
        color = next(colors)
        logs = []
        for seed in config.seeds:
            run_dir = out / f"{algo}_seed{seed}"
            if run_dir.is_dir():
                try:
                    logs.append(read_training_log(run_dir))
                except (FileNotFoundError, ValueError):
                    continue
        for axis, (tag, _, scale, _) in zip(axes, panels, strict=True):
            curves = [log[tag] for log in logs if tag in log and len(log[tag][0]) > 0]
            if not curves:
                continue
            end = min(steps[-1] for steps, _ in curves)
            grid = np.linspace(min(steps[0] for steps, _ in curves), end, points)
            values = np.stack([np.interp(grid, s, _smooth(v)) * scale for s, v in curves])
            mean, std = values.mean(axis=0), values.std(axis=0)
            axis.plot(grid, mean, color=color, linewidth=1.4, label=LABELS.get(algo, algo))
            axis.fill_between(grid, mean - std, mean + std, color=color, alpha=0.15)
            plotted += 1
    if not plotted:
        raise ValueError(f"no learning curve found under {out}")
    for axis, (_, label, _, statistic) in zip(axes, panels, strict=True):
        for name, style in (("note_rnn", "--"), ("random", ":")):
            values = [r["statistics"].get(statistic) for r in references.get(name, [])]
            values = [v for v in values if v is not None]
            if values:
                axis.axhline(
                    float(np.mean(values)),
                    color="black",
                    linestyle=style,
                    linewidth=1,
                    label=f"{LABELS[name]} (evaluated)",
                )
        axis.set_title(label, fontsize=10)
        axis.set_xlabel("env steps", fontsize=9)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    figure.suptitle(
        f"Training curves, {config.total_steps:,} env steps, seeds "
        f"{', '.join(map(str, config.seeds))} (mean ± std)",
        fontsize=10,
    )
    figure.tight_layout()
    return _save(figure, path)


def _smooth(values: np.ndarray, window: int = 5) -> np.ndarray:
    """A centred moving average that keeps the length (edges use fewer points)."""
    if len(values) < 3:
        return values
    window = min(window, len(values))
    kernel = np.ones(window)
    return np.convolve(values, kernel, "same") / np.convolve(np.ones(len(values)), kernel, "same")


def update_results_section(path: str | os.PathLike, section: str) -> None:
    """Put ``section`` (starting with :data:`SECTION`) into the shared results file: replace our
    section if it is there (up to the next ``## `` heading), else append it."""
    path = Path(path)
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = lines[end:]
        new = "\n".join(
            lines[:start] + section.rstrip("\n").splitlines() + (["", *tail] if tail else [])
        )
        new = new.rstrip("\n") + "\n"
    atomic_write_text(path, new)


def command_line() -> str:
    """How this process was started, as a user would type it."""
    program = Path(sys.argv[0]).name
    if program in ("__main__.py", "cli.py"):
        program = "melody-rl"
    return shlex.join([program, *sys.argv[1:]])
