"""``melody-rl generate``: MIDI melodies from a trained RL Tuner agent.

Each melody follows a random one-token primer (not part of the melody). Tokens are sampled from
the agent's policy (softmax of its logits; ``G + log p`` for G-learning) or, with ``--greedy``,
its argmax. The agent composes in the key it was trained in, or with ``--key`` in another:

    melody-rl generate --checkpoint runs/q --n 16 --out samples/q --key "G major"

An RL Tuner agent works in C major or A minor whatever the key (:mod:`agents.rl_tuner.agent`),
so it composes in ``--key`` directly: any key of the mode it was trained in, and any of the 24
(or ``--key any``, a key drawn per melody) if it was trained with ``--key any``. An RLOO agent's
melodies are transposed to ``--key`` (same mode; by at most a tritone, notes folded into the
encodable range).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write MIDI melodies composed by a trained agent",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint", required=True, help="run folder (its latest checkpoint) or checkpoint"
    )
    parser.add_argument("--n", type=int, default=16, help="number of melodies (default 16)")
    parser.add_argument("--out", required=True, help="folder for melody_000.mid, ...")
    parser.add_argument("--greedy", action="store_true", help="argmax instead of sampling")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--key", default=None, help="compose in this key, e.g. 'D major' (or 'any', see above)"
    )
    parser.set_defaults(func=run_command)


def transpose(tokens: np.ndarray, source: str, target: str) -> np.ndarray:
    """Move note tokens from key ``source`` to key ``target`` (same mode) by
    :meth:`Key.semitones_to <melody_env.music.keys.Key.semitones_to>` (-6..+5, the corpus's
    convention), folding notes by octaves into the encodable range.

    >>> transpose(np.array([14, 0, 18, 1]), "C major", "D major").tolist()
    [16, 0, 20, 1]
    >>> transpose(np.array([14]), "C major", "F# major").tolist()  # a tritone: down
    [8]

    Raises:
        ValueError: the keys differ in mode.
    """
    from melody_env.music.keys import Key
    from melody_env.music.transposition import transpose_tokens

    source_key, target_key = Key.from_name(source), Key.from_name(target)
    if source_key.mode != target_key.mode:
        raise ValueError(
            f"cannot transpose the agent's {source_key.name} to {target_key.name}: --key must be "
            f"a {source_key.mode} key (the agent was trained in {source_key.name})"
        )
    return transpose_tokens(tokens, source_key.semitones_to(target_key))


def composing_key(trained: str, requested: str) -> str:
    """The env key an RL Tuner agent trained in ``trained`` composes ``--key requested`` in.

    >>> composing_key("C major", "f# major"), composing_key("any", "any")
    ('F# major', 'any')

    Raises:
        ValueError: ``requested`` is not a key or ``any``, or is of a mode the agent did not
            train on (``any`` needs an agent trained with ``--key any``).
    """
    from melody_env.envs.priming import ANY_KEY, check_key

    wanted, learned = check_key(requested), check_key(trained)
    if learned == ANY_KEY:
        return wanted if wanted == ANY_KEY else wanted.name
    if wanted == ANY_KEY:
        raise ValueError(
            f"--key any needs an agent trained with --key any; this one was trained in "
            f"{learned.name}: name a {learned.mode} key"
        )
    if wanted.mode != learned.mode:
        raise ValueError(
            f"the agent was trained in {learned.name}: --key must be a {learned.mode} key "
            f"(or train with --key any), got {wanted.name}"
        )
    return wanted.name


def run_command(args: argparse.Namespace) -> int:
    from agents.rl_tuner.rollout import compose, make_vector_env
    from agents.rloo import RLOO
    from agents.rloo.rloo import generate
    from agents.tuner import RLTuner
    from melody_env.io.midi_writer import write_midi
    from melody_env.music.keys import KEY_NAMES, Key

    try:
        if args.n < 1:
            raise ValueError(f"--n must be a positive integer, got {args.n}")
        if args.seed < 0:
            raise ValueError(f"--seed must be a non-negative integer, got {args.seed}")
        model = RLTuner.load(args.checkpoint)  # the RL Tuner's or RLOO's, by the format
        is_rloo = isinstance(model, RLOO)
        key = model.config.env.key
        config = None if is_rloo else model.config
        if args.key is not None and is_rloo:
            if key == "any":  # composes in the requested key directly
                Key.from_name(args.key)
            else:
                transpose(np.zeros(1, dtype=np.int64), key, Key.from_name(args.key).name)
        elif args.key is not None:
            env = config.env.replace(key=composing_key(key, args.key))
            config = replace(config, env=env)
    except (FileNotFoundError, ValueError) as error:
        print(f"melody-rl generate: error: {error}", file=sys.stderr)
        return 2
    names = None  # each melody's key, when the agent composed in several
    if is_rloo:
        direct = Key.from_name(args.key).name if args.key is not None and key == "any" else None
        melodies = generate(model.policy, args.n, args.seed, greedy=args.greedy, key=direct)
        if args.key is not None and direct is None:
            melodies = transpose(melodies, key, args.key)
    else:
        agent = model.agent
        envs = make_vector_env(config, min(args.n, 64), agent.reward_rnn)
        compositions = compose(
            agent, envs, args.n, args.seed, purpose="generate", greedy=args.greedy
        )
        envs.close()
        melodies = compositions.actions
        if config.env.key == "any":
            names = [KEY_NAMES[compositions.key_of(row)] for row in range(len(melodies))]
    out = Path(args.out)
    width = max(3, len(str(args.n - 1)))
    for index, melody in enumerate(melodies):
        path = out / f"melody_{index:0{width}d}.mid"
        write_midi(path, melody)
        label = f" ({names[index]})" if names is not None else ""
        print(f"{path}{label}: {' '.join(map(str, melody.tolist()))}")
    return 0
