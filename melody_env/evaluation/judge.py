"""An independent judge of data-likeness: Kneser-Ney 5-grams and the shipped corpus splits.

No agent trains against this model, so it can say how much compositions still look like the
folk corpus without sharing the Note RNN's blind spots. Two directions
(:class:`~melody_env.data.ngram.KneserNeyModel`, order :data:`JUDGE_ORDER`):

- *quality*: the cross-entropy (nats per token) of the compositions under a 5-gram fit on the
  corpus **training** split. Each composition is scored from its start, as
  :meth:`~melody_env.data.ngram.KneserNeyModel.predict` does: every token but the first, its
  context BOS-padded (so ``L - 1`` tokens per composition); the value is the mean of ``-log p``
  over all scored tokens of all compositions. Lower is more corpus-like.
- *coverage*: the cross-entropy of corpus **test**-split windows under a 5-gram fit on the
  compositions. Each test melody is cut into consecutive, non-overlapping windows of
  :data:`WINDOW_LENGTH` (32) tokens from its start (a shorter remainder is dropped); each window
  is scored like a composition (31 tokens). Lower means the compositions still cover more of
  real music: a policy collapsed onto a few tunes scores badly here even if its tunes are likely.

The corpus splits (:func:`~melody_env.data.splits.load_splits` of the shipped Note RNN's five
collections, ``airdsAirs`` held out; train and test only) ship as ``data/judge_corpus.npz``
(uint8 tokens and int64 offsets, no pickle), built by :mod:`melody_env.evaluation.build_judge_data`.
The histograms the evaluation compares with (:mod:`melody_env.evaluation.music`) are those of the
whole test melodies.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from melody_env.data.ngram import KneserNeyModel
from melody_env.evaluation.music import Melodies, _melody_list, histograms

JUDGE_ORDER = 5
"""n of the judge's n-grams."""
WINDOW_LENGTH = 32
"""Tokens per corpus test window scored for coverage (one composition's length)."""
DATA_FILE = Path(__file__).parent / "data" / "judge_corpus.npz"
"""The shipped corpus splits."""


@dataclass(frozen=True)
class JudgeCorpus:
    """The corpus melodies the judge needs: the training and the test split.

    Attributes:
        train: training-split melodies (1-D token arrays).
        test: test-split melodies.
        info: how the file was built (collections, held-out collection, counts).
    """

    train: list[np.ndarray]
    test: list[np.ndarray]
    info: dict

    @functools.cached_property
    def windows(self) -> np.ndarray:
        """``int64 [m, 32]``: the test split cut into :func:`corpus_windows`."""
        return corpus_windows(self.test)

    @functools.cached_property
    def histograms(self) -> dict[str, np.ndarray]:
        """The test split's :func:`~melody_env.evaluation.music.histograms` (the reference)."""
        return histograms(self.test)

    @functools.cached_property
    def model(self) -> KneserNeyModel:
        """The 5-gram fit on the training split (quality's judge)."""
        return KneserNeyModel(JUDGE_ORDER).fit(self.train)


def _split(tokens: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    tokens = tokens.astype(np.int64)
    return [tokens[a:b] for a, b in itertools.pairwise(offsets)]


def save_judge_corpus(
    path: str | os.PathLike, train: list[np.ndarray], test: list[np.ndarray], info: dict
) -> Path:
    """Write the two splits as ``uint8`` tokens and ``int64`` offsets (``np.savez_compressed``)."""
    arrays = {}
    for name, melodies in (("train", train), ("test", test)):
        arrays[f"{name}_tokens"] = np.concatenate(melodies).astype(np.uint8)
        arrays[f"{name}_offsets"] = np.concatenate(
            [[0], np.cumsum([len(m) for m in melodies])]
        ).astype(np.int64)
    arrays["info"] = np.array(json.dumps(info, sort_keys=True))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def load_judge_corpus(path: str | os.PathLike | None = None) -> JudgeCorpus:
    """The shipped splits (``path=None``, read once per process) or those of another file."""
    if path is None:
        return _shipped_corpus()
    return _read(Path(path))


@functools.lru_cache(maxsize=1)
def _shipped_corpus() -> JudgeCorpus:
    return _read(DATA_FILE)


def _read(path: Path) -> JudgeCorpus:
    if not path.is_file():
        raise FileNotFoundError(
            f"judge corpus {path} not found; build it with "
            "`python -m melody_env.evaluation.build_judge_data`"
        )
    with np.load(path, allow_pickle=False) as data:
        return JudgeCorpus(
            train=_split(data["train_tokens"], data["train_offsets"]),
            test=_split(data["test_tokens"], data["test_offsets"]),
            info=json.loads(str(data["info"])),
        )


def corpus_windows(melodies: Melodies, length: int = WINDOW_LENGTH) -> np.ndarray:
    """``int64 [m, length]``: consecutive non-overlapping windows of each melody, from its
    start; a remainder shorter than ``length`` is dropped.

    >>> corpus_windows([np.arange(2, 9), np.arange(2, 4)], length=3).tolist()
    [[2, 3, 4], [5, 6, 7]]
    """
    if length < 2:
        raise ValueError(f"window length must be >= 2, got {length}")
    rows = [
        melody[: len(melody) // length * length].reshape(-1, length)
        for melody in _melody_list(melodies)
    ]
    rows = [row for row in rows if len(row)]
    return np.concatenate(rows) if rows else np.zeros((0, length), np.int64)


def negative_log_likelihoods(model: KneserNeyModel, melodies: Melodies) -> np.ndarray:
    """``float [n]``: per melody, the sum of ``-log p`` (nats) over its scored tokens (all but
    the first)."""
    melody_list = _melody_list(melodies)
    log_probs = model.log_probs(melody_list)
    scored = np.array([max(len(m) - 1, 0) for m in melody_list], np.int64)
    owner = np.repeat(np.arange(len(melody_list)), scored)
    return -np.bincount(owner, weights=log_probs, minlength=len(melody_list))


def cross_entropy(model: KneserNeyModel, melodies: Melodies) -> float:
    """Mean ``-log p`` (nats/token) of every scored token of ``melodies`` under ``model``."""
    melody_list = _melody_list(melodies)
    scored = sum(max(len(m) - 1, 0) for m in melody_list)
    if scored == 0:
        return float("nan")
    return float(negative_log_likelihoods(model, melody_list).sum() / scored)


def quality_columns(tokens: Melodies, corpus: JudgeCorpus | None = None) -> dict[str, np.ndarray]:
    """Per composition: ``judge_nll`` (sum of ``-log p`` under the corpus 5-gram) and
    ``judge_tokens`` (tokens scored); their ratio of sums is *quality*."""
    corpus = corpus or load_judge_corpus()
    melody_list = _melody_list(tokens)
    return {
        "judge_nll": negative_log_likelihoods(corpus.model, melody_list),
        "judge_tokens": np.array([max(len(m) - 1, 0) for m in melody_list], np.int64),
    }


def quality(tokens: Melodies, corpus: JudgeCorpus | None = None) -> float:
    """Cross-entropy (nats/token) of the compositions under the corpus training 5-gram."""
    corpus = corpus or load_judge_corpus()
    return cross_entropy(corpus.model, tokens)


def coverage(tokens: Melodies, corpus: JudgeCorpus | None = None) -> float:
    """Cross-entropy (nats/token) of the corpus test windows under a 5-gram fit on ``tokens``."""
    corpus = corpus or load_judge_corpus()
    model = KneserNeyModel(JUDGE_ORDER).fit(_melody_list(tokens))
    return cross_entropy(model, corpus.windows)
