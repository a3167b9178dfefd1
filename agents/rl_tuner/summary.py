"""Music-theory statistics of an agent's compositions and the run summary, in the evaluation
suite's names.

:func:`composition_stats` feeds the periodic ``eval/`` TensorBoard scalars: the evaluation suite's
statistics (:mod:`melody_env.evaluation.metrics`, named as in ``melody-rl evaluate``'s
``report.json``: ``not_in_key``, ``starts_with_tonic``, ``unique_max``, ``in_motif``, ...), read
off the env's per-step breakdown (``info["reward_terms"]``) that the agent recorded while
composing, plus the whole-composition columns (extremes, autocorrelation) of
:func:`~melody_env.evaluation.metrics.composition_columns`, the diversity of
:func:`melody_env.evaluation.music.diversity` and the exploit watch of
:func:`~melody_env.evaluation.music.music_columns`. Shares are fractions in [0, 1].

The run's final ``summary.json``/``summary.md``/``report.json`` come from the evaluation suite
(:func:`evaluation_summary`: the same report as ``melody-rl evaluate``, with the judge, the KL to
the Note RNN and greedy diversity), written by :func:`agents.baselines.summary.write_summary`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from agents.rl_tuner.rollout import Compositions
from melody_env.evaluation import EvaluationResult, music
from melody_env.evaluation.metrics import composition_columns, table_from_reward_terms
from melody_env.evaluation.music_summary import MUSIC_STATISTICS
from melody_env.evaluation.stats import summarize


def composition_stats(compositions: Compositions) -> dict[str, float]:
    """The statistics of the module docstring for ``compositions``, by the evaluation suite's
    names (those undefined for these compositions left out), plus ``compositions`` (their
    number), ``music_theory_per_composition`` (mean r_MT sum), ``return`` (mean env return) and
    ``leaps_per_composition`` ((resolved + doubled leaps) / compositions)."""
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
    estimates = {
        name: e for name, e in estimates.items() if e.value is not None and np.isfinite(e.value)
    }
    count = len(compositions)
    leaps = int(table["leaps_resolved"].sum() + table["leaps_doubled"].sum())
    stats = {
        "compositions": count,
        "music_theory_per_composition": float(table["music_theory"].mean()),
        "return": float(compositions.rewards.sum(axis=1).mean()),
        "leaps_per_composition": leaps / count,
        **music.diversity(compositions.actions),
    }
    for name, estimate in estimates.items():  # the suite's statistics, by the suite's names
        stats[name] = estimate.value
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
        NaN where undefined) and the results for :func:`write_summary`.
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
    return columns, results


def run_header(summary: dict[str, Any]) -> str:
    """The line under ``summary.md``'s title: the run's algorithm, preset, seed and counters."""
    config = summary["config"]
    return (
        f"`{config['algo']}`, preset `{config.get('preset', 'default')}`, seed {config['seed']}: "
        f"{summary['global_step']:,} training transitions, {summary['gradient_steps']:,} "
        f"gradient steps, {summary['train_seconds']:.0f} s of training "
        f"({summary['total_seconds']:.0f} s with evaluation). *sampled*: each token drawn "
        "from the softmax of the policy's logits (the paper's protocol); *greedy*: their argmax."
    )


def write_summary(
    run_dir: str | os.PathLike,
    summary: dict[str, Any],
    results: list[EvaluationResult] | None = None,
) -> None:
    """A run's ``summary.json`` (and with ``results``, :func:`evaluation_summary`'s,
    ``summary.md`` and ``report.json``): :func:`agents.baselines.summary.write_summary` under
    :func:`run_header`."""
    from agents.baselines.summary import write_summary as write_suite_summary

    write_suite_summary(run_dir, summary, results or [], "RL Tuner run", run_header(summary))
