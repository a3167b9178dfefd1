"""``melody-rl benchmark``: RL algorithms x seeds at one budget of env steps, in parallel.

The full benchmark (several CPU hours on 2 cores)::

    melody-rl benchmark \\
        --algos q,psi,g,pure_rl,sb3-dqn,sb3-ppo,sb3-a2c,sb3-qrdqn,sb3-recurrentppo \\
        --seeds 0,1,2 --steps 200000 --out runs/bench --jobs 2

The RL Tuner's four algorithms (``q``, ``psi``, ``g``, ``pure_rl``) train with its ``fast``
preset, or ``--preset paper``. Each run trains in its own process (``RUN = OUT/ALGO_seedS``; a
finished run is not run again, so the same command continues a killed benchmark), then
composes ``--eval-n`` compositions scored by the evaluation suite, as do the untuned Note RNN
and a random policy. ``OUT`` gets ``results.md`` / ``results.json`` (mean ± std over seeds of
the Table-1 statistics, r_MT, log p, the env reward, the training wall time and env steps per
second) and ``learning_curves.png``.
``--results benchmarks/RESULTS.md`` also writes the table into that file's "RL algorithms"
section.
"""

from __future__ import annotations

import argparse
import sys

from agents.commands.arguments import add_progress_argument, comma_names, comma_seeds


def add_parser(subparsers) -> None:
    from agents.baselines.benchmark import DEFAULT_ALGOS

    parser = subparsers.add_parser(
        "benchmark",
        help="train and compare RL algorithms (RL Tuner and SB3) at one budget",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--algos", type=comma_names, default=DEFAULT_ALGOS, help="comma-separated (default: all 9)"
    )
    parser.add_argument("--seeds", type=comma_seeds, default=(0, 1, 2), help="e.g. 0,1,2")
    parser.add_argument("--steps", type=int, default=200_000, help="env steps per run")
    parser.add_argument("--out", required=True, help="output folder, e.g. runs/bench")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--num-envs", type=int, default=64, help="compositions at once")
    parser.add_argument("--eval-n", type=int, default=1000, help="compositions per evaluation")
    parser.add_argument("--greedy", action="store_true", help="evaluate greedy actions")
    parser.add_argument("--key", default="C major")
    parser.add_argument(
        "--preset",
        default="fast",
        help="the RL Tuner runs' preset: fast (default) or paper (with --num-envs 1: the paper's)",
    )
    parser.add_argument(
        "--reward-rnn", default=None, help="Note RNN .safetensors (default: shipped)"
    )
    parser.add_argument(
        "--results", default=None, help="also write the table into this file's section"
    )
    parser.add_argument("--note", default="", help="a sentence to print beside the table")
    add_progress_argument(parser)
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from agents.baselines.benchmark import (
        BenchmarkConfig,
        command_line,
        results_markdown,
        run_benchmark,
        update_results_section,
    )

    try:
        config = BenchmarkConfig(
            algos=args.algos,
            seeds=args.seeds,
            total_steps=args.steps,
            jobs=args.jobs,
            num_envs=args.num_envs,
            eval_compositions=args.eval_n,
            deterministic=args.greedy,
            key=args.key,
            reward_rnn=args.reward_rnn,
            preset=args.preset,
            command=command_line(),
            note=args.note,
        )
        results = run_benchmark(config, args.out, progress=args.progress)
    except (FileNotFoundError, ValueError) as error:
        print(f"melody-rl benchmark: error: {error}", file=sys.stderr)
        return 2
    table = results_markdown(results, None)
    print(table)
    if args.results:
        update_results_section(args.results, results_markdown(results, None))
    failed = any("error" in run for runs in results["runs"].values() for run in runs)
    return 1 if failed else 0
