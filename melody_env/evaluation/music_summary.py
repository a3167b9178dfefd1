"""The music rows of the evaluation: what :func:`~melody_env.evaluation.evaluate` adds to Table 1.

Two kinds of row:

- per-composition ratios (:data:`MUSIC_STATISTICS`, bootstrapped like the Table-1 rows): the
  exploit watch of :func:`~melody_env.evaluation.music.music_columns` and the judge's *quality*
  (:func:`~melody_env.evaluation.judge.quality_columns`);
- statistics of the whole set of compositions (:func:`set_statistics`, no interval): diversity
  (:func:`~melody_env.evaluation.music.diversity`), the histogram overlaps with the corpus test
  split (:func:`~melody_env.evaluation.music.overlaps`) and the judge's *coverage*
  (:func:`~melody_env.evaluation.judge.coverage`); the diversity of greedy actions too
  (``greedy_`` names, :func:`greedy_statistics`).

:data:`MUSIC_ROWS` lists every row with its label, section and format, in report order.

>>> from melody_env.evaluation.judge import JudgeCorpus
>>> corpus = JudgeCorpus([np.array([14, 0, 16, 0, 18, 0] * 6)], [np.array([14, 0, 16, 0] * 8)], {})
>>> tokens = np.array([[14, 0, 16, 0, 18, 0, 16, 0]] * 3)
>>> stats = set_statistics(tokens, "C major", corpus)
>>> stats["distinct_compositions"], stats["interval_overlap"]
(1, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from melody_env.evaluation import judge, music
from melody_env.evaluation.metrics import Statistic, Table
from melody_env.music.keys import Key

MUSIC_STATISTICS: tuple[Statistic, ...] = (
    Statistic("judge_quality", "", "judge_nll", "judge_tokens", False, "judge"),
    Statistic("starts_on_lowest", "", "starts_on_lowest", "one", True, "exploit"),
    Statistic("starts_on_highest", "", "starts_on_highest", "one", True, "exploit"),
    Statistic(
        "notes_at_repetition_limit", "", "notes_at_repetition_limit", "onsets", True, "exploit"
    ),
    Statistic("octave_leaps", "", "octave_leaps", "one", False, "exploit"),
)
"""The per-composition ratios (labels: :data:`MUSIC_ROWS`)."""


@dataclass(frozen=True)
class Row:
    """A row of the report: name (key in the summary), label, section, and format
    (``"percent"``, ``"count"`` or ``"number"``)."""

    name: str
    label: str
    group: str
    format: str = "number"


_DIVERSITY = (
    ("distinct_compositions", "Distinct compositions", "count"),
    ("distinct_openings", "Distinct openings (first 8 tokens)", "count"),
    ("top_opening_share", "Most common opening (share of compositions)", "percent"),
    ("distinct_4grams", "Distinct 4-grams", "count"),
)
_LIMIT_LABEL = f"Notes held to the repetition limit ({music.REPETITION_LIMIT_DURATION} sixteenths)"
MUSIC_ROWS: tuple[Row, ...] = (
    Row("judge_quality", "Quality: compositions under the corpus 5-gram (nats/token)", "judge"),
    Row("judge_coverage", "Coverage: corpus windows under their 5-gram (nats/token)", "judge"),
    Row("pitch_class_overlap", "Pitch-class histogram overlap with the corpus", "judge"),
    Row("interval_overlap", "Interval-size histogram overlap with the corpus", "judge"),
    Row("duration_overlap", "Note-duration histogram overlap with the corpus", "judge"),
    *(Row(name, label, "diversity", kind) for name, label, kind in _DIVERSITY),
    *(
        Row(f"greedy_{name}", f"{text}, greedy", "diversity", kind)
        for name, text, kind in _DIVERSITY
    ),
    Row("starts_on_lowest", "Compositions starting on C3 (lowest pitch)", "exploit", "percent"),
    Row("starts_on_highest", "Compositions starting on B5 (highest pitch)", "exploit", "percent"),
    Row("notes_at_repetition_limit", _LIMIT_LABEL, "exploit", "percent"),
    Row("octave_leaps", "Octave-plus leaps per composition", "exploit"),
)
"""Every music row, in report order."""


def music_table(tokens: np.ndarray, corpus: judge.JudgeCorpus | None = None) -> Table:
    """The per-composition columns :data:`MUSIC_STATISTICS` need."""
    return {**music.music_columns(tokens), **judge.quality_columns(tokens, corpus)}


def set_statistics(
    tokens: np.ndarray, key: Key | str | None = None, corpus: judge.JudgeCorpus | None = None
) -> dict[str, float]:
    """Diversity, the three histogram overlaps with the corpus test split (pitch classes
    transposed for ``key``) and coverage, by row name."""
    corpus = corpus or judge.load_judge_corpus()
    return {
        **music.diversity(tokens),
        **music.overlaps(tokens, corpus.histograms, key),
        "judge_coverage": judge.coverage(tokens, corpus),
    }


def greedy_statistics(tokens: np.ndarray) -> dict[str, float]:
    """The diversity of greedy compositions, as ``greedy_<name>``."""
    return {f"greedy_{name}": value for name, value in music.diversity(tokens).items()}
