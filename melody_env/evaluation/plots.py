"""PNG figures, headless: piano rolls, training curves, reward-term histograms.

Figures are drawn with matplotlib's object API on the Agg canvas (no ``pyplot``, no global
backend switch, no window) and written atomically. matplotlib is the ``plot`` extra.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from melody_env.atomic import atomic_path
from melody_env.io.render import render_rgb
from melody_env.music.encoding import MAX_PITCH, MIN_PITCH, pitch_name
from melody_env.music.keys import Key
from melody_env.rewards.rules import MUSIC_THEORY_RULES

TRAINING_METRICS = {
    "charts/music_theory": "r_MT",
    "charts/log_prob": "log p (Note RNN)",
    "charts/episodic_return": "total reward (episodic return)",
}
"""TensorBoard tags of the training curves and their axis labels."""
STEP_COLUMNS = ("global_step", "step", "timesteps", "time/total_timesteps")
"""Names of the step column in a CSV or JSON-lines log."""


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


def piano_roll_grid(
    tokens: np.ndarray,
    key: Key | str,
    path: str | os.PathLike,
    titles: Sequence[str] | None = None,
    columns: int = 2,
    steps_per_bar: int = 16,
    max_compositions: int = 8,
) -> Path:
    """A grid of piano rolls, one per composition, the key's scale shaded.

    Pitch rows in the key are light, the others grey (:func:`~melody_env.io.render.render_rgb`);
    notes are blue boxes with a dark onset; beat lines every 4 steps, bar lines every
    ``steps_per_bar``. Only the rows between the lowest and highest pitch used (± 2) are shown.

    Args:
        tokens: ``[n, L]`` compositions (the first ``max_compositions`` are drawn).
        key: their key.
        path: the PNG to write.
        titles: one title per composition.
        columns: panels per row.
        steps_per_bar: sixteenths per bar.
        max_compositions: at most this many panels.
    """
    key = Key.from_name(key)
    tokens = np.atleast_2d(np.asarray(tokens))[:max_compositions]
    count = len(tokens)
    if count == 0:
        raise ValueError("piano_roll_grid needs at least one composition")
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    length = tokens.shape[1]
    pitches = tokens[tokens >= 2] + MIN_PITCH - 2
    low = max(MIN_PITCH, int(pitches.min()) - 2) if pitches.size else 57
    high = min(MAX_PITCH, int(pitches.max()) + 2) if pitches.size else 72
    figure = _figure(4.2 * columns, 0.35 + 2.6 * rows)
    for index, composition in enumerate(tokens):
        axes = figure.add_subplot(rows, columns, index + 1)
        image = render_rgb(composition, key, steps_per_bar, cell=(8, 8))
        top = (MAX_PITCH - high) * 8
        bottom = (MAX_PITCH - low + 1) * 8
        axes.imshow(
            image[top:bottom],
            aspect="auto",
            interpolation="nearest",
            extent=(0, length, low - 0.5, high + 0.5),
        )
        ticks = [p for p in range(low, high + 1) if p % 12 in (0, 7) or p in (low, high)]
        axes.set_yticks(ticks, [pitch_name(p) for p in ticks], fontsize=7)
        axes.set_xticks(
            range(0, length + 1, 4), [str(s) for s in range(0, length + 1, 4)], fontsize=7
        )
        axes.set_title(titles[index] if titles else f"composition {index}", fontsize=8)
    figure.suptitle(f"{key.name}: light rows are the scale, grey rows out of key", fontsize=9)
    figure.tight_layout()
    return _save(figure, path)


def read_training_log(run_dir: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The :data:`TRAINING_METRICS` of a run: ``tag -> (steps, values)``, sorted by step.

    Reads TensorBoard event files (``events.out.tfevents.*``, through tensorboard's
    ``EventAccumulator``) anywhere under ``run_dir``; if there are none, a CSV (header with a
    step column of :data:`STEP_COLUMNS` and the tags, with or without the ``charts/`` prefix) or
    a JSON-lines file (one object per logged step, same names).
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    points: dict[str, list[tuple[float, float]]] = {tag: [] for tag in TRAINING_METRICS}
    event_files = sorted(run_dir.rglob("events.out.tfevents.*"))
    if event_files:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        for event_file in event_files:
            accumulator = EventAccumulator(str(event_file), size_guidance={"scalars": 0})
            accumulator.Reload()
            available = set(accumulator.Tags().get("scalars", []))
            for tag in TRAINING_METRICS:
                if tag in available:
                    points[tag] += [(e.step, e.value) for e in accumulator.Scalars(tag)]
    else:
        for record in _tabular_records(run_dir):
            step = next((record[c] for c in STEP_COLUMNS if record.get(c) not in (None, "")), None)
            for tag in TRAINING_METRICS:
                value = record.get(tag, record.get(tag.split("/", 1)[1]))
                if step is not None and value not in (None, ""):
                    points[tag].append((float(step), float(value)))
    curves = {}
    for tag, pairs in points.items():
        if pairs:
            pairs.sort()
            curves[tag] = (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
    return curves


def _tabular_records(run_dir: Path) -> list[dict]:
    records: list[dict] = []
    for path in sorted(run_dir.rglob("*.csv")):
        with open(path, newline="") as handle:
            records += list(csv.DictReader(handle))
    for path in sorted(run_dir.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records


def training_curves(run_dir: str | os.PathLike, path: str | os.PathLike, smooth: int = 1) -> Path:
    """Plot r_MT, log p and the total reward against the step, one panel each.

    Args:
        run_dir: the run's folder (TensorBoard events, or a CSV / JSON-lines log).
        path: the PNG to write.
        smooth: moving-average window in logged points (1: raw).

    Raises:
        ValueError: no known metric in the run.
    """
    curves = read_training_log(run_dir)
    if not curves:
        raise ValueError(
            f"no training metric found under {run_dir}; expected TensorBoard scalars or CSV/JSONL "
            f"columns named {sorted(TRAINING_METRICS)}"
        )
    figure = _figure(4.0 * len(TRAINING_METRICS), 3.2)
    for index, (tag, label) in enumerate(TRAINING_METRICS.items()):
        axes = figure.add_subplot(1, len(TRAINING_METRICS), index + 1)
        if tag in curves:
            steps, values = curves[tag]
            if smooth > 1 and len(values) >= smooth:
                values = np.convolve(values, np.ones(smooth) / smooth, mode="valid")
                steps = steps[smooth - 1 :]
            axes.plot(steps, values, linewidth=1.2, marker="o" if len(values) <= 30 else None)
        else:
            axes.text(0.5, 0.5, "not logged", ha="center", va="center", transform=axes.transAxes)
        axes.set_title(label, fontsize=9)
        axes.set_xlabel("step", fontsize=8)
        axes.grid(alpha=0.3)
    figure.suptitle(f"training curves: {Path(run_dir).name}", fontsize=9)
    figure.tight_layout()
    return _save(figure, path)


def reward_term_histograms(
    tables: Mapping[str, Mapping[str, np.ndarray]],
    path: str | os.PathLike,
    bins: int = 30,
) -> Path:
    """Histograms of each reward term's sum per composition (r_MT, its nine rules, log p),
    one panel per term, one colour per model.

    Args:
        tables: model name -> its per-composition table (``EvaluationResult.table``).
        path: the PNG to write.
        bins: histogram bins per panel.
    """
    terms = ["music_theory", *(f"reward/{name}" for name in MUSIC_THEORY_RULES), "log_prob"]
    columns = 4
    rows = math.ceil(len(terms) / columns)
    figure = _figure(3.4 * columns, 2.5 * rows)
    for index, term in enumerate(terms):
        axes = figure.add_subplot(rows, columns, index + 1)
        arrays = {name: np.asarray(t[term], float) for name, t in tables.items() if term in t}
        arrays = {name: a[np.isfinite(a)] for name, a in arrays.items()}
        arrays = {name: a for name, a in arrays.items() if a.size}
        if arrays:
            low = min(a.min() for a in arrays.values())
            high = max(a.max() for a in arrays.values())
            edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
            for name, values in arrays.items():
                axes.hist(
                    values, bins=edges, histtype="step", linewidth=1.2, label=name, density=True
                )
        axes.set_title(term.removeprefix("reward/") + " (sum per composition)", fontsize=8)
        axes.tick_params(labelsize=7)
    handles, labels = figure.axes[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="lower right", fontsize=8)
    figure.suptitle("distribution of each reward term", fontsize=9)
    figure.tight_layout()
    return _save(figure, path)
