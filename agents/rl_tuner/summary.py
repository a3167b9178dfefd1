"""Music-theory statistics of an agent's compositions (the paper's Table 1) and the run summary.

The statistics are the evaluation suite's (:mod:`melody_env.evaluation.metrics`), read off the
env's per-step breakdown (``info["reward_terms"]``) that the agent recorded while composing, plus
the whole-composition columns (extremes, autocorrelation) of
:func:`~melody_env.evaluation.metrics.composition_columns`. The names below are the keys of
``summary.json`` and of the ``eval/`` TensorBoard scalars:

==========================  ==================================================================
key                         evaluation-suite statistic
==========================  ==================================================================
``music_theory``            r_MT per step
``log_prob``                log p(a | s) per step under the reward RNN (the Note RNN)
``excessively_repeated``    notes excessively repeated
``not_in_key``              notes not in key
``in_motif``                notes in motif
``in_repeated_motif``       notes in repeated motif
``starting_with_tonic``     compositions starting with tonic
``leaps_resolved``          leaps resolved (resolved / (resolved + doubled))
``unique_max``/``_min``     compositions with unique max / min note
``autocorrelation_lagK``    mean autocorrelation at lag K, over the compositions where it is
                            defined
``distinct_openings`` ...   the diversity of :func:`melody_env.evaluation.music.diversity`
                            (distinct compositions, openings, 4-grams, top-opening share)
``starts_on_lowest`` ...    the exploit watch of :func:`~melody_env.evaluation.music.
                            music_columns` (shares; octave-plus leaps per composition)
==========================  ==================================================================

Shares are fractions in [0, 1]; the Markdown table prints them as percentages. These cheap
statistics feed the periodic ``eval/`` scalars. The run's final ``summary.md``/``summary.json``
come from the evaluation suite instead (:func:`evaluation_summary`: the same report as
``melody-rl evaluate``, with the judge, the KL to the Note RNN and greedy diversity).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from agents.rl_tuner.rollout import Compositions
from melody_env.atomic import atomic_write_text
from melody_env.evaluation import EvaluationResult, music
from melody_env.evaluation.metrics import composition_columns, table_from_reward_terms
from melody_env.evaluation.music_summary import MUSIC_STATISTICS
from melody_env.evaluation.stats import summarize

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
    ("kl", "KL(policy ‖ Note RNN) per step", "num"),
    ("judge_quality", "quality: under the corpus 5-gram (nats/token)", "num"),
    ("judge_coverage", "coverage: corpus under their 5-gram (nats/token)", "num"),
    ("interval_overlap", "interval histogram overlap with the corpus", "num"),
    ("distinct_openings", "distinct openings (first 8 tokens)", "int"),
    ("top_opening_share", "most common opening", "pct"),
    ("greedy_distinct_openings", "distinct openings, greedy", "int"),
    ("starts_on_lowest", "compositions starting on C3", "pct"),
    ("notes_at_repetition_limit", "notes held to the repetition limit", "pct"),
    ("octave_leaps", "octave-plus leaps per composition", "num"),
)
"""(statistic, label, format) of the summary table, in the paper's order where it has them."""


_SUITE_NAMES = {"starting_with_tonic": "starts_with_tonic"}
"""Keys of this summary named differently in the evaluation suite."""


def composition_stats(compositions: Compositions) -> dict[str, float]:
    """The statistics of the module docstring for ``compositions`` (plus counts)."""
    terms = {
        **compositions.terms,
        "music_theory": compositions.music_theory,
        "log_prob": compositions.log_prob,
    }
    table = {
        **composition_columns(compositions.actions),
        **table_from_reward_terms(terms),
        **music.music_columns(compositions.actions),
    }
    exploit = [s for s in MUSIC_STATISTICS if s.group == "exploit"]
    estimates = summarize(table, n_bootstrap=0)
    estimates.update(summarize(table, exploit, n_bootstrap=0))
    count = len(compositions)
    leaps = int(table["leaps_resolved"].sum() + table["leaps_doubled"].sum())
    stats = {
        "compositions": count,
        "music_theory_per_composition": float(table["music_theory"].mean()),
        "return": float(compositions.rewards.sum(axis=1).mean()),
        "leaps_per_composition": leaps / count,
        **music.diversity(compositions.actions),
    }
    for key, _, _ in ROWS:  # the music rows that need the judge or the policy are not here
        if _SUITE_NAMES.get(key, key) in estimates:
            stats[key] = estimates[_SUITE_NAMES.get(key, key)].value
    for statistic in exploit:
        stats[statistic.name] = estimates[statistic.name].value
    return stats


def evaluation_summary(
    agent: Any, config: Any
) -> tuple[dict[str, dict[str, float]], list[EvaluationResult]]:
    """The run's final statistics through the evaluation suite.

    ``config.summary_compositions`` compositions each (seed ``config.seed``, the env of
    ``config``): the agent sampled (its ``predict``, the paper's protocol) and greedy, and the
    untuned Note RNN on the same primers
    (:func:`agents.baselines.summary.summarize_policy`). The suite takes one key: a run trained
    with ``key="any"`` is summarised in C major (``melody-rl evaluate --key all`` gives every
    key).

    Returns:
        The statistics by summary key (``sampled``, ``greedy``, ``note_rnn``; the suite's names,
        NaN where undefined, plus ``starting_with_tonic`` as this module's name for
        ``starts_with_tonic``) and the results for :func:`write_summary`.
    """
    from agents.baselines.summary import summarize_policy
    from melody_env.evaluation.evaluate import ENV_KWARGS

    env_kwargs = {name: getattr(config.env, name) for name in ENV_KWARGS}
    key = config.env.key
    if key == "any":
        key = "C major"
    columns, results = summarize_policy(
        agent,
        config.algo,
        config.summary_compositions,
        config.seed,
        key,
        agent.reward_rnn,
        env_kwargs,
    )
    for stats in columns.values():
        for name, value in stats.items():
            stats[name] = float("nan") if value is None else value
        stats["starting_with_tonic"] = stats["starts_with_tonic"]
    return columns, results


def format_value(value: float, kind: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    if kind == "int":
        return f"{round(value):,}"
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


def write_summary(
    run_dir: str | os.PathLike,
    summary: dict[str, Any],
    results: list[EvaluationResult] | None = None,
) -> None:
    """Write ``summary.json`` and ``summary.md`` (atomically).

    ``summary`` holds ``config``, counters, and statistics dicts under ``"sampled"`` and
    ``"greedy"`` (and optionally ``"note_rnn"``, the untuned model's). With ``results``
    (:func:`evaluation_summary`), ``summary.md`` is the evaluation suite's report of them (the
    same as ``melody-rl evaluate``'s, music rows included) and ``report.json`` is written too;
    without, a compact table of :data:`ROWS`.
    """
    from pathlib import Path

    run_dir = Path(run_dir)
    config = summary["config"]
    if results:
        from agents.baselines.summary import write_summary as write_suite_summary

        header = (
            f"`{config['algo']}`, preset `{config['preset']}`, seed {config['seed']}: "
            f"{summary['global_step']:,} training transitions, {summary['gradient_steps']:,} "
            f"gradient steps, {summary['train_seconds']:.0f} s of training "
            f"({summary['total_seconds']:.0f} s with evaluation). *sampled*: each token drawn "
            "from the softmax of the policy's logits (the paper's protocol); *greedy*: their "
            "argmax."
        )
        write_suite_summary(run_dir, summary, results, "RL Tuner run", header)
        return
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
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
