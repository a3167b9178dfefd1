"""``melody-rl train``: tune the Note RNN with RL (RLOO by default, or the RL Tuner's DQNs).

The default, RLOO with an exact KL to the Note RNN (:mod:`agents.rloo`; about 30 s on a quiet
core; any field of :class:`agents.rloo.config.RLOOConfig` with ``--set FIELD=VALUE``)::

    melody-rl train --out runs/rloo

The RL Tuner's Q-learning (``fast`` preset, 200k steps, a few minutes on 2 CPU cores)::

    melody-rl train --algo q --out runs/q

The paper's setting (1M steps, one composition at a time; hours)::

    melody-rl train --algo q --preset paper --out runs/q_paper

A run killed at any moment continues from its last checkpoint, exactly::

    melody-rl train --out runs/q --resume

Compositions are in C major unless ``--key`` names another of the 24 keys, or ``any`` for a key
drawn from the 24 for each composition (seeded; the agent reads it from the observation)::

    melody-rl train --algo q --key any --out runs/q_any

The run folder gets ``checkpoints/``, ``tensorboard/``, ``samples/*.mid``, ``summary.json`` and
``summary.md``. Any field of :class:`agents.rl_tuner.config.TrainConfig` can be set with
``--set FIELD=VALUE`` (e.g. ``--set learning_rate=3e-3 --set exploration=boltzmann``), the env's
with ``--set env.FIELD=VALUE`` (e.g. ``--set env.reward_weights.tonic=0``).

The RL Tuner's runs go through :class:`agents.RLTuner` (:func:`agents.tuner.train_run`), RLOO's
through :class:`agents.rloo.RLOO`: this command only builds the config.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from agents.rl_tuner.config import ALGORITHMS, PRESETS

_RESUME_FIXED = (
    "algo",
    "preset",
    "seed",
    "num_envs",
    "eval_every",
    "checkpoint_every",
)


def _music_text(stats: dict) -> str:
    """The summary's KL and music rows, where the summary has them."""
    rows = (
        ("kl", "KL {:.2f}/step"),
        ("distinct_openings", "{:,.0f} distinct openings"),
        ("interval_overlap", "interval overlap {:.2f}"),
    )
    return "".join(f", {text.format(stats[key])}" for key, text in rows if key in stats)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="tune the Note RNN with RL (q, psi, g, pure_rl or rloo)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--algo",
        choices=(*ALGORITHMS, "rloo"),
        default=None,
        help="default: rloo (q with --preset)",
    )
    parser.add_argument("--preset", choices=PRESETS, default=None, help="default: fast")
    parser.add_argument("--steps", type=int, default=None, help="training transitions")
    parser.add_argument("--out", required=True, help="run folder, e.g. runs/q")
    parser.add_argument("--seed", type=int, default=None, help="default: 0")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--num-envs", type=int, default=None, help="compositions at once")
    parser.add_argument("--eval-every", type=int, default=None, help="transitions; 0 = never")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="transitions")
    parser.add_argument(
        "--reward-rnn", default=None, help="Note RNN .safetensors (default: shipped)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any TrainConfig field (VALUE is read as JSON, else as a string)",
    )
    parser.add_argument(
        "--key",
        default=None,
        help="key of the compositions, e.g. 'F# minor', or 'any' (default: C major)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bar with ETA (--no-progress for plain logs)",
    )
    parser.set_defaults(func=run_command)


def key_option(key: str | None) -> str | None:
    """``--key`` as a canonical key name (``"F# minor"``) or ``"any"``; ``None`` if not given.

    Raises:
        ValueError: not one of the 24 keys or ``any``.
    """
    from melody_env.envs.priming import ANY_KEY, check_key

    if key is None:
        return None
    checked = check_key(key)
    return ANY_KEY if checked == ANY_KEY else checked.name


def build_config(args: argparse.Namespace):
    """The run's config from the preset, the flags and ``--set`` overrides."""
    from agents.overrides import apply_overrides
    from agents.rl_tuner import checkpoint as ckpt
    from agents.rl_tuner.config import make_config

    if args.resume:
        try:
            config = ckpt.load_checkpoint(args.out).config
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"cannot resume: {error}. Start a new run without --resume."
            ) from error
        for name in _RESUME_FIXED:
            given = getattr(args, name)
            if given is not None and given != getattr(config, name):
                raise ValueError(
                    f"--{name.replace('_', '-')} {given} differs from the resumed run's "
                    f"{getattr(config, name)!r}; a resumed run keeps its config (only --steps "
                    "may change)"
                )
        if args.set:
            raise ValueError("--set cannot change a resumed run's config")
        key = key_option(getattr(args, "key", None))
        if key is not None and key != key_option(config.env.key):
            raise ValueError(
                f"--key {key} differs from the resumed run's {config.env.key!r}; a resumed run "
                "keeps its config (only --steps may change)"
            )
        if args.reward_rnn is not None and args.reward_rnn != config.env.reward_rnn:
            raise ValueError(
                f"--reward-rnn {args.reward_rnn} differs from the resumed run's "
                f"{config.env.reward_rnn!r}; a resumed run keeps its config (only --steps "
                "may change)"
            )
        # Only the budget and the progress display follow the resuming command line.
        steps = config.total_steps if args.steps is None else args.steps
        return replace(config, total_steps=steps, progress_bar=args.progress)
    overrides = {"progress_bar": args.progress}
    for name, value in (
        ("total_steps", args.steps),
        ("seed", args.seed),
        ("num_envs", args.num_envs),
        ("eval_every", args.eval_every),
        ("checkpoint_every", args.checkpoint_every),
    ):
        if value is not None:
            overrides[name] = value
    env = {"key": key_option(getattr(args, "key", None)), "reward_rnn": args.reward_rnn}
    env = {name: value for name, value in env.items() if value is not None}
    if env:
        overrides["env"] = env
    config = make_config(args.preset or "fast", args.algo or "q", **overrides)
    return apply_overrides(config, args.set)


def run_command(args: argparse.Namespace) -> int:
    from agents.tuner import train_run

    try:
        from agents.rloo.command import is_rloo_run

        if is_rloo_run(args):
            from agents.rloo.command import run

            summary = run(args)
        else:
            summary = train_run(build_config(args), args.out, resume=args.resume)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"melody-rl train: error: {error}", file=sys.stderr)
        return 2
    except FloatingPointError as error:
        print(f"melody-rl train: stopped: {error}", file=sys.stderr)
        return 1
    if "sampled" in summary:
        stats = summary["sampled"]
        print(
            f"{args.out}: r_MT/step {stats['music_theory']:.2f}, log p {stats['log_prob']:.2f}, "
            f"not in key {100 * stats['not_in_key']:.2f}%, excessively repeated "
            f"{100 * stats['excessively_repeated']:.2f}%, starting with tonic "
            f"{100 * stats['starts_with_tonic']:.1f}%{_music_text(stats)} "
            f"(see {args.out}/summary.md)"
        )
    return 0
