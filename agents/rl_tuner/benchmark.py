"""Train the four algorithms with one preset and tabulate their music-theory statistics.

Next to them: the untuned Note RNN (tokens sampled from its softmax, i.e. an agent before any
update) and the paper's Q column. Each run folder is reused if it already holds a summary::

    python -m agents.rl_tuner.benchmark --out runs/bench --algos q psi g pure_rl --seeds 0

writes ``runs/bench/table.md`` and ``runs/bench/table.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from agents.rl_tuner.agent import RLTunerAgent
from agents.rl_tuner.config import ALGORITHMS, PRESETS, make_config
from agents.rl_tuner.summary import evaluation_summary, markdown_table
from agents.rl_tuner.trainer import load_note_rnn, train
from melody_env.atomic import atomic_write_text

LABELS = {"q": "Q", "psi": "Psi", "g": "G", "pure_rl": "RL only"}


def untuned_stats(preset: str, reward_rnn: str | None, count: int, seed: int) -> dict:
    """Statistics of the Note RNN itself (an agent before any update samples softmax(logits)),
    through the evaluation suite like the runs' summaries."""
    config = make_config(preset, "q", reward_rnn=reward_rnn, seed=seed, summary_compositions=count)
    agent = RLTunerAgent(config, load_note_rnn(reward_rnn))
    return evaluation_summary(agent, config)[0]["sampled"]


def mean_stats(runs: list[dict]) -> dict:
    """Mean over seeds (and ``<key>_std`` when there are several)."""
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    result = {}
    for key in keys:
        values = np.array([run[key] for run in runs], dtype=float)
        result[key] = float(np.mean(values))
        if len(runs) > 1:
            result[f"{key}_std"] = float(np.std(values))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--preset", choices=PRESETS, default="fast")
    parser.add_argument("--algos", nargs="+", choices=ALGORITHMS, default=list(ALGORITHMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--reward-rnn", default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    columns, timings = {}, {}
    started = time.perf_counter()
    count = make_config(args.preset).summary_compositions
    columns["Note RNN"] = untuned_stats(args.preset, args.reward_rnn, count, args.seeds[0])
    print(f"Note RNN column in {time.perf_counter() - started:.0f} s")
    for algo in args.algos:
        runs = []
        for seed in args.seeds:
            run_dir = out / f"{algo}_seed{seed}"
            if not (run_dir / "summary.json").is_file():
                config = make_config(
                    args.preset,
                    algo,
                    seed=seed,
                    reward_rnn=args.reward_rnn,
                    progress_bar=not args.no_progress,
                )
                train(config, run_dir)
            summary = json.loads((run_dir / "summary.json").read_text())
            runs.append(summary["sampled"])
            timings[f"{algo}_seed{seed}"] = summary["total_seconds"]
        columns[LABELS[algo]] = mean_stats(runs)
    table = markdown_table(columns)
    atomic_write_text(out / "table.md", table)
    atomic_write_text(
        out / "table.json", json.dumps({"columns": columns, "seconds": timings}, indent=1) + "\n"
    )
    print(table)
    print("seconds per run:", {name: round(value) for name, value in timings.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
