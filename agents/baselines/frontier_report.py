"""The frontier's outputs: ``frontier.json``, ``frontier.csv``, ``frontier.md``, ``frontier.png``.

See :mod:`agents.baselines.frontier` for what each holds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from agents.baselines.frontier import (
    FRONTIER_ALGOS,
    budget_text,
    configuration_means,
    pareto_optimal,
    write_csv,
)
from melody_env.atomic import atomic_write_text

TABLE_COLUMNS = (
    ("music_theory", "r_MT/step", 2),
    ("kl", "KL/step", 3),
    ("distinct_openings", "openings", 0),
    ("top_opening_share", "top opening", 2),
    ("greedy_distinct_openings", "greedy openings", 0),
    ("judge_quality", "quality", 2),
    ("judge_coverage", "coverage", 2),
    ("interval_overlap", "interval overlap", 2),
    ("starts_with_tonic", "tonic start", 2),
    ("in_repeated_motif", "repeated motif", 3),
    ("train_seconds", "train s", 0),
)
"""(statistic, header, digits) of ``frontier.md``."""

GOALS = (
    ("excessively_repeated", "Notes excessively repeated", "≤ 0.1%", True, ("≤", 0.001)),
    ("not_in_key", "Notes not in key", "≤ 0.5%", True, ("≤", 0.005)),
    ("starts_with_tonic", "Compositions starting with the tonic", "≥ 50%", True, ("≥", 0.5)),
    ("leaps_resolved", "Leaps resolved", "≥ 92%", True, ("≥", 0.92)),
    ("unique_max", "Unique highest note", "≥ 65%", True, ("≥", 0.65)),
    ("unique_min", "Unique lowest note", "≥ 58%", True, ("≥", 0.58)),
    ("in_motif", "Notes in motif", "≥ 77% (max 78.1%)", True, ("≥", 0.77)),
    ("in_repeated_motif", "Notes in repeated motif", "≤ 1%", True, ("≤", 0.01)),
    ("autocorrelation_lag1", "Mean autocorrelation, lag 1", "\\|·\\| ≤ 0.10", False, ("|≤|", 0.10)),
    ("autocorrelation_lag2", "Mean autocorrelation, lag 2", "\\|·\\| ≤ 0.10", False, ("|≤|", 0.10)),
    ("autocorrelation_lag3", "Mean autocorrelation, lag 3", "\\|·\\| ≤ 0.10", False, ("|≤|", 0.10)),
    (
        "distinct_openings",
        "Distinct openings (first 8 tokens)",
        "≥ 40% of n",
        False,
        ("≥ n ×", 0.4),
    ),
    ("top_opening_share", "Most common opening", "≤ 10%", True, ("≤", 0.10)),
    ("interval_overlap", "\\|Interval\\| overlap with the corpus", "≥ 0.85", False, ("≥", 0.85)),
    ("judge_quality", "Quality (nats/token, lower is better)", "≤ Q's", False, ("≤ Q's +", 0.0)),
    (
        "judge_coverage",
        "Coverage (nats/token, lower is better)",
        "≤ Note RNN's + 0.5",
        False,
        ("≤ Note RNN's +", 0.5),
    ),
    ("kl", "KL(π ‖ Note RNN) per step", "reported", False, None),
    ("music_theory", "r_MT per step", "", False, None),
    ("greedy_distinct_openings", "Distinct openings, greedy", "", False, None),
    ("octave_leaps", "Octave-plus leaps per composition", "", False, None),
    ("duration_overlap", "Note-duration overlap with the corpus", "", False, None),
    ("train_seconds", "Training seconds", "≤ 60 (quiet)", False, None),
)
"""(statistic, label, goal, shown in percent, bound) of ``frontier.md``'s table of every
algorithm at its default: the Table-1 goals and the music lines of the default agent's bar.
``bound`` is what :func:`goals_met` checks, ``(kind, limit)``: ``≤``/``≥`` the limit, ``|≤|``
(the absolute value at most), ``≥ n ×`` (at least the limit times the number of compositions),
``≤ Q's +``/``≤ Note RNN's +`` (at most theirs plus the limit); ``None``: no goal checked
(training seconds depend on the machine)."""


def goals_met(
    stats: dict[str, float], note_rnn: dict[str, float], q: dict[str, float]
) -> dict[str, bool]:
    """Whether a configuration meets each goal of :data:`GOALS` (by statistic name, in the
    table's order), from its means over seeds: 16 goals, or 15 when Q was not swept.

    The Table-1 goals, and the music goals: distinct first-8-token openings at least 40% of
    the compositions, the most common opening at most 10%, |interval| overlap at least 0.85,
    quality at most Q's at its default pull (``q``; left out when Q was not swept), and
    coverage at most the untuned Note RNN's (``note_rnn``) + 0.5 nats/token. A missing or NaN
    statistic is a miss.

    >>> stats = {"excessively_repeated": 0.0, "not_in_key": 0.004, "starts_with_tonic": 0.6,
    ...     "leaps_resolved": 0.95, "unique_max": 0.7, "unique_min": 0.6, "in_motif": 0.775,
    ...     "in_repeated_motif": 0.0, "autocorrelation_lag1": -0.1, "autocorrelation_lag2": 0.0,
    ...     "autocorrelation_lag3": 0.11, "compositions": 2000, "distinct_openings": 800,
    ...     "top_opening_share": 0.1, "interval_overlap": 0.84, "judge_coverage": 1.7,
    ...     "judge_quality": 2.0}
    >>> met = goals_met(stats, {"judge_coverage": 1.2}, {"judge_quality": 1.9})
    >>> sum(met.values()), [name for name, ok in met.items() if not ok]
    (13, ['autocorrelation_lag3', 'interval_overlap', 'judge_quality'])
    >>> len(goals_met(stats, {"judge_coverage": 1.2}, {}))
    15
    """

    def value(name: str, source: dict[str, float] = stats) -> float:
        number = source.get(name)
        return float(number) if isinstance(number, (int, float)) else math.nan

    checks = {}
    for name, _, _, _, bound in GOALS:
        if bound is None or (bound[0] == "≤ Q's +" and not q):
            continue
        kind, limit = bound
        measured = value(name)
        if kind == "≤":
            checks[name] = measured <= limit
        elif kind == "≥":
            checks[name] = measured >= limit
        elif kind == "|≤|":
            checks[name] = abs(measured) <= limit
        elif kind == "≥ n ×":
            checks[name] = measured >= limit * value("compositions")
        elif kind in ("≤ Q's +", "≤ Note RNN's +"):
            reference = q if kind == "≤ Q's +" else note_rnn
            checks[name] = measured <= value(name, reference) + limit
        else:
            raise ValueError(f"goal {name!r}: unknown bound {kind!r}")
    return checks


def write_outputs(results: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write the four files into ``out``; return their paths."""
    means = configuration_means(results["points"])
    optimal = pareto_optimal(
        {key: (m.get("music_theory", math.nan), m.get("kl", math.nan)) for key, m in means.items()}
    )
    results["pareto_optimal"] = [list(key) for key in sorted(optimal)]
    paths = {
        "json": out / "frontier.json",
        "csv": write_csv(results, out / "frontier.csv", optimal),
        "md": out / "frontier.md",
    }
    atomic_write_text(paths["json"], json.dumps(results, indent=1) + "\n")
    atomic_write_text(paths["md"], frontier_markdown(results, means, optimal))
    try:
        paths["png"] = frontier_plot(results, means, optimal, out / "frontier.png")
    except ImportError as error:  # matplotlib missing
        print(f"no frontier plot: {error}")
    return paths


def _cell(mean: float, std: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:,.{digits}f} ± {std:,.{digits}f}" if std else f"{mean:,.{digits}f}"


def frontier_markdown(
    results: dict[str, Any], means: dict[tuple[str, float], dict[str, float]], optimal: set
) -> str:
    """Per configuration: mean ± std over seeds; ``**`` marks the Pareto-optimal ones."""
    config = results["config"]
    reference = configuration_means(results["references"]).get(("note_rnn", 0.0), {})
    q_default = means.get(("q", FRONTIER_ALGOS["q"].default), {})
    header = [
        "algorithm",
        "knob = value",
        "Pareto",
        "goals met",
        *(label for _, label, _ in TABLE_COLUMNS),
    ]
    lines = [
        "## Reward–KL frontier",
        "",
        f"{budget_text(config['total_steps'])} per run, seeds "
        f"{', '.join(map(str, config['seeds']))}, {config['eval_n']:,} sampled compositions per "
        f"evaluation (key {config['key']}){_sweep_time(results['wall_seconds'])}. "
        "Cells: mean ± std over seeds. Pareto: no other configuration has a higher-or-equal "
        "r_MT per step and a lower-or-equal KL per step. Goals met: of the Table-1 and music "
        "goals of the table below, by the means over seeds. Quality/coverage: nats/token under "
        "the 5-gram judge (lower is better).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 3 + ["--:"] * (1 + len(TABLE_COLUMNS))) + "|",
    ]
    rows = [(("note_rnn", 0.0), reference)] if reference else []
    rows += sorted(means.items())
    misses = []
    for (algo, value), stats in rows:
        met = goals_met(stats, reference, q_default)
        missed = [name for name, ok in met.items() if not ok]
        knob = FRONTIER_ALGOS[algo].knob.split(".")[-1] if algo in FRONTIER_ALGOS else ""
        cells = [
            "Note RNN (untuned)" if algo == "note_rnn" else algo,
            f"{knob} = {value:g}" if knob else "",
            "**yes**" if (algo, value) in optimal else "",
            f"{len(met) - len(missed)} of {len(met)}",
        ]
        for name, _, digits in TABLE_COLUMNS:
            cells.append(_cell(stats.get(name, math.nan), stats.get(f"{name}_std", 0.0), digits))
        lines.append("| " + " | ".join(cells) + " |")
        misses.append(f"- {' '.join(cells[:2]).strip()}: {', '.join(missed) or 'none'}")
    lines += ["", "Goals missed, by configuration:", "", *misses]
    lines += ["", *defaults_markdown(reference, means)]
    failed = [r["point"] for r in results["points"] if "error" in r]
    if failed:
        lines += ["", "Failed points (see frontier.json): " + ", ".join(map(str, failed))]
    return "\n".join(lines) + "\n"


def _sweep_time(seconds: float | None) -> str:
    """``"; whole sweep N min"``, or nothing for a report of earlier sweeps."""
    return "" if seconds is None else f"; whole sweep {seconds / 60:.0f} min"


def _seeds_text(count: int) -> str:
    return f"{count} seed" if count == 1 else f"{count} seeds"


def defaults_markdown(
    reference: dict[str, float], means: dict[tuple[str, float], dict[str, float]]
) -> list[str]:
    """Every algorithm at its default knob value (:attr:`FrontierAlgo.default`), one column
    each beside the untuned Note RNN, one row per :data:`GOALS` statistic (mean ± std over
    seeds)."""
    columns = [(("note_rnn", 0.0), "Note RNN (untuned)", reference)] if reference else []
    columns += [
        ((algo, value), f"{algo} ({_seeds_text(stats.get('seeds', 0))})", stats)
        for (algo, value), stats in sorted(means.items())
        if algo in FRONTIER_ALGOS and value == FRONTIER_ALGOS[algo].default
    ]
    if not columns:
        return []
    lines = [
        "## Every algorithm at its default: Table 1 and the music",
        "",
        "| statistic | goal | " + " | ".join(label for _, label, _ in columns) + " |",
        "|---|---|" + "--:|" * len(columns),
    ]
    for name, label, goal, percent, _ in GOALS:
        cells = []
        for _, _, stats in columns:
            mean, std = stats.get(name, math.nan), stats.get(f"{name}_std", 0.0)
            scale, digits = (100.0, 1) if percent else (1.0, 0 if "openings" in name else 3)
            if name == "train_seconds":
                digits = 0
            cell = _cell(mean * scale, std * scale, digits)
            cells.append(cell + "%" if percent and cell != "n/a" else cell)
        lines.append(f"| {label} | {goal} | " + " | ".join(cells) + " |")
    return lines


def frontier_plot(
    results: dict[str, Any],
    means: dict[tuple[str, float], dict[str, float]],
    optimal: set,
    path: Path,
) -> Path:
    """Left: r_MT/step vs KL/step; right: judge quality vs coverage; colour = distinct openings."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from melody_env.evaluation.plots import _figure, _save

    figure = _figure(13.0, 5.2)
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    records = [r for r in [*results["references"], *results["points"]] if "statistics" in r]
    openings = [r["statistics"].get("distinct_openings") or 0 for r in records]
    norm = Normalize(0, max([*openings, 1]))
    cmap = colormaps["viridis"]
    markers = dict(zip([*FRONTIER_ALGOS, "note_rnn"], "osD^vP*X", strict=False))

    def stat(stats: dict, name: str) -> float:
        value = stats.get(name)
        return float(value) if isinstance(value, (int, float)) else math.nan

    for record in records:  # each seed: a small dot
        stats, algo = record["statistics"], record["point"]["algo"]
        colour = cmap(norm(stat(stats, "distinct_openings")))
        left.scatter(stat(stats, "kl"), stat(stats, "music_theory"), s=12, color=colour, alpha=0.5)
        right.scatter(
            stat(stats, "judge_quality"), stat(stats, "judge_coverage"), s=12, color=colour
        )
    reference = configuration_means(results["references"])
    for (algo, value), stats in [*means.items(), *reference.items()]:
        colour = cmap(norm(stats.get("distinct_openings", 0.0)))
        marker = markers.get(algo, "o")
        label = "Note RNN" if algo == "note_rnn" else f"{algo} {value:g}"
        edge = "red" if (algo, value) in optimal else "black"
        for axis, x, y in (
            (left, stats.get("kl", math.nan), stats.get("music_theory", math.nan)),
            (right, stats.get("judge_quality", math.nan), stats.get("judge_coverage", math.nan)),
        ):
            axis.scatter(x, y, s=70, marker=marker, color=colour, edgecolors=edge, linewidths=1.2)
            if np.isfinite(x) and np.isfinite(y):
                axis.annotate(label, (x, y), fontsize=6, xytext=(4, 3), textcoords="offset points")
    front = sorted(
        (means[key]["kl"], means[key]["music_theory"]) for key in optimal if key in means
    )
    if front:
        left.plot(*zip(*front, strict=True), color="red", linewidth=1, label="Pareto frontier")
        left.legend(fontsize=7, loc="lower right")
    left.set_xlabel("KL(π ‖ Note RNN) per step (nats)", fontsize=9)
    left.set_ylabel("r_MT per step", fontsize=9)
    left.set_title("Reward vs distance from the prior", fontsize=10)
    right.set_xlabel("quality: compositions under the corpus 5-gram (nats/token)", fontsize=9)
    right.set_ylabel("coverage: corpus windows under their 5-gram (nats/token)", fontsize=9)
    right.set_title("Data-likeness under the 5-gram judge (lower is better)", fontsize=10)
    for axis in (left, right):
        axis.grid(alpha=0.3)
    colorbar = figure.colorbar(
        ScalarMappable(norm, cmap),
        ax=[left, right],
        fraction=0.03,
    )
    colorbar.set_label("distinct openings (of the sampled compositions)", fontsize=8)
    figure.suptitle(
        f"Reward–KL frontier: {budget_text(results['config']['total_steps'])}, seeds "
        f"{', '.join(map(str, results['config']['seeds']))}; markers: algorithm, red edge: "
        "Pareto-optimal",
        fontsize=10,
    )
    return _save(figure, path)
