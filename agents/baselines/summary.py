"""A run's summary through the evaluation suite: ``summary.json`` and ``summary.md``.

The same files as ``melody-rl train`` writes for the RL Tuner agent: the config, the counters,
and the statistics of compositions *sampled* from the policy (its stochastic ``predict``, the
paper's protocol) and *greedy* (``deterministic=True``), here computed by
:func:`melody_env.evaluation.evaluate` (so with the suite's names, e.g. ``starts_with_tonic``),
with the untuned Note RNN on the same primers beside them. ``summary.md`` is the suite's
Table-1 report (95% bootstrap intervals, the paper's columns) with its music rows (the 5-gram
judge, histogram overlaps, KL to the Note RNN, diversity of sampled and greedy actions, exploit
watch); ``report.json`` holds it in full.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from melody_env.atomic import atomic_write_text
from melody_env.envs.env_config import EnvConfig
from melody_env.evaluation import EvaluationResult, NoteRNNPolicy, evaluate
from melody_env.evaluation.evaluate import ENV_KWARGS
from melody_env.evaluation.music_summary import greedy_statistics
from melody_env.evaluation.report import build_report, render_markdown
from melody_env.evaluation.stats import Estimate
from melody_env.models.note_rnn import NoteRNN

BOOTSTRAP = 200
"""Bootstrap resamples of the summary's intervals (the report's default is 1000; 200 keeps the
summary of a short run short)."""


def statistics(result: EvaluationResult) -> dict[str, float]:
    """``{statistic: value}`` of an evaluation (``None`` where undefined), plus ``n``."""
    values: dict[str, Any] = {"compositions": result.n}
    for name, estimate in result.summary.items():
        values[name] = estimate.to_dict()["value"]
    return values


def evaluation_env_kwargs(env: EnvConfig) -> dict[str, Any]:
    """``env``'s arguments that :func:`~melody_env.evaluation.evaluate` takes as ``env_kwargs``
    (all but those it sets itself: key, primer, reward RNN, render mode), so a run is summarised
    on the task it trained on.

    >>> evaluation_env_kwargs(EnvConfig(key="G major", reward_scaler=1.0))["reward_scaler"]
    1.0
    """
    return {name: getattr(env, name) for name in ENV_KWARGS}


def evaluate_policy(
    policy: Any,
    n: int,
    seed: int,
    key: str,
    reward_rnn: NoteRNN,
    env_kwargs: dict[str, Any] | None = None,
    deterministic: bool = False,
    name: str | None = None,
    greedy_diversity: bool = True,
    progress: Callable[[float], None] | None = None,
) -> EvaluationResult:
    """:func:`~melody_env.evaluation.evaluate` with the summary's settings (by default with a
    greedy pass for the ``greedy_*`` diversity rows); ``progress`` as ``evaluate``'s."""
    return evaluate(
        policy,
        n=n,
        seed=seed,
        key=key,
        reward_rnn=reward_rnn,
        deterministic=deterministic,
        env_kwargs=env_kwargs,
        n_bootstrap=BOOTSTRAP,
        name=name,
        greedy_diversity=greedy_diversity,
        progress=progress,
    )


def summarize_policy(
    policy: Any,
    label: str,
    n: int,
    seed: int,
    key: str,
    reward_rnn: NoteRNN,
    env_kwargs: dict[str, Any] | None = None,
    note_rnn_column: bool = True,
    progress: bool = False,
) -> tuple[dict[str, dict[str, Any]], list[EvaluationResult]]:
    """Evaluate ``policy`` sampled and greedy (and the Note RNN); return the statistics by
    summary key (``sampled``, ``greedy``, ``note_rnn``) and the results for the report. With
    ``progress``, a bar of the compositions with an ETA (on stderr)."""
    from agents.progress import fraction_updater, progress_bar

    columns = [("sampled", policy, False, f"{label} sampled", False)]
    columns.append(("greedy", policy, True, f"{label} greedy", False))
    if note_rnn_column:  # first in the report; its own greedy pass for its diversity rows
        columns.insert(0, ("note_rnn", NoteRNNPolicy(), False, "Note RNN (untuned)", True))
    results = []
    with progress_bar(n * len(columns), "evaluate", "composition", enabled=progress) as bar:
        for mode, column_policy, deterministic, name, greedy_diversity in columns:
            result = evaluate_policy(
                column_policy,
                n,
                seed,
                key,
                reward_rnn,
                env_kwargs,
                deterministic,
                name,
                greedy_diversity,
                fraction_updater(bar, n),
            )
            results.append((mode, result))
    # Both columns carry the greedy diversity rows, read off the greedy column's compositions.
    greedy_rows = greedy_statistics(results[-1][1].tokens)
    for _, result in results[-2:]:
        result.summary.update({k: Estimate(float(v)) for k, v in greedy_rows.items()})
    return {mode: statistics(result) for mode, result in results}, [r for _, r in results]


def write_summary(
    run_dir: str | os.PathLike,
    summary: dict[str, Any],
    results: Sequence[EvaluationResult],
    title: str,
    header: str,
) -> None:
    """Write ``summary.json``, and ``summary.md`` + ``report.json`` when there are results."""
    run_dir = Path(run_dir)
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    if not results:
        return
    report = build_report(results, title)
    text = render_markdown(report)
    first, _, rest = text.partition("\n")
    atomic_write_text(run_dir / "summary.md", f"{first}\n\n{header}\n{rest}")
    atomic_write_text(
        run_dir / "report.json", json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    )
