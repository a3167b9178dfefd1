"""Estimates with bootstrap confidence intervals, and mean ± std across training seeds.

Every statistic of :data:`~melody_env.evaluation.metrics.STATISTICS` is a ratio of sums over
compositions, ``sum(numerator) / sum(denominator)``. Its confidence interval is the percentile
bootstrap over compositions: resample the ``n`` compositions with replacement ``n_bootstrap``
times and take the 2.5% and 97.5% quantiles of the recomputed ratio. All statistics share the
same resamples, computed as one matrix product per chunk of replicates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from melody_env.evaluation.metrics import STATISTICS, Statistic, Table

BOOTSTRAP_CHUNK = 50
"""Replicates drawn per matrix product (memory: chunk x n weights)."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval (NaN where not available)."""

    value: float
    low: float = math.nan
    high: float = math.nan

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready: NaN becomes ``None``."""
        return {k: (None if math.isnan(v) else v) for k, v in asdict(self).items()}


def statistic_columns(table: Table, statistic: Statistic) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-composition numerator and denominator of ``statistic``; ``None`` if the table lacks
    a column or holds NaN in it (e.g. the KL when the policy's distribution is unknown)."""
    n = len(table["steps"])
    names = [statistic.numerator, *statistic.denominator.split("+")]
    if any(name != "one" and name not in table for name in names):
        return None
    numerator = np.asarray(table[statistic.numerator], np.float64)
    denominator = np.zeros(n)
    for name in statistic.denominator.split("+"):
        denominator = denominator + (np.ones(n) if name == "one" else table[name])
    if np.isnan(numerator).any():
        return None
    return numerator, denominator


def bootstrap_ratios(
    numerators: np.ndarray,
    denominators: np.ndarray,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap interval of ``sum(num) / sum(den)`` for each column.

    Args:
        numerators, denominators: ``[n, k]`` per-composition values of ``k`` ratios.
        n_bootstrap: resamples of the ``n`` compositions.
        seed: seeds the resampling.
        confidence: coverage of the interval.

    Returns:
        ``(low [k], high [k])``; NaN where a ratio is undefined in most resamples.

    >>> hits = np.array([[1.0]] * 30 + [[0.0]] * 70)
    >>> low, high = bootstrap_ratios(hits, np.ones_like(hits), n_bootstrap=400)
    >>> bool(0.18 < low[0] < 0.3 < high[0] < 0.42)
    True
    """
    numerators = np.asarray(numerators, np.float64)
    denominators = np.asarray(denominators, np.float64)
    n, k = numerators.shape
    if n == 0 or n_bootstrap < 1:
        return np.full(k, math.nan), np.full(k, math.nan)
    # Columns contiguous: (k x n) @ (n x chunk) is the fast layout for BLAS.
    stacked = np.ascontiguousarray(np.concatenate([numerators, denominators], axis=1).T)
    rng = np.random.default_rng(seed)
    ratios = np.empty((n_bootstrap, k))
    for start in range(0, n_bootstrap, BOOTSTRAP_CHUNK):
        size = min(BOOTSTRAP_CHUNK, n_bootstrap - start)
        draws = rng.integers(0, n, size=(size, n))
        weights = np.stack([np.bincount(row, minlength=n) for row in draws]).astype(np.float64)
        sums = stacked @ np.ascontiguousarray(weights.T)  # [2k, size]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios[start : start + size] = (sums[:k] / sums[k:]).T
    tail = (1.0 - confidence) / 2.0 * 100.0
    ratios = np.where(np.isfinite(ratios), ratios, np.nan)
    defined = np.isfinite(ratios).mean(axis=0) >= 0.5
    low, high = np.full(k, math.nan), np.full(k, math.nan)
    if defined.any():
        low[defined] = np.nanpercentile(ratios[:, defined], tail, axis=0)
        high[defined] = np.nanpercentile(ratios[:, defined], 100 - tail, axis=0)
    return low, high


def summarize(
    table: Table,
    statistics: Iterable[Statistic] = STATISTICS,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Estimate]:
    """Each statistic's value over all compositions, with its bootstrap interval.

    ``n_bootstrap=0`` skips the intervals (NaN).
    """
    statistics = list(statistics)
    estimates = {s.name: Estimate(math.nan) for s in statistics}
    available = [(s, cols) for s in statistics if (cols := statistic_columns(table, s)) is not None]
    if not available:
        return estimates
    numerators = np.stack([cols[0] for _, cols in available], axis=1)
    denominators = np.stack([cols[1] for _, cols in available], axis=1)
    total_num, total_den = numerators.sum(axis=0), denominators.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(
            total_den > 0, total_num / np.where(total_den > 0, total_den, 1), math.nan
        )
    low, high = bootstrap_ratios(numerators, denominators, n_bootstrap, seed, confidence)
    for column, (statistic, _) in enumerate(available):
        estimates[statistic.name] = Estimate(
            float(values[column]), float(low[column]), float(high[column])
        )
    return estimates


def mean_std(runs: Sequence[Mapping[str, Estimate | float]]) -> dict[str, Estimate]:
    """Across training seeds: each statistic's mean, and mean ± one sample std as the interval.

    Args:
        runs: one summary per seed (as :func:`summarize` returns, or plain numbers).

    Returns:
        ``Estimate(mean, mean - std, mean + std)`` per statistic (std with ``ddof=1``; 0 for a
        single run).

    >>> runs = [{"x": Estimate(0.2)}, {"x": Estimate(0.4)}, {"x": Estimate(0.6)}]
    >>> estimate = mean_std(runs)["x"]
    >>> round(estimate.value, 3), round(estimate.high - estimate.value, 3)
    (0.4, 0.2)
    """
    names = list(dict.fromkeys(name for run in runs for name in run))
    result = {}
    for name in names:
        values = np.array(
            [
                float(v.value if isinstance(v, Estimate) else v)
                for run in runs
                if (v := run.get(name)) is not None
            ]
        )
        values = values[np.isfinite(values)]
        if len(values) == 0:
            result[name] = Estimate(math.nan)
            continue
        mean = float(values.mean())
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        result[name] = Estimate(mean, mean - std, mean + std)
    return result


def format_mean_std(estimate: Estimate, percent: bool = False, digits: int = 2) -> str:
    """``"12.3 ± 0.4%"`` for a :func:`mean_std` estimate."""
    if math.isnan(estimate.value):
        return "n/a"
    scale, suffix = (100.0, "%") if percent else (1.0, "")
    std = (estimate.high - estimate.value) * scale
    return f"{estimate.value * scale:.{digits}f} ± {std:.{digits}f}{suffix}"
