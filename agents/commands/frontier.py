"""``melody-rl frontier``: sweep each algorithm's pull toward the prior and plot reward vs KL.

The full sweep (every algorithm x its 4 default values x 3 seeds, each at its default budget
(``melody-rl train``'s, 200,000 env steps for SB3 PPO); a few CPU hours on 2 cores)::

    melody-rl frontier --out runs/frontier --jobs 2

A smaller one, two algorithms, chosen values::

    melody-rl frontier --algos q,rloo --values q=0.5,1,2,4 --values rloo=0.03,0.1,0.3,1 \\
        --seeds 0,1,2 --out runs/frontier_q_rloo

Knobs: ``q``, ``psi``, ``g``, ``pure_rl``, ``sb3-ppo``: the env's reward scaler (larger = LESS
pull toward the prior; the paper's is 2); ``rloo``: its KL weight ``kl_coef`` (larger = more
pull). Each point trains in its own process (``OUT/ALGO/KNOB=VALUE/seedS``; a finished point is
not run again, so the same command continues a killed sweep) and is evaluated on ``--eval-n``
compositions by the evaluation suite (KL to the Note RNN, the 5-gram judge, diversity). ``OUT``
gets ``frontier.json``, ``frontier.csv``, ``frontier.md`` (Pareto-optimal configurations marked)
and ``frontier.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agents.commands.arguments import add_progress_argument, comma_names, comma_seeds


def _values(text: str) -> tuple[str, tuple[float, ...]]:
    algo, separator, numbers = text.partition("=")
    try:
        values = tuple(float(v) for v in comma_names(numbers))
    except ValueError:
        values = ()
    if not separator or not algo.strip() or not values:
        raise argparse.ArgumentTypeError(f"--values expects ALGO=V1,V2,..., got {text!r}")
    return algo.strip(), values


def add_parser(subparsers) -> None:
    from agents.baselines.frontier import DEFAULT_ALGOS

    parser = subparsers.add_parser(
        "frontier",
        help="sweep the pull toward the prior per algorithm; plot r_MT vs KL",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--algos",
        type=comma_names,
        default=DEFAULT_ALGOS,
        help=f"comma-separated (default: {','.join(DEFAULT_ALGOS)})",
    )
    parser.add_argument(
        "--values",
        type=_values,
        action="append",
        default=[],
        metavar="ALGO=V1,V2,...",
        help="values of ALGO's knob (repeatable; default: the algorithm's own)",
    )
    parser.add_argument("--seeds", type=comma_seeds, default=(0, 1, 2), help="e.g. 0,1,2")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="env steps per run (default: each algorithm's own default budget)",
    )
    parser.add_argument("--eval-n", type=int, default=2000, help="compositions per evaluation")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--key", default="C major")
    parser.add_argument("--out", required=True, help="output folder, e.g. runs/frontier")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the outputs from every point already finished in --out",
    )
    add_progress_argument(parser)
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from agents.baselines.frontier import FrontierConfig, run_frontier

    try:
        config = FrontierConfig(
            algos=args.algos,
            seeds=args.seeds,
            total_steps=args.steps,
            eval_n=args.eval_n,
            jobs=args.jobs,
            key=args.key,
            values=dict(args.values),
        )
        results = run_frontier(
            config, args.out, report_only=args.report_only, progress=args.progress
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"melody-rl frontier: error: {error}", file=sys.stderr)
        return 2
    print((Path(args.out) / "frontier.md").read_text())
    return 1 if any("error" in point for point in results["points"]) else 0
