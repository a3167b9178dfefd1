"""Issue 16's "Done when" for RLOO: train seeds 0, 1, 2 with ``melody-rl train --algo rloo``, then
check every line on 2,000 sampled compositions per seed.

Run on a quiet machine (the training time is one of the lines)::

    python benchmarks/rloo_done_when.py --out runs/rloo_check            # seeds 0 1 2
    python benchmarks/rloo_done_when.py --out runs/rloo_check --set kl_coef=3

Each seed trains ``melody-rl train --algo rloo --out OUT/seed_S --seed S --no-progress`` (plus
``--set`` overrides), reads ``train_seconds`` from its ``summary.json``, then runs
:func:`melody_env.evaluation.evaluate` on 2,000 compositions (seed S) and prints one row per line
of the issue with each seed's value and whether it passes. ``OUT/done_when.json`` gets the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BARS = (
    # (statistic of evaluate's summary, label, "<=" or ">=", bar, percent)
    ("excessively_repeated", "excessively repeated", "<=", 0.001, True),
    ("not_in_key", "not in key", "<=", 0.005, True),
    ("starts_with_tonic", "starting with the tonic", ">=", 0.50, True),
    ("leaps_resolved", "leaps resolved", ">=", 0.92, True),
    ("unique_max", "unique highest note", ">=", 0.65, True),
    ("unique_min", "unique lowest note", ">=", 0.58, True),
    ("in_motif", "notes in motif", ">=", 0.77, True),
    ("abs_autocorrelation_lag1", "abs. autocorrelation lag 1", "<=", 0.10, False),
    ("abs_autocorrelation_lag2", "abs. autocorrelation lag 2", "<=", 0.10, False),
    ("abs_autocorrelation_lag3", "abs. autocorrelation lag 3", "<=", 0.10, False),
    ("in_repeated_motif", "notes in repeated motif", "<=", 0.01, True),
    ("distinct_openings", "distinct first-8-token openings of 2,000", ">=", 800, False),
    ("top_opening_share", "most common opening", "<=", 0.10, True),
    ("interval_overlap", "abs. interval overlap with the corpus", ">=", 0.85, False),
    ("coverage_gap", "coverage minus the Note RNN's (nats/token)", "<=", 0.5, False),
    ("judge_quality", "quality (nats/token; default Q: 2.28)", "<=", 2.28, False),
    ("kl", "KL(pi || Note RNN) per step (reported)", ">=", 0.0, False),
    ("train_seconds", "training seconds", "<=", 60.0, False),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=2000, help="compositions per seed")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args(argv)

    from agents.policies import load_policy
    from melody_env.evaluation import evaluate
    from melody_env.evaluation.policies import NoteRNNPolicy

    note_rnn = evaluate(NoteRNNPolicy(), n=args.n, seed=0, n_bootstrap=0).summary
    rows: dict[int, dict[str, float]] = {}
    for seed in args.seeds:
        run = Path(args.out) / f"seed_{seed}"
        if not (run / "summary.json").exists():
            command = ["melody-rl", "train", "--algo", "rloo", "--out", str(run)]
            command += ["--seed", str(seed), "--no-progress"]
            for item in args.set:
                command += ["--set", item]
            print(" ".join(command), flush=True)
            subprocess.run(command, check=True, env=os.environ)
        summary = json.loads((run / "summary.json").read_text())
        result = evaluate(load_policy(f"agent:{run}"), n=args.n, seed=seed, n_bootstrap=0)
        values = {name: estimate.value for name, estimate in result.summary.items()}
        for lag in (1, 2, 3):
            values[f"abs_autocorrelation_lag{lag}"] = abs(values[f"autocorrelation_lag{lag}"])
        values["coverage_gap"] = values["judge_coverage"] - note_rnn["judge_coverage"].value
        values["train_seconds"] = summary["train_seconds"]
        rows[seed] = values

    print(f"\nNote RNN: coverage {note_rnn['judge_coverage'].value:.2f}, quality "
          f"{note_rnn['judge_quality'].value:.2f}, interval overlap "
          f"{note_rnn['interval_overlap'].value:.3f}\n")  # fmt: skip
    print("| line | bar | " + " | ".join(f"seed {s}" for s in args.seeds) + " |")
    print("|---|---|" + "---|" * len(args.seeds))
    failed = 0
    for key, label, op, bar, percent in BARS:
        cells = []
        for seed in args.seeds:
            value = rows[seed][key]
            ok = value <= bar if op == "<=" else value >= bar
            failed += not ok
            text = f"{100 * value:.2f}%" if percent else f"{value:.3f}"
            cells.append(text + ("" if ok else " **FAIL**"))
        shown = f"{100 * bar:g}%" if percent else f"{bar:g}"
        print(f"| {label} | {op} {shown} | " + " | ".join(cells) + " |")
    (Path(args.out) / "done_when.json").write_text(json.dumps(rows, indent=1, default=float))
    print(f"\n{failed} failing cells")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
