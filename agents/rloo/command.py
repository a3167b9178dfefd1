"""``melody-rl train --algo rloo``: the flags of ``melody-rl train`` mapped onto
:class:`~agents.rloo.config.RLOOConfig`.

``--steps`` sets ``total_steps``, ``--seed`` and ``--checkpoint-every`` (transitions) their
fields, ``--reward-rnn`` and ``--key`` (one of the 24 keys, or ``any``) ``env.reward_rnn`` and
``env.key``, ``--set FIELD=VALUE`` any field, ``env.*`` the env's (``--set env.reward_scaler=1``;
:func:`agents.overrides.apply_overrides`: VALUE read as JSON, else as a string, typed by the
field; the flags win over ``--set``). ``--preset``, ``--num-envs`` and
``--eval-every`` are the Q agent's and are refused with the RLOO setting to use instead
(``--eval-every 0`` passes: RLOO never evaluates periodically). A resumed run keeps its config;
only ``--steps`` and ``--no-progress`` may change.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from agents.overrides import apply_overrides
from agents.rloo.config import RLOOConfig

_NOT_RLOO = {
    "preset": "RLOO has one default configuration; change fields with --set FIELD=VALUE",
    "num_envs": "use --set num_primers=N --set samples_per_primer=K (N*K compositions at once)",
    "eval_every": "RLOO logs its objective every iteration and evaluates at the end",
}
_FLAGS = {
    "steps": "total_steps",
    "seed": "seed",
    "checkpoint_every": "checkpoint_every",
    "reward_rnn": "env.reward_rnn",
    "key": "env.key",
}
"""``melody-rl train`` flag (argparse name) -> the RLOOConfig field it sets (``env.*``: a field
of ``RLOOConfig.env``)."""


def is_rloo_run(args: argparse.Namespace) -> bool:
    """Whether ``melody-rl train`` with ``args`` trains RLOO: ``--algo rloo``; ``--resume``
    without ``--algo`` of a run folder that holds an RLOO checkpoint; or a new run without
    ``--algo`` and ``--preset`` (RLOO is the default; the presets are the Q agent's)."""
    if args.algo is not None:
        return args.algo == "rloo"
    if args.resume:
        from agents.rloo.checkpoint import is_rloo_checkpoint

        return is_rloo_checkpoint(args.out)
    return getattr(args, "preset", None) is None


def _no_progress(args: argparse.Namespace) -> bool:
    """Whether the command line turns the progress bar off (``--no-progress``)."""
    return getattr(args, "progress", True) is False


def key_name(args: argparse.Namespace) -> str | None:
    """``--key`` as a canonical key name (or ``"any"``), ``None`` if not given.

    Raises:
        ValueError: not one of the 24 keys nor ``any``.
    """
    key = getattr(args, "key", None)
    if key is None:
        return None
    if key.strip().lower() == "any":
        return "any"
    from melody_env.music.keys import Key

    return Key.from_name(key).name


def build_config(args: argparse.Namespace) -> RLOOConfig:
    """The run's config from the defaults, the flags and ``--set``; on ``--resume`` the
    checkpoint's config with ``--steps`` applied.

    Raises:
        ValueError: a flag RLOO does not take, a field it does not know, an invalid value, or a
            change to a resumed run's config.
        FileNotFoundError: ``--resume`` and no checkpoint in ``--out``.
    """
    for name, hint in _NOT_RLOO.items():
        value = getattr(args, name, None)
        if value is not None and not (name == "eval_every" and value == 0):
            raise ValueError(f"--{name.replace('_', '-')} is not an RLOO setting: {hint}")
    if args.resume:
        from agents.rloo.checkpoint import load_checkpoint

        try:
            config = load_checkpoint(args.out).config
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"cannot resume: {error}. Start a new run without --resume."
            ) from error
        if args.set:
            raise ValueError("--set cannot change a resumed run's config")
        given = _given_flags(args)
        for flag, name in _FLAGS.items():
            current = config.env if name.startswith("env.") else config
            current = getattr(current, name.removeprefix("env."))
            if flag != "steps" and name in given and given[name] != current:
                raise ValueError(
                    f"--{flag.replace('_', '-')} {given[name]} differs from the resumed run's "
                    f"{current!r}; a resumed run keeps its config (only --steps may change)"
                )
        changes: dict[str, Any] = {}
        if args.steps is not None:
            changes["total_steps"] = args.steps
        if _no_progress(args):
            changes["progress_bar"] = False
        return replace(config, **changes)
    config = apply_overrides(RLOOConfig(), args.set or [])
    given = _given_flags(args)
    flags = {name: value for name, value in given.items() if not name.startswith("env.")}
    env = {name[4:]: value for name, value in given.items() if name.startswith("env.")}
    if _no_progress(args):
        flags["progress_bar"] = False
    return replace(config, env=config.env.replace(**env), **flags)  # the flags win over --set


def _given_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given on the command line: the field each sets (:data:`_FLAGS`) -> its value
    (``--key`` as its canonical name)."""
    values = {name: getattr(args, flag, None) for flag, name in _FLAGS.items()}
    values["env.key"] = key_name(args)
    return {name: value for name, value in values.items() if value is not None}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the config and train; return the summary."""
    from agents.rloo.run import train

    return train(build_config(args), args.out, resume=args.resume)
