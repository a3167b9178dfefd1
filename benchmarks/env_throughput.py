"""Env-steps per second of the melody env, every way of running it, side by side.

A random policy (actions drawn in advance) drives: the single env through ``gymnasium.make``
(default wrappers); Gymnasium's ``SyncVectorEnv`` and ``AsyncVectorEnv`` of single envs; the
native :class:`~melody_env.MelodyCompositionVectorEnv`; and, as the ceiling of the native env,
the bare batched reward-RNN step (``NoteRNN.step`` at the same batch size). Each row is the
median of ``--repeats`` timed runs of whole episodes (autoresets included). All runs use a
``NoteRNN(seed=0)`` (random weights, the shipped architecture: one layer of 100 units) and
``torch.set_num_threads(1)``: one env step is a small LSTM step, which torch's thread pool
slows down on a shared machine. Prints a markdown table and the ratios the design aims at.

    python benchmarks/env_throughput.py              # the full table (a few minutes on 2 cores)
    python benchmarks/env_throughput.py --quick      # fewer repeats and sizes, for a smoke test
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import melody_env
from melody_env.models import NoteRNN

ENV_ID = melody_env.ENV_ID
EPISODE = 32  # default composition length
SINGLE_BAR = 10_000  # env-steps/s of the single env through gymnasium.make
SYNC_RATIO_BAR = 20.0  # native / SyncVectorEnv at N = 256
BARE_RATIO_BAR = 0.5  # native / bare reward-RNN step at N = 256


def median_rate(run: Callable[[], int], repeats: int) -> tuple[float, float, float, float]:
    """Median, min and max of ``steps / wall seconds`` over ``repeats`` calls of ``run``, and
    the median of ``steps / CPU seconds of this process`` (less sensitive to other jobs)."""
    rates, cpu_rates = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        steps = run()
        rates.append(steps / (time.perf_counter() - start))
        cpu_rates.append(steps / max(time.process_time() - cpu_start, 1e-9))
    return float(np.median(rates)), min(rates), max(rates), float(np.median(cpu_rates))


def single_env(rnn: NoteRNN, episodes: int) -> Callable[[], int]:
    env = gym.make(ENV_ID, reward_rnn=rnn)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 38, size=episodes * EPISODE).tolist()
    env.step(actions[0])  # warm up

    def run() -> int:
        env.reset()
        for action in actions:
            _, _, terminated, _, _ = env.step(action)
            if terminated:
                env.reset()
        return len(actions)

    return run


def vector_env(envs: gym.vector.VectorEnv, episodes: int) -> Callable[[], int]:
    n = envs.num_envs
    envs.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 38, size=(episodes * (EPISODE + 1), n))
    envs.step(actions[0])  # warm up

    def run() -> int:
        for step_actions in actions:  # autoreset steps included, as a trainer sees them
            envs.step(step_actions)
        return actions.size

    return run


def bare_rnn(rnn: NoteRNN, n: int, episodes: int) -> Callable[[], int]:
    tokens = torch.from_numpy(np.random.default_rng(0).integers(0, 38, size=(EPISODE, n)))

    def run() -> int:
        state = rnn.initial_state(n)
        for _ in range(episodes):
            for step_tokens in tokens:
                _, state = rnn.step(step_tokens, state)
        return episodes * tokens.numel()

    return run


def episodes_for(n: int, env_steps: int) -> int:
    """Episodes per timed run so that a run makes about ``env_steps`` env-steps."""
    return max(1, round(env_steps / (n * EPISODE)))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if "model name" in line]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--env-steps", type=int, default=8192, help="env-steps per timed run")
    parser.add_argument("--quick", action="store_true", help="3 repeats, fewer sizes")
    parser.add_argument(
        "--only",
        default="single,sync,async,native,bare",
        help="comma-separated runners to time (default: all)",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    torch.set_num_threads(1)
    repeats = 3 if args.quick else args.repeats
    native_sizes = (1, 16, 256) if args.quick else (1, 16, 64, 256, 1024)
    sync_sizes = (16,) if args.quick else (16, 256)
    async_sizes = (2,) if args.quick else (2, 16)
    rnn = NoteRNN(seed=0)
    load_before = os.getloadavg()[0]
    rows: list[tuple[str, int, tuple[float, float, float, float]]] = []

    def record(name: str, n: int, run: Callable[[], int]) -> float:
        rate = median_rate(run, repeats)
        rows.append((name, n, rate))
        print(f"  {name:<26} N={n:<5} {rate[0]:>12,.0f} env-steps/s", file=sys.stderr)
        return rate[0]

    single = record(
        "single env (gym.make)", 1, single_env(rnn, episodes_for(1, args.env_steps // 4))
    )
    sync, native, bare = {}, {}, {}
    for n in sync_sizes:
        envs = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="sync", reward_rnn=rnn)
        sync[n] = record("SyncVectorEnv", n, vector_env(envs, episodes_for(n, args.env_steps // 4)))
        envs.close()
    for n in async_sizes if "async" in only else ():
        envs = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="async", reward_rnn=rnn)
        record("AsyncVectorEnv", n, vector_env(envs, episodes_for(n, args.env_steps // 4)))
        envs.close()
    for n in native_sizes if "native" in only else ():
        envs = gym.make_vec(ENV_ID, num_envs=n, reward_rnn=rnn)
        native[n] = record(
            "native vector env", n, vector_env(envs, episodes_for(n, args.env_steps))
        )
        envs.close()
    for n in native_sizes if "bare" in only else ():
        bare[n] = record("bare NoteRNN.step", n, bare_rnn(rnn, n, episodes_for(n, args.env_steps)))

    print(f"\n{datetime.date.today().isoformat()}, {machine()}")
    print(
        f"torch {torch.__version__} (set_num_threads(1)), numpy {np.__version__}, gymnasium "
        f"{gym.__version__}; medians of {repeats} runs; 1-min load average {load_before:.1f} "
        f"before / {os.getloadavg()[0]:.1f} after"
    )
    print("\n| runner | N | env-steps/s (median) | min - max | us per call | per CPU-second |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, n, (median, low, high, cpu) in rows:
        per_call = n / median * 1e6
        cpu_rate = "n/a (workers)" if name.startswith("Async") else f"{cpu:,.0f}"
        print(
            f"| {name} | {n} | {median:,.0f} | {low:,.0f} - {high:,.0f} | {per_call:,.0f} "
            f"| {cpu_rate} |"
        )
    print()
    if single is not None:
        print(f"- single env through gym.make: {single:,.0f} env-steps/s (bar {SINGLE_BAR:,})")
    largest_sync = max(sync, default=None)
    if largest_sync in native:
        ratio = native[largest_sync] / sync[largest_sync]
        print(f"- native / SyncVectorEnv at N={largest_sync}: {ratio:.1f}x", end="")
        print(f" (bar {SYNC_RATIO_BAR:.0f}x)")
    for n in sorted(set(native) & set(bare)):
        print(f"- native / bare reward-RNN step at N={n}: {native[n] / bare[n]:.0%}", end="")
        print(f" (bar {BARE_RATIO_BAR:.0%})" if n == 256 else "")


if __name__ == "__main__":
    main()
