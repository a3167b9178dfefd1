"""``melody-rl sample``: melodies from the Note RNN alone, as MIDI files.

Each melody starts from a zero LSTM state and a primer token (uniformly random unless
``--primer-token`` is given); the primer is not part of the melody, as in the RL environment.
The ``--length`` tokens after it are sampled from the model's softmax at ``--temperature``
(:func:`melody_env.sampling.sample_tokens`, from a numpy generator seeded with ``--seed``).
"""

from __future__ import annotations

import argparse

import numpy as np

MAX_MELODIES = 65_536
MAX_LENGTH = 10_000
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0
"""Sampling temperatures allowed: far outside this range the scaled log-probabilities overflow
(NaN) or every token becomes equally likely."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample", help="write MIDI melodies sampled from the Note RNN", description=__doc__
    )
    parser.add_argument("--n", type=int, default=10, help="number of melodies (default 10)")
    parser.add_argument("--out", required=True, help="folder for sample_000.mid, ...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--length", type=int, default=32, help="tokens (sixteenths) per melody")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument(
        "--checkpoint", default=None, help="Note RNN .safetensors (default: shipped)"
    )
    parser.add_argument("--primer-token", type=int, default=None, help="first input token, 0..37")
    parser.set_defaults(func=run_command)


def sample_melodies(
    model,
    n: int,
    length: int,
    temperature: float = 1.0,
    seed: int = 0,
    primer_token: int | None = None,
) -> np.ndarray:
    """``[n, length]`` tokens sampled from ``model`` (a :class:`NoteRNN`), reproducibly.

    Raises:
        ValueError: a non-positive ``n``, ``length`` or ``temperature``, or a bad primer token.
    """
    import torch

    from melody_env.music.encoding import NUM_CLASSES, validate_tokens
    from melody_env.sampling import sample_tokens

    for name, value, most in (("n", n, MAX_MELODIES), ("length", length, MAX_LENGTH)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
            raise ValueError(f"{name} must be an integer in [1, {most:,}], got {value!r}")
    if not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE:
        raise ValueError(
            f"temperature must be in [{MIN_TEMPERATURE}, {MAX_TEMPERATURE}], got {temperature!r}"
        )
    if not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    if primer_token is None:
        tokens = rng.integers(0, NUM_CLASSES, n)
    else:
        primer = int(validate_tokens([primer_token], "primer token")[0])
        tokens = np.full(n, primer, dtype=np.int64)
    state = model.initial_state(n)
    melody = np.empty((n, length), dtype=np.int64)
    with torch.no_grad():
        for step in range(length):
            log_probs, state = model.step(torch.from_numpy(tokens), state)
            tokens = sample_tokens(log_probs.numpy(), rng, temperature)
            melody[:, step] = tokens
    return melody


def run_command(args: argparse.Namespace) -> int:
    from agents.run_control import check_output_folder
    from melody_env.io.midi_writer import write_midi
    from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig

    out = check_output_folder(args.out)
    sample_melodies(NoteRNN(NoteRNNConfig(hidden_size=1)), args.n, 1, args.temperature, args.seed)
    model = NoteRNN.load(args.checkpoint)  # after the arguments are checked
    melodies = sample_melodies(
        model, args.n, args.length, args.temperature, args.seed, args.primer_token
    )
    out.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(args.n - 1)))
    for index, melody in enumerate(melodies):
        path = out / f"sample_{index:0{width}d}.mid"
        write_midi(path, melody)
        print(f"{path}: {' '.join(map(str, melody.tolist()))}")
    return 0
