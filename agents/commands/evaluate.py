"""``melody-rl evaluate``: the paper's Table 1 for any models, with figures and music.

Samples ``--n`` compositions from each model (the untuned Note RNN is always included) and
writes into ``--out``:

- ``report.md`` and ``report.json``: one column per model, one row per statistic, the paper's
  Table 1 numbers alongside, 95% bootstrap intervals;
- ``reward_terms.png``: the distribution of each reward term, all models overlaid;
- per model, ``MODEL/piano_roll.png`` (``--samples`` compositions, the key's scale shaded),
  ``MODEL/sample_*.mid`` (and ``.wav`` with ``--wav``, ``.musicxml`` with ``--musicxml``) and
  ``MODEL/compositions.npy`` (all ``n`` compositions);
- ``training_curves.png`` for ``--run-dir`` (TensorBoard events or a CSV/JSONL log).

Models (``--checkpoint``, repeatable): ``PATH.safetensors`` (a Note RNN, sampled),
``sb3-dqn:PATH.zip`` (or ``sb3-ppo``, ``sb3-a2c``, ``sb3-qrdqn``, ``sb3-recurrentppo``, or a bare
``.zip``), ``agent:PATH`` (our agent), ``random``. ``--baseline random`` adds the uniform policy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="Table-1 statistics, plots and MIDI for Note RNN / tuned models",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="SPEC",
        help="a model to evaluate (repeatable)",
    )
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        choices=["random", "note-rnn"],
        help="add a baseline column (the Note RNN is always there)",
    )
    parser.add_argument(
        "--n", type=int, default=10_000, help="compositions per model (paper: 100000)"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--key", default="C major", help="key of the compositions, e.g. 'G major'")
    parser.add_argument(
        "--primer", default=None, help="a MIDI file to start from (default: one random token)"
    )
    parser.add_argument(
        "--reward-rnn",
        default=None,
        help="the env's Note RNN .safetensors (default: the shipped model)",
    )
    parser.add_argument(
        "--samples", type=int, default=8, help="compositions drawn and exported per model"
    )
    parser.add_argument(
        "--batch-size", type=int, default=5_000, help="compositions composed at once"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples (0: no intervals)"
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="greedy actions for the checkpoints"
    )
    parser.add_argument("--engine", default="auto", choices=["auto", "vector", "state"])
    parser.add_argument("--run-dir", default=None, help="a training run folder to plot curves from")
    parser.add_argument(
        "--wav", action="store_true", help="also render WAV (needs the audio extra)"
    )
    parser.add_argument(
        "--musicxml", action="store_true", help="also write MusicXML (needs music21)"
    )
    parser.add_argument("--title", default=None, help="report title")
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    import numpy as np

    from melody_env.atomic import atomic_path
    from melody_env.envs.melody_composition import load_reward_rnn
    from melody_env.evaluation import evaluate
    from melody_env.evaluation.export import AudioUnavailableError, check_audio, export_samples
    from melody_env.evaluation.plots import piano_roll_grid, reward_term_histograms, training_curves
    from melody_env.evaluation.policies import NoteRNNPolicy, load_policy, policy_name
    from melody_env.evaluation.report import write_report

    if args.n < 1 or args.samples < 0:
        print("error: --n must be >= 1 and --samples >= 0", file=sys.stderr)
        return 2
    if args.wav:
        try:
            check_audio()
        except AudioUnavailableError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    try:
        reward_rnn = load_reward_rnn(args.reward_rnn)
    except FileNotFoundError as error:
        print(f"error: {error}; pass --reward-rnn PATH.safetensors", file=sys.stderr)
        return 2

    models = [("note_rnn", NoteRNNPolicy())]
    specs = [*(f"{b}" for b in args.baseline if b != "note-rnn"), *args.checkpoint]
    for spec in specs:
        try:
            policy = load_policy(spec)
        except (FileNotFoundError, ValueError, ImportError) as error:
            print(f"error: cannot load {spec!r}: {error}", file=sys.stderr)
            return 2
        name = policy_name(spec)
        taken = {existing for existing, _ in models}
        unique, suffix = name, 2
        while unique in taken:
            unique, suffix = f"{name}_{suffix}", suffix + 1
        models.append((unique, policy))

    out = Path(args.out)
    results = []
    for name, policy in models:
        result = evaluate(
            policy,
            n=args.n,
            seed=args.seed,
            key=args.key,
            primer=args.primer,
            reward_rnn=reward_rnn,
            deterministic=args.deterministic and name != "note_rnn",
            batch_size=args.batch_size,
            engine=args.engine,
            n_bootstrap=args.bootstrap,
            name=name,
        )
        results.append(result)
        engine = result.config["engine"]
        print(f"{name}: {result.n} compositions in {result.seconds:.1f} s ({engine} engine)")
        model_dir = out / name
        model_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(model_dir / "compositions.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, result.tokens.astype(np.uint8))  # tokens < 38
        if args.samples:
            samples = result.tokens[: args.samples]
            titles = [
                f"{name} #{i}: r_MT {result.table['music_theory'][i]:.1f}"
                for i in range(len(samples))
            ]
            piano_roll_grid(samples, result.key, model_dir / "piano_roll.png", titles=titles)
            export_samples(samples, model_dir, result.key, wav=args.wav, musicxml=args.musicxml)
    markdown_path, json_path = write_report(results, out, args.title)
    reward_term_histograms({r.name: r.table for r in results}, out / "reward_terms.png")
    if args.run_dir:
        try:
            training_curves(args.run_dir, out / "training_curves.png")
        except (FileNotFoundError, ValueError) as error:
            print(f"warning: no training curves: {error}", file=sys.stderr)
    print(markdown_path.read_text())
    print(f"wrote {markdown_path}, {json_path} and figures/MIDI under {out}")
    return 0
