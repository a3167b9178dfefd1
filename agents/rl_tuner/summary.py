"""Music-theory statistics of a set of compositions (the paper's Table 1) and the run summary.

Kept in one small module so a fuller evaluation suite can replace it. Definitions are the
env's rules, read from its per-step breakdown (``info["reward_terms"]``) where it has them:

==========================  ==================================================================
statistic                   definition
==========================  ==================================================================
``music_theory``            mean r_MT per step (``info["music_theory"]``)
``log_prob``                mean log p(a | s) per step under the reward RNN (the Note RNN)
``excessively_repeated``    share of steps with ``repeated_notes < 0``
``not_in_key``              share of steps with ``key < 0``
``in_motif``                share of steps with ``motif > 0``
``in_repeated_motif``       share of steps with ``repeated_motif > 0``
``starting_with_tonic``     share of compositions with ``tonic > 0`` at step 0
``leaps_resolved``          resolved / (resolved + doubled) leaps (``leap_resolution`` +5 / -5)
``unique_max``/``_min``     share of compositions whose highest / lowest pitch is played once
                            (:func:`melody_env.music.theory.unique_extremes`)
``autocorrelation_lagK``    mean over compositions of the melodic line's autocorrelation at lag K
                            (:func:`melody_env.music.theory.onset_autocorrelation`; the paper
                            took raw token indices, holds and rests included)
==========================  ==================================================================

Shares are fractions in [0, 1]; the Markdown table prints them as percentages.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from agents.rl_tuner.rollout import Compositions
from melody_env.atomic import atomic_write_text
from melody_env.music import theory

PAPER_Q = {
    "excessively_repeated": 0.0,
    "autocorrelation_lag1": -0.11,
    "autocorrelation_lag2": 0.03,
    "autocorrelation_lag3": 0.03,
    "not_in_key": 0.01,
    "starting_with_tonic": 0.288,
    "leaps_resolved": 0.911,
    "unique_max": 0.564,
    "unique_min": 0.519,
    "in_motif": 0.757,
    "in_repeated_motif": 0.0011,
}
"""The paper's Table 1, column Q (Jaques et al. 2017; spec §5.1)."""

ROWS = (
    ("music_theory", "mean r_MT per step", "num"),
    ("log_prob", "mean log p under the Note RNN", "num"),
    ("excessively_repeated", "notes excessively repeated", "pct"),
    ("not_in_key", "notes not in key", "pct"),
    ("in_motif", "notes in motif", "pct"),
    ("in_repeated_motif", "notes in repeated motif", "pct"),
    ("starting_with_tonic", "compositions starting with tonic", "pct"),
    ("leaps_resolved", "leaps resolved", "pct"),
    ("unique_max", "compositions with unique max note", "pct"),
    ("unique_min", "compositions with unique min note", "pct"),
    ("autocorrelation_lag1", "mean autocorrelation lag 1", "num"),
    ("autocorrelation_lag2", "mean autocorrelation lag 2", "num"),
    ("autocorrelation_lag3", "mean autocorrelation lag 3", "num"),
)
"""(statistic, label, format) of the summary table, in the paper's order where it has them."""


def composition_stats(compositions: Compositions) -> dict[str, float]:
    """The statistics of the module docstring for ``compositions``."""
    terms = compositions.terms
    leaps = terms["leap_resolution"]
    resolved, doubled = int((leaps > 0).sum()), int((leaps < 0).sum())
    high, low = theory.unique_extremes(compositions.actions)
    rho = theory.onset_autocorrelation(compositions.actions, (1, 2, 3))
    stats = {
        "compositions": len(compositions),
        "music_theory": float(compositions.music_theory.mean()),
        "music_theory_per_composition": float(compositions.music_theory.sum(axis=1).mean()),
        "log_prob": float(compositions.log_prob.mean()),
        "return": float(compositions.rewards.sum(axis=1).mean()),
        "excessively_repeated": float((terms["repeated_notes"] < 0).mean()),
        "not_in_key": float((terms["key"] < 0).mean()),
        "in_motif": float((terms["motif"] > 0).mean()),
        "in_repeated_motif": float((terms["repeated_motif"] > 0).mean()),
        "starting_with_tonic": float((terms["tonic"][:, 0] > 0).mean()),
        "leaps_resolved": resolved / (resolved + doubled) if resolved + doubled else float("nan"),
        "leaps_per_composition": (resolved + doubled) / len(compositions),
        "unique_max": float(high.mean()),
        "unique_min": float(low.mean()),
        "distinct_compositions": len(np.unique(compositions.actions, axis=0)),
    }
    for column, lag in enumerate((1, 2, 3)):
        stats[f"autocorrelation_lag{lag}"] = float(rho[:, column].mean())
    return stats


def format_value(value: float, kind: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{100 * value:.2f}%" if kind == "pct" else f"{value:.3f}"


def markdown_table(columns: dict[str, dict[str, float]], with_paper: bool = True) -> str:
    """A Markdown table with one column per named statistics dict (and the paper's Q column)."""
    names = list(columns) + (["paper Q"] if with_paper else [])
    lines = ["| statistic | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for key, label, kind in ROWS:
        cells = [format_value(stats.get(key, float("nan")), kind) for stats in columns.values()]
        if with_paper:
            cells.append(format_value(PAPER_Q.get(key, float("nan")), kind))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(run_dir: str | os.PathLike, summary: dict[str, Any]) -> None:
    """Write ``summary.json`` and ``summary.md`` (atomically).

    ``summary`` holds ``config``, counters, and statistics dicts under ``"sampled"`` and
    ``"greedy"`` (and optionally ``"note_rnn"``, the untuned model's).
    """
    from pathlib import Path

    run_dir = Path(run_dir)
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    config = summary["config"]
    columns = {
        label: summary[key]
        for key, label in (
            ("note_rnn", "Note RNN (untuned)"),
            ("sampled", f"{config['algo']} sampled"),
            ("greedy", f"{config['algo']} greedy"),
        )
        if key in summary
    }
    text = (
        f"# RL Tuner run: `{config['algo']}`, preset `{config['preset']}`, "
        f"seed {config['seed']}\n\n"
        f"{summary['global_step']:,} training transitions, {summary['gradient_steps']:,} gradient "
        f"steps, {summary['train_seconds']:.0f} s of training ({summary['total_seconds']:.0f} s "
        f"with evaluation).\n\n"
        f"Statistics of {summary['sampled']['compositions']} compositions per column (random "
        "one-token primers; *sampled* draws each token from the softmax of the policy's logits, "
        "as the paper's evaluation; *greedy* takes their argmax).\n\n" + markdown_table(columns)
    )
    atomic_write_text(run_dir / "summary.md", text)
