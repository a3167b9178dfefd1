"""Long training run of the recurrent DQN: memory over time and training throughput.

Trains the agent (``fast`` preset by default, periodic evaluation and checkpoints included, as
``melody-rl train`` runs it) for ``--steps`` env steps while a thread samples the process's
resident memory (RSS, from ``/proc/self/status``) every ``--interval`` seconds. Prints one row
per ``--report-every`` env steps: RSS, the replay's fill, env steps/s and gradient updates/s
over that window. Memory should rise while the replay fills (it preallocates its arrays, whose
pages the OS commits as they are written) and stay flat after.

    python benchmarks/training_soak.py --steps 1000000
    python benchmarks/training_soak.py --steps 1000000 --results benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from agents.rl_tuner.config import ALGORITHMS, PRESETS, make_config
from agents.rl_tuner.trainer import Trainer


def resident_mib() -> float:
    """Resident memory of this process in MiB (Linux ``VmRSS``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (this benchmark needs Linux)")


@dataclass
class Sample:
    seconds: float
    env_steps: int
    gradient_steps: int
    replay_size: int
    rss_mib: float


class MemorySampler(threading.Thread):
    """Samples RSS and the trainer's counters every ``interval`` seconds until stopped."""

    def __init__(self, trainer: Trainer, interval: float) -> None:
        super().__init__(daemon=True)
        self.trainer, self.interval = trainer, interval
        self.samples: list[Sample] = []
        self._stopping = threading.Event()
        self._start = time.perf_counter()

    def sample(self) -> None:
        progress = self.trainer.progress
        self.samples.append(
            Sample(
                time.perf_counter() - self._start,
                progress.global_step,
                progress.gradient_steps,
                len(self.trainer.replay),
                resident_mib(),
            )
        )

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stopping.set()
        self.join()


def window_rows(samples: list[Sample], every: int, capacity: int) -> list[str]:
    """One markdown row per ``every`` env steps: the last sample at or before each mark."""
    rows, previous = [], samples[0]
    for mark in range(every, samples[-1].env_steps + every, every):
        within = [s for s in samples if s.env_steps <= mark and s.env_steps > previous.env_steps]
        if not within:
            continue
        last = within[-1]
        peak = max(s.rss_mib for s in within)
        seconds = max(last.seconds - previous.seconds, 1e-9)
        rows.append(
            f"| {last.env_steps:,} | {last.seconds:,.0f} | {last.rss_mib:,.1f} | {peak:,.1f} | "
            f"{last.replay_size:,} / {capacity:,} | "
            f"{(last.env_steps - previous.env_steps) / seconds:,.0f} | "
            f"{(last.gradient_steps - previous.gradient_steps) / seconds:,.1f} |"
        )
        previous = last
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--algo", default="q", choices=ALGORITHMS)
    parser.add_argument("--preset", default="fast", choices=PRESETS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--report-every", type=int, default=100_000, help="env steps per row")
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    parser.add_argument("--results", default=None, help="markdown file to append the table to")
    args = parser.parse_args()

    config = make_config(
        args.preset, args.algo, seed=args.seed, total_steps=args.steps, progress_bar=False
    )
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="melody-rl-soak-") as scratch:
        run_dir = Path(args.out) if args.out else Path(scratch) / "run"
        trainer = Trainer(config, run_dir, log=lambda message: print(message, flush=True))
        sampler = MemorySampler(trainer, args.interval)
        sampler.sample()
        sampler.start()
        try:
            # The last window ends with training, before the summary's evaluation.
            summary = trainer.train(on_trained=sampler.sample)
        finally:
            sampler.stop()
        rss_after_summary = resident_mib()
    samples = sampler.samples  # the last one was taken when training ended
    capacity = config.replay_compositions
    full = next((s for s in samples if s.replay_size >= capacity), None)
    after_full = [s.rss_mib for s in samples if full and s.env_steps >= full.env_steps]
    train_seconds = summary["train_seconds"]
    lines = [
        f"Command: `python benchmarks/training_soak.py --steps {args.steps}` "
        f"(algo {args.algo}, preset {args.preset}, seed {args.seed}, {config.num_envs} "
        f"compositions at once, evaluation every {config.eval_every:,} and checkpoint every "
        f"{config.checkpoint_every:,} env steps). Machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__} "
        f"({config.torch_threads} thread); 1-min load average {load_before:.1f} before / "
        f"{os.getloadavg()[0]:.1f} after.",
        "",
        "| env steps | seconds | RSS (MiB) | peak RSS in window (MiB) | replay (compositions) "
        "| env steps/s (wall) | updates/s (wall) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *window_rows(samples, args.report_every, capacity),
        "",
        f"- {summary['global_step']:,} env steps and {summary['gradient_steps']:,} gradient "
        f"updates in {train_seconds:,.0f} s of training (evaluation and checkpoints excluded): "
        f"{summary['global_step'] / train_seconds:,.0f} env steps/s, "
        f"{summary['gradient_steps'] / train_seconds:,.1f} updates/s "
        f"({config.batch_size} compositions of {config.env.composition_length} steps each); "
        f"{summary['total_seconds']:,.0f} s in all.",
        f"- RSS: {samples[0].rss_mib:,.1f} MiB before training, peak "
        f"{max(s.rss_mib for s in samples):,.1f} MiB, {samples[-1].rss_mib:,.1f} MiB when "
        f"training ended, {rss_after_summary:,.1f} MiB after the final summary (1,000 "
        "compositions sampled and scored).",
    ]
    if full is not None:
        lines.append(
            f"- The replay was full ({capacity:,} compositions) from env step "
            f"{full.env_steps:,}; from then on RSS stayed between {min(after_full):,.1f} and "
            f"{max(after_full):,.1f} MiB ({max(after_full) - min(after_full):+,.1f} MiB over "
            f"{samples[-1].env_steps - full.env_steps:,} env steps, "
            f"{len(after_full)} samples)."
        )
    text = "\n".join(lines)
    print(text)
    if args.results:
        with open(args.results, "a") as results:
            results.write(f"\n## Training soak and throughput\n\n{text}\n")


if __name__ == "__main__":
    main()
