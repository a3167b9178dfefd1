"""Throughput of the evaluation suite: sample and score ``--n`` compositions (the paper: 100,000).

Times :func:`melody_env.evaluation.evaluate` on the untuned Note RNN policy (sampling from the
env's reward RNN at temperature 1, all statistics of the paper's Table 1 and more), then the 95%
bootstrap intervals separately. Prints compositions per second; with ``--results`` appends a
section to a markdown file (e.g. ``benchmarks/RESULTS.md``).

    python benchmarks/evaluation_throughput.py --n 100000
    python benchmarks/evaluation_throughput.py --n 100000 --results benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from melody_env.evaluation import NoteRNNPolicy, RandomPolicy, evaluate
from melody_env.evaluation.stats import summarize
from melody_env.models import DEFAULT_CHECKPOINT, NoteRNN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--engine", default="state", choices=["auto", "state", "vector"])
    parser.add_argument("--policy", default="note-rnn", choices=["note-rnn", "random"])
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default=None, help="markdown file to append the result to")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    if DEFAULT_CHECKPOINT.is_file():
        reward_rnn, which = NoteRNN.load(), f"shipped checkpoint {DEFAULT_CHECKPOINT.name}"
    else:
        reward_rnn, which = NoteRNN(seed=0), "NoteRNN(seed=0) (no shipped checkpoint yet)"
    policy = NoteRNNPolicy() if args.policy == "note-rnn" else RandomPolicy()
    start = time.perf_counter()
    result = evaluate(
        policy,
        n=args.n,
        seed=args.seed,
        reward_rnn=reward_rnn,
        batch_size=args.batch_size,
        engine=args.engine,
        n_bootstrap=0,
    )
    sampling = time.perf_counter() - start
    start = time.perf_counter()
    summarize(result.table, n_bootstrap=args.bootstrap, seed=args.seed)
    bootstrap = time.perf_counter() - start

    rate = args.n / sampling
    lines = [
        f"policy: {args.policy} ({which}), engine {result.config['engine']}, "
        f"batch {args.batch_size}",
        f"sample + score {args.n:,} compositions: {sampling:.1f} s = {rate:,.0f} compositions/s",
        f"bootstrap 95% intervals ({args.bootstrap} resamples, all statistics): {bootstrap:.1f} s",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), 1-min load average "
        f"{load_before:.1f} before / {os.getloadavg()[0]:.1f} after (other jobs share the CPUs)",
    ]
    print("\n".join(lines))
    if args.results:
        section = "\n## Evaluation throughput\n\n" + "".join(f"- {line}\n" for line in lines)
        section += (
            f"- command: `python benchmarks/evaluation_throughput.py --n {args.n} "
            f"--batch-size {args.batch_size} --engine {args.engine}`\n"
        )
        with open(Path(args.results), "a", encoding="utf-8") as handle:
            handle.write(section)


if __name__ == "__main__":
    main()
