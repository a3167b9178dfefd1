"""Env-steps per second of the melody env, every way of running it, side by side.

A random policy (actions drawn in advance) drives: the single env through ``gymnasium.make``
(default wrappers); Gymnasium's ``SyncVectorEnv`` and ``AsyncVectorEnv`` of single envs; the
native :class:`~melody_env.MelodyCompositionVectorEnv` (also with ``copy=False`` at N = 256);
and, as the ceiling of the native env, the bare batched reward-RNN step (``NoteRNN.step`` at the
same batch size, writing into its step buffers as the native env does). At N = 256 the bare
step also runs with a copy of the observation batch (a new ``int8`` array) after each step, as
the native env makes with ``copy=True``: the least an env returning new observations of this
size adds to the RNN, so the part of the gap that no faster rule engine could close on the
machine at hand. A timed run plays whole episodes (autoreset steps included, as a trainer sees
them). All runs use a ``NoteRNN(seed=0)`` (random weights, the shipped architecture: one layer
of 100 units) and ``torch.set_num_threads(1)``: one env step is a small LSTM step, which
torch's thread pool slows down on a shared machine. The runners take turns, ``--repeats``
rounds of one timed run each, so that other jobs on a shared machine weigh on all of them
alike; the table gives the median over the rounds, the range, and the rate per CPU-second of
this process (which other jobs disturb less than wall time). Prints a markdown table and the
ratios the design aims at.

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
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import melody_env
from melody_env import MelodyCompositionVectorEnv
from melody_env.models import NoteRNN

ENV_ID = melody_env.ENV_ID
EPISODE = 32  # default composition length
SINGLE_BAR = 10_000  # env-steps/s of the single env through gymnasium.make
SYNC_RATIO_BAR = 20.0  # native / SyncVectorEnv at N = 256
BARE_RATIO_BAR = 0.5  # native / bare reward-RNN step at N = 256


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


def bare_rnn(
    rnn: NoteRNN, n: int, episodes: int, copy_observations: bool = False
) -> Callable[[], int]:
    """``NoteRNN.step`` on ``n`` tokens per step, into its step buffers (as the env runs it:
    the fastest batched forward of the package). With ``copy_observations``, each step also
    copies a buffer of ``n`` observations to a new array, as the native env with ``copy=True``
    does: the least such an env adds to the RNN (the copy's own time, and the RNN's working set
    it evicts from the caches)."""
    tokens = torch.from_numpy(np.random.default_rng(0).integers(0, 38, size=(EPISODE, n)))
    buffer = None
    if copy_observations:
        space = MelodyCompositionVectorEnv(1, reward_rnn=rnn).single_observation_space
        buffer = np.zeros((n, *space.shape), space.dtype)

    buffers = rnn.step_buffers(n)

    def run() -> int:
        state = rnn.initial_state(n)
        for _ in range(episodes):
            for step_tokens in tokens:
                _, state = rnn.step(step_tokens, state, buffers)
                if buffer is not None:
                    buffer.copy()
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
    parser.add_argument(
        "--default-threads",
        action="store_true",
        help="leave torch's thread settings as a user gets them (the env runs its reward RNN "
        "on one thread itself); default: torch.set_num_threads(1) for the whole process",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    if not args.default_threads:
        torch.set_num_threads(1)
    threads = f"{torch.get_num_threads()} threads" + (
        ", default settings" if args.default_threads else ", set_num_threads(1)"
    )
    repeats = 3 if args.quick else args.repeats
    native_sizes = (1, 16, 256) if args.quick else (1, 16, 64, 256, 1024)
    sync_sizes = (16,) if args.quick else (16, 256)
    async_sizes = (2,) if args.quick else (2, 16)
    rnn = NoteRNN(seed=0)
    quarter = args.env_steps // 4  # the slow runners get fewer steps per run

    runners: list[tuple[str, str, int, Callable[[], int]]] = []  # (kind, label, N, run)
    closers = []
    if "single" in only:
        runners.append(
            ("single", "single env (gym.make)", 1, single_env(rnn, episodes_for(1, quarter)))
        )
    for kind, mode, sizes in (("sync", "sync", sync_sizes), ("async", "async", async_sizes)):
        for n in sizes if kind in only else ():
            envs = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode=mode, reward_rnn=rnn)
            closers.append(envs)
            label = "SyncVectorEnv" if kind == "sync" else "AsyncVectorEnv"
            runners.append((kind, label, n, vector_env(envs, episodes_for(n, quarter))))
    for n in native_sizes if "native" in only else ():
        envs = gym.make_vec(ENV_ID, num_envs=n, reward_rnn=rnn)
        closers.append(envs)
        runners.append(
            ("native", "native vector env", n, vector_env(envs, episodes_for(n, args.env_steps)))
        )
    if "native" in only:  # the opt-in buffer reuse (copy=False), at the size of the bars
        envs = gym.make_vec(ENV_ID, num_envs=256, copy=False, reward_rnn=rnn)
        closers.append(envs)
        label = "native, copy=False"
        runners.append(
            ("native-nocopy", label, 256, vector_env(envs, episodes_for(256, args.env_steps)))
        )
    for n in native_sizes if "bare" in only else ():
        runners.append(
            ("bare", "bare NoteRNN.step", n, bare_rnn(rnn, n, episodes_for(n, args.env_steps)))
        )
    if "bare" in only:  # what copy=True must add to it, at the size of the bars
        run = bare_rnn(rnn, 256, episodes_for(256, args.env_steps), copy_observations=True)
        runners.append(("bare-copy", "bare step + obs copy", 256, run))

    # Rounds of every runner in turn, so that other jobs on the machine weigh on all of them;
    # within a round the runners of one N run back to back, so that each ratio below compares
    # runs made moments apart (the VM's speed drifts over minutes).
    kind_order = ["single", "sync", "async", "native", "native-nocopy", "bare", "bare-copy"]
    order = sorted(
        range(len(runners)), key=lambda i: (runners[i][2], kind_order.index(runners[i][0]))
    )
    load_before = os.getloadavg()[0]
    wall = defaultdict(list)
    cpu = defaultdict(list)
    for round_ in range(repeats):
        for index in order:
            _, label, n, run = runners[index]
            start, cpu_start = time.perf_counter(), time.process_time()
            steps = run()
            wall[index].append(steps / (time.perf_counter() - start))
            cpu[index].append(steps / max(time.process_time() - cpu_start, 1e-9))
            print(
                f"  round {round_ + 1}: {label:<22} N={n:<5} {wall[index][-1]:>10,.0f}",
                file=sys.stderr,
            )
    load_after = os.getloadavg()[0]
    for envs in closers:
        envs.close()

    rates = {(kind, n): float(np.median(wall[i])) for i, (kind, _, n, _) in enumerate(runners)}
    rounds = {(kind, n): np.array(wall[i]) for i, (kind, _, n, _) in enumerate(runners)}
    print(f"\n{datetime.date.today().isoformat()}, {machine()}")
    print(
        f"torch {torch.__version__} ({threads}), numpy {np.__version__}, gymnasium "
        f"{gym.__version__}; medians of {repeats} rounds; 1-min load average {load_before:.1f} "
        f"before / {load_after:.1f} after"
    )
    print("\n| runner | N | env-steps/s (median) | min - max | us per call | per CPU-second |")
    print("|---|---:|---:|---:|---:|---:|")
    for index, (kind, label, n, _) in enumerate(runners):
        median = rates[kind, n]
        cpu_rate = "n/a (workers)" if kind == "async" else f"{np.median(cpu[index]):,.0f}"
        print(
            f"| {label} | {n} | {median:,.0f} | {min(wall[index]):,.0f} - {max(wall[index]):,.0f} "
            f"| {n / median * 1e6:,.0f} | {cpu_rate} |"
        )

    def ratio(top: tuple[str, int], bottom: tuple[str, int], spec: str) -> str:
        """The median over rounds of the ratio within each round, and its range."""
        per_round = rounds[top] / rounds[bottom]
        low, high = format(per_round.min(), spec), format(per_round.max(), spec)
        return f"{format(float(np.median(per_round)), spec)} (rounds: {low} - {high})"

    print("\nRatios: the median over the rounds of the ratio measured within each round.\n")
    if ("single", 1) in rates:
        single = rates["single", 1]
        print(f"- single env through gym.make: {single:,.0f} env-steps/s (bar {SINGLE_BAR:,})")
        if ("bare", 1) in rates:  # the machine's speed, for comparing runs on other machines
            text = ratio(("single", 1), ("bare", 1), ".0%")
            print(f"- single env / bare reward-RNN step at N=1: {text}")
    for n in sync_sizes:
        if ("sync", n) in rates and ("native", n) in rates:
            text = ratio(("native", n), ("sync", n), ".1f")
            print(f"- native / SyncVectorEnv at N={n}: {text.replace(' ', 'x ', 1)}", end="")
            print(f" (bar {SYNC_RATIO_BAR:.0f}x)" if n == 256 else "")
    for n in native_sizes:
        if ("bare", n) in rates and ("native", n) in rates:
            text = ratio(("native", n), ("bare", n), ".0%")
            print(f"- native / bare reward-RNN step at N={n}: {text}", end="")
            print(f" (bar {BARE_RATIO_BAR:.0%})" if n == 256 else "")
    if ("bare-copy", 256) in rates and ("bare", 256) in rates:
        text = ratio(("bare-copy", 256), ("bare", 256), ".0%")
        print(
            f"- bare step + obs copy / bare reward-RNN step at N=256: {text} (the most a "
            "copy=True env can reach on this machine)"
        )
        text = ratio(("native", 256), ("bare-copy", 256), ".0%")
        print(f"- native / (bare step + obs copy) at N=256: {text}")
    if ("native-nocopy", 256) in rates and ("sync", 256) in rates:
        text = ratio(("native-nocopy", 256), ("sync", 256), ".1f")
        print(f"- native with copy=False / SyncVectorEnv at N=256: {text.replace(' ', 'x ', 1)}")
    if ("native-nocopy", 256) in rates and ("bare", 256) in rates:
        text = ratio(("native-nocopy", 256), ("bare", 256), ".0%")
        print(f"- native with copy=False / bare reward-RNN step at N=256: {text}")


if __name__ == "__main__":
    main()
