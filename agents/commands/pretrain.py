"""``melody-rl pretrain``: train the Note RNN on the folk-tune corpus and report n-gram baselines.

Reproduce the shipped checkpoint (about 15 minutes of training on one CPU thread, after a
7-14 minute first extraction of the corpus into the cache; see its MODEL_CARD.md)::

    melody-rl pretrain --seed 0 --threads 1 --out runs/note_rnn --ship

The same seed and thread count give the same weights. Two threads are faster on an idle machine
but can be several times slower on a busy one (the shipped run shared its machine).

Train on the public-domain collections only::

    melody-rl pretrain --collections oneills1850 ryansMammoth airdsAirs miscFolk
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from agents.commands.arguments import add_progress_argument
from melody_env.data.corpus import COLLECTIONS


def _none_or(value: str) -> str | None:
    return None if value.lower() == "none" else value


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="train the Note RNN on music21's folk corpus; report LSTM and n-gram metrics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--collections",
        nargs="+",
        default=list(COLLECTIONS),
        metavar="NAME",
        help=f"music21 collections (default: all of {', '.join(COLLECTIONS)})",
    )
    data.add_argument(
        "--held-out",
        type=_none_or,
        default="airdsAirs",
        help="collection used only for evaluation, or 'none' (default: airdsAirs)",
    )
    data.add_argument(
        "--limit", type=int, default=None, help="keep only the first N tunes of each collection"
    )
    data.add_argument(
        "--cache-dir",
        default=None,
        help="corpus cache (default: $MELODY_RL_CACHE/corpus or ~/.cache/melody-rl/corpus)",
    )
    data.add_argument("--processes", type=int, default=2, help="extraction processes")
    model = parser.add_argument_group("model and optimisation")
    model.add_argument("--hidden-size", type=int, default=100)
    model.add_argument("--layers", type=int, default=1)
    model.add_argument("--window", type=int, default=128, help="truncated-BPTT window (steps)")
    model.add_argument("--batch-size", type=int, default=32)
    model.add_argument("--epochs", type=int, default=20)
    model.add_argument("--max-steps", type=int, default=None, help="stop after N steps instead")
    model.add_argument("--lr", type=float, default=3e-3)
    model.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine")
    model.add_argument("--warmup-steps", type=int, default=200)
    model.add_argument("--grad-clip", type=float, default=5.0)
    model.add_argument("--weight-decay", type=float, default=0.0)
    model.add_argument("--seed", type=int, default=0)
    model.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    run = parser.add_argument_group("run")
    run.add_argument(
        "--ngram-max-order",
        type=int,
        default=9,
        help="fit Kneser-Ney baselines of orders 1..N (0: none)",
    )
    run.add_argument("--out", default="runs/pretrain", help="run folder")
    run.add_argument("--no-tensorboard", action="store_true", help="do not log to TensorBoard")
    add_progress_argument(run)
    run.add_argument(
        "--ship",
        action="store_true",
        help="also copy the checkpoint, report and a model card into the package",
    )
    parser.set_defaults(func=run_command)


UPPER_BOUNDS = {
    "window": 100_000,
    "batch_size": 65_536,
    "threads": 1024,
    "processes": 256,
    "epochs": 1_000_000,
    "max_steps": 10**9,
    "warmup_steps": 10**9,
    "limit": 10**9,
    "ngram_max_order": 32,
}
"""Largest value of each size argument, checked before any data is read or memory allocated
(the model's own sizes are bounded by :class:`~melody_env.models.note_rnn.NoteRNNConfig`)."""


def check_sizes(args: argparse.Namespace) -> None:
    """Refuse a size argument above :data:`UPPER_BOUNDS`, or a non-finite rate."""
    import math

    for name, most in UPPER_BOUNDS.items():
        value = getattr(args, name, None)
        if value is not None and value > most:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} must be at most {most:,}, got {value:,}")
    for name in ("lr", "grad_clip", "weight_decay"):
        value = getattr(args, name)
        if not math.isfinite(value):
            raise ValueError(f"--{name.replace('_', '-')} must be finite, got {value}")
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {args.seed}")


def config_from_args(args: argparse.Namespace):
    """The :class:`PretrainConfig` an argument namespace describes."""
    from melody_env.models.note_rnn import NoteRNNConfig
    from melody_env.models.training import PretrainConfig

    check_sizes(args)
    NoteRNNConfig(hidden_size=args.hidden_size, num_layers=args.layers)  # bounds, before data
    return PretrainConfig(
        collections=tuple(args.collections),
        held_out=args.held_out,
        limit=args.limit,
        hidden_size=args.hidden_size,
        num_layers=args.layers,
        window=args.window,
        batch_size=args.batch_size,
        epochs=args.epochs,
        max_steps=args.max_steps,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        warmup_steps=args.warmup_steps,
        grad_clip=args.grad_clip,
        weight_decay=args.weight_decay,
        seed=args.seed,
        threads=args.threads,
        processes=args.processes,
        ngram_orders=tuple(range(1, args.ngram_max_order + 1)),
        tensorboard=not args.no_tensorboard,
        cache_dir=args.cache_dir,
        out=args.out,
    )


def canonical_command(config, ship: bool = False) -> str:
    """A full, explicit command line that reruns ``config`` (every training option spelled out)."""
    parts = [
        "melody-rl",
        "pretrain",
        "--collections",
        *config.collections,
        "--held-out",
        str(config.held_out).replace("None", "none"),
    ]
    if config.limit is not None:
        parts += ["--limit", str(config.limit)]
    parts += [
        "--hidden-size",
        str(config.hidden_size),
        "--layers",
        str(config.num_layers),
        "--window",
        str(config.window),
        "--batch-size",
        str(config.batch_size),
        "--epochs",
        str(config.epochs),
    ]
    if config.max_steps is not None:
        parts += ["--max-steps", str(config.max_steps)]
    parts += [
        "--lr",
        repr(config.lr),
        "--lr-schedule",
        config.lr_schedule,
        "--warmup-steps",
        str(config.warmup_steps),
        "--grad-clip",
        repr(config.grad_clip),
        "--weight-decay",
        repr(config.weight_decay),
        "--seed",
        str(config.seed),
        "--threads",
        str(config.threads),
        "--ngram-max-order",
        str(max(config.ngram_orders, default=0)),
        "--out",
        config.out,
    ]
    if not config.tensorboard:
        parts.append("--no-tensorboard")
    if ship:
        parts.append("--ship")
    return shlex.join(parts)


def run_command(args: argparse.Namespace) -> int:
    from melody_env.models.pretrain import run_pretraining, ship

    config = config_from_args(args)
    command = canonical_command(config, ship=args.ship)
    report = run_pretraining(config, command=command, progress=args.progress)
    print((Path(config.out) / "report.md").read_text())
    if args.ship:
        print(f"shipped {ship(config.out)}")
    return 0 if report["results"] else 1
