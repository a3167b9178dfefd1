"""``melody-rl baseline``: train a Stable-Baselines3 algorithm on the melody env.

PPO for 200k env steps on 64 compositions at once (a few minutes on 2 CPU cores)::

    melody-rl baseline --algo sb3-ppo --steps 200000 --out runs/ppo

The algorithms are ``sb3-dqn``, ``sb3-ppo``, ``sb3-a2c``, ``sb3-qrdqn``, ``sb3-recurrentppo``
and ``sb3-maskableppo`` (PPO that may only play notes of the key, or hold, or rest). Their
default hyperparameters for this env are in ``agents/baselines/algorithms.py``; override any
with ``--set NAME=VALUE`` (VALUE read as JSON, e.g. ``--set gamma=0.8 --set
policy_kwargs='{"net_arch": [64]}'``). ``--set env.NAME=VALUE`` sets an argument of the env
instead (a field of :class:`melody_env.EnvConfig`, e.g. ``--set env.reward_scaler=1``);
``--key`` and ``--reward-rnn`` are ``env.key`` and ``env.reward_rnn``.

The run folder gets ``model.zip``, ``tensorboard/``, ``curve.csv``, ``samples/*.mid``,
``summary.json`` and ``summary.md`` (the evaluation suite's Table-1 report of the trained
policy, sampled and greedy, beside the untuned Note RNN).
"""

from __future__ import annotations

import argparse
import sys

from agents.baselines.algorithms import ALGORITHMS
from agents.commands.arguments import add_progress_argument


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="train an SB3 algorithm (DQN, PPO, A2C, QR-DQN, RecurrentPPO, MaskablePPO)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--algo", choices=list(ALGORITHMS), required=True)
    parser.add_argument("--steps", type=int, default=200_000, help="training env steps")
    parser.add_argument("--out", required=True, help="run folder, e.g. runs/ppo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-envs", type=int, default=64, help="compositions at once")
    parser.add_argument("--key", default="C major", help="key of the compositions")
    parser.add_argument(
        "--reward-rnn", default=None, help="Note RNN .safetensors (default: shipped)"
    )
    parser.add_argument(
        "--eval-n", type=int, default=1000, help="compositions for the summary (0: none)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a hyperparameter of the algorithm, or env.NAME an argument of the env "
        "(VALUE as JSON, else a string)",
    )
    add_progress_argument(parser)
    parser.set_defaults(func=run_command)


def hyperparameter_overrides(items: list[str]) -> list[str]:
    """``--set NAME=VALUE`` items as overrides of ``BaselineConfig.hyperparams``, ``env.NAME``
    ones of ``BaselineConfig.env`` (:func:`agents.overrides.apply_overrides` reads them).

    >>> hyperparameter_overrides(["gamma=0.8", "typo", "env.key=G major"])
    ['hyperparams.gamma=0.8', 'typo', 'env.key=G major']
    """
    return [
        f"hyperparams.{item.strip()}"
        if "=" in item and not item.strip().startswith("env.")
        else item
        for item in items
    ]


def run_command(args: argparse.Namespace) -> int:
    from agents.baselines.config import BaselineConfig
    from agents.baselines.train import train_baseline
    from agents.overrides import apply_overrides
    from melody_env.envs.env_config import EnvConfig

    try:
        config = BaselineConfig(
            algo=args.algo,
            total_steps=args.steps,
            seed=args.seed,
            num_envs=args.num_envs,
            env=EnvConfig(key=args.key, reward_rnn=args.reward_rnn),
            eval_compositions=args.eval_n,
            progress_bar=args.progress,
        )
        config = apply_overrides(config, hyperparameter_overrides(args.set))
        train_baseline(config, args.out)
    except (FileNotFoundError, FileExistsError, ValueError, TypeError) as error:
        print(f"melody-rl baseline: error: {error}", file=sys.stderr)
        return 2
    return 0
