"""``melody-rl evaluate``: the paper's Table 1 for any models, with figures and music.

Samples ``--n`` compositions from each model (the untuned Note RNN is always included) and
writes into ``--out``:

- ``report.md`` and ``report.json``: one column per model, one row per statistic, the paper's
  Table 1 numbers alongside, 95% bootstrap intervals; then the music rows: data-likeness under
  an independent 5-gram judge (quality and coverage) and histogram overlaps with the folk
  corpus, the exact KL to the Note RNN, diversity of sampled and (a second, greedy pass of
  ``--n`` compositions on the same primers) greedy actions, and an exploit watch;
- ``reward_terms.png``: the distribution of each reward term, all models overlaid;
- per model, ``MODEL/piano_roll.png`` (``--samples`` compositions, the key's scale shaded),
  ``MODEL/sample_*.mid`` (and ``.wav`` with ``--wav``, ``.musicxml`` with ``--musicxml``) and
  ``MODEL/compositions.npy`` (all ``n`` compositions);
- ``training_curves.png`` for ``--run-dir`` (TensorBoard events or a CSV/JSONL log).

Models (``--checkpoint``, repeatable): ``PATH.safetensors`` (a Note RNN, sampled),
``sb3-dqn:PATH.zip`` (or ``sb3-ppo``, ``sb3-a2c``, ``sb3-qrdqn``, ``sb3-recurrentppo``, or a bare
``.zip``), ``agent:PATH`` (our agent), ``random``. ``--baseline random`` adds the uniform policy.

Keys: ``--key`` (default C major) is the key of every composition; a checkpoint trained in
another key gets a warning. ``--key all`` evaluates every model in each of the 24 keys (``--n``
compositions each): ``--out/KEY/`` gets that key's report and figures as above, and
``--out/keys.md`` (and ``keys.json``) one table per model, a row per key and one pooled over
the 24 keys (every composition counted once).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agents.commands.arguments import add_progress_argument


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
    parser.add_argument(
        "--key",
        default="C major",
        help="key of the compositions, e.g. 'G major', or 'all' (each of the 24, and pooled)",
    )
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
    add_progress_argument(parser)
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from agents.policies import load_policy, policy_name
    from melody_env.envs.env_config import load_reward_rnn
    from melody_env.evaluation.export import AudioUnavailableError, check_audio
    from melody_env.evaluation.policies import NoteRNNPolicy

    if args.n < 1 or args.samples < 0:
        print("melody-rl evaluate: error: --n must be >= 1 and --samples >= 0", file=sys.stderr)
        return 2
    if args.wav:
        try:
            check_audio()
        except AudioUnavailableError as error:
            print(f"melody-rl evaluate: error: {error}", file=sys.stderr)
            return 2
    try:
        reward_rnn = load_reward_rnn(args.reward_rnn)
    except FileNotFoundError as error:
        hint = "pass --reward-rnn PATH.safetensors"
        print(f"melody-rl evaluate: error: {error}; {hint}", file=sys.stderr)
        return 2

    models = [("note_rnn", NoteRNNPolicy())]
    specs = [*(f"{b}" for b in args.baseline if b != "note-rnn"), *args.checkpoint]
    for spec in specs:
        try:
            policy = load_policy(spec)
        except (FileNotFoundError, ValueError, ImportError) as error:
            print(f"melody-rl evaluate: error: cannot load {spec!r}: {error}", file=sys.stderr)
            return 2
        name = policy_name(spec)
        taken = {existing for existing, _ in models}
        unique, suffix = name, 2
        while unique in taken:
            unique, suffix = f"{name}_{suffix}", suffix + 1
        models.append((unique, policy))

    try:
        keys = evaluation_keys(args.key)
    except ValueError as error:
        print(f"melody-rl evaluate: error: {error}", file=sys.stderr)
        return 2
    warn_other_keys(models, keys)
    from agents.progress import progress_bar

    total = args.n * len(models) * len(keys)
    with progress_bar(total, "evaluate", "composition", enabled=args.progress) as bar:
        if len(keys) == 1:
            evaluate_in_key(args, models, reward_rnn, keys[0], Path(args.out), bar)
            return 0
        by_key = {}
        for key in keys:
            by_key[key] = evaluate_in_key(
                args, models, reward_rnn, key, Path(args.out) / key.replace(" ", "_"), bar
            )
    print(write_key_tables(by_key, Path(args.out), args.bootstrap, args.seed))
    return 0


def evaluate_in_key(
    args: argparse.Namespace, models, reward_rnn, key: str, out: Path, bar=None
) -> list:
    """Evaluate ``models`` in ``key``; write the report, figures and MIDI into ``out``; return
    the results. ``bar``: the progress bar to advance by ``args.n`` per model."""
    import numpy as np

    from agents.progress import fraction_updater, log_function
    from melody_env.atomic import atomic_path
    from melody_env.evaluation import evaluate
    from melody_env.evaluation.export import export_samples
    from melody_env.evaluation.plots import piano_roll_grid, reward_term_histograms, training_curves
    from melody_env.evaluation.report import write_report

    log = log_function(bar)
    results = []
    for name, policy in models:
        result = evaluate(
            policy,
            n=args.n,
            seed=args.seed,
            key=key,
            primer=args.primer,
            reward_rnn=reward_rnn,
            deterministic=args.deterministic and name != "note_rnn",
            batch_size=args.batch_size,
            engine=args.engine,
            n_bootstrap=args.bootstrap,
            name=name,
            greedy_diversity=True,
            progress=None if bar is None else fraction_updater(bar, args.n),
        )
        results.append(result)
        engine = result.config["engine"]
        log(f"{name}: {result.n} compositions in {result.seconds:.1f} s ({engine} engine)")
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
    log(markdown_path.read_text())
    log(f"wrote {markdown_path}, {json_path} and figures/MIDI under {out}")
    return results


def evaluation_keys(key: str) -> list[str]:
    """``--key`` as a list of canonical key names: one, or all 24 for ``all``.

    >>> evaluation_keys("bb minor"), len(evaluation_keys("ALL"))
    (['A# minor'], 24)

    Raises:
        ValueError: not one of the 24 keys or ``all``.
    """
    from melody_env.music.keys import KEY_NAMES, Key

    if key.strip().lower() == "all":
        return list(KEY_NAMES)
    try:
        return [Key.from_name(key).name]
    except ValueError as error:
        raise ValueError(f"{error}; or 'all' for each of the 24 keys") from None


def trained_key(policy) -> str | None:
    """The key a checkpoint's compositions were trained in (a key name or ``"any"``), when its
    config says so (our RL Tuner and RLOO agents); else ``None``."""
    config = getattr(policy, "config", None)
    for holder in (getattr(config, "env", None), config):
        key = getattr(holder, "key", None)
        if isinstance(key, str):
            return key
    return None


def warn_other_keys(models, keys: list[str]) -> None:
    """Warn, on stderr, for each model trained in one key that is evaluated in another."""
    from melody_env.envs.priming import ANY_KEY, check_key

    for name, policy in models:
        trained = trained_key(policy)
        if trained is None or check_key(trained) == ANY_KEY:
            continue
        trained = check_key(trained).name
        others = [key for key in keys if key != trained]
        if others:
            where = others[0] if len(keys) == 1 else f"all {len(keys)} keys"
            print(
                f"warning: {name} was trained in {trained} only; evaluating it in {where} "
                "(RL Tuner agents play in every key as in C major / A minor, relabelled)",
                file=sys.stderr,
            )


def write_key_tables(by_key: dict[str, list], out: Path, n_bootstrap: int, seed: int) -> str:
    """Write ``out/keys.md`` and ``out/keys.json``: per model, the Table-1 statistics in each
    key and pooled over the keys (each statistic recomputed as one ratio over all the keys'
    compositions, with its bootstrap interval); return the markdown."""
    import json

    import numpy as np

    from melody_env.atomic import atomic_write_text
    from melody_env.evaluation.metrics import STATISTICS
    from melody_env.evaluation.stats import summarize

    rows = [s for s in STATISTICS if s.group == "table1"] + [
        s for s in STATISTICS if s.name in ("music_theory", "log_prob")
    ]
    lines, data = ["# Every key", ""], {}
    for index, name in enumerate(result.name for result in next(iter(by_key.values()))):
        results = {key: results[index] for key, results in by_key.items()}
        first = next(iter(results.values()))
        pooled_table = {
            column: np.concatenate([r.table[column] for r in results.values()])
            for column in first.table
        }
        pooled = summarize(pooled_table, rows, n_bootstrap, seed)
        lines += [f"## {name}", "", "| key | " + " | ".join(s.label for s in rows) + " |"]
        lines.append("|---" * (len(rows) + 1) + "|")
        data[name] = {}
        for key, result in [*results.items(), ("pooled", None)]:
            estimates = pooled if result is None else result.summary
            cells = [_format(estimates[s.name].value, s.percent) for s in rows]
            label = "**pooled**" if result is None else key
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
            data[name][key] = {s.name: estimates[s.name].to_dict() for s in rows}
        lines.append("")
    markdown = "\n".join(lines)
    atomic_write_text(out / "keys.md", markdown)
    atomic_write_text(out / "keys.json", json.dumps(data, indent=2))
    return markdown


def _format(value: float, percent: bool) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{100 * value:.2f}%" if percent else f"{value:.3f}"
