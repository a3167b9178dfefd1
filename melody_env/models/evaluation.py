"""Scoring melodies with the Note RNN and the n-gram baselines, and the metrics report.

Every model scores exactly the same tokens: for each melody ``t[0..L-1]``, the targets
``t[1..L-1]``. Token 0 is given (the LSTM reads it from a zero state; an n-gram sees it after
BOS padding), as in the RL environment, where a primer token starts every composition.

Metrics per model and split (natural logs):

* ``cross_entropy``: mean negative log-probability of the targets, nats/token.
* ``perplexity``: ``exp(cross_entropy)``.
* ``accuracy``: how often the most probable token is the target.
* ``event_accuracy``: accuracy on the targets that are not ``NO_EVENT`` (note onsets and
  note-offs); always predicting "hold" scores ~60% accuracy but 0% here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from melody_env.data.ngram import KneserNeyModel
from melody_env.models.note_rnn import NoteRNN
from melody_env.music.encoding import NO_EVENT

METRICS = ("cross_entropy", "perplexity", "accuracy", "event_accuracy")
SPLIT_LABELS = {"validation": "val", "test": "test", "heldout": "held-out"}


def targets_of(melodies: Sequence[np.ndarray]) -> np.ndarray:
    """The scored tokens, in order: each melody without its first token."""
    parts = [np.asarray(m[1:], dtype=np.int64) for m in melodies]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def token_metrics(log_probs: np.ndarray, predictions: np.ndarray, targets: np.ndarray) -> dict:
    """The report's metrics from per-target log-probabilities and argmax predictions.

    >>> m = token_metrics(np.log([0.5, 0.5, 0.25, 1.0]), np.array([0, 0, 5, 1]),
    ...                   np.array([0, 3, 5, 0]))
    >>> m["accuracy"], m["event_accuracy"], m["event_tokens"]
    (0.5, 0.5, 2)
    """
    log_probs, predictions, targets = map(np.asarray, (log_probs, predictions, targets))
    if not len(targets) == len(predictions) == len(log_probs) > 0:
        raise ValueError(
            f"need the same positive number of log-probs ({len(log_probs)}), predictions "
            f"({len(predictions)}) and targets ({len(targets)})"
        )
    correct = predictions == targets
    events = targets != NO_EVENT
    cross_entropy = float(-np.mean(log_probs))
    return {
        "cross_entropy": cross_entropy,
        "perplexity": math.exp(cross_entropy),
        "accuracy": float(np.mean(correct)),
        "event_accuracy": float(np.mean(correct[events])) if events.any() else float("nan"),
        "tokens": len(targets),
        "event_tokens": int(events.sum()),
    }


@torch.no_grad()
def lstm_predict(
    model: NoteRNN, melodies: Sequence[np.ndarray], batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Per-target log-probabilities and argmax predictions of ``model``, each melody from a zero
    state, in the order of :func:`targets_of`."""
    model.eval()
    lengths = np.array([len(m) for m in melodies])
    if (lengths < 2).any():
        raise ValueError("every melody needs at least 2 tokens to be scored")
    starts = np.concatenate([[0], np.cumsum(lengths - 1)])
    log_probs = np.empty(starts[-1])
    predictions = np.empty(starts[-1], dtype=np.int64)
    order = np.argsort(lengths, kind="stable")  # similar lengths together: little padding
    for first in range(0, len(order), batch_size):
        batch = order[first : first + batch_size]
        width = int(lengths[batch].max())
        tokens = torch.zeros((len(batch), width), dtype=torch.int64)
        for row, index in enumerate(batch):
            tokens[row, : lengths[index]] = torch.from_numpy(np.asarray(melodies[index], np.int64))
        logits, _ = model(tokens[:, :-1])  # [batch, width - 1, classes]
        scores = torch.log_softmax(logits.float(), dim=-1)
        gathered = scores.gather(-1, tokens[:, 1:, None])[..., 0]
        best = scores.argmax(-1)
        for row, index in enumerate(batch):
            n = lengths[index] - 1
            log_probs[starts[index] : starts[index] + n] = gathered[row, :n].numpy()
            predictions[starts[index] : starts[index] + n] = best[row, :n].numpy()
    return log_probs, predictions


def evaluate_lstm(model: NoteRNN, splits: dict[str, Sequence[np.ndarray]]) -> dict[str, dict]:
    """:func:`token_metrics` of the Note RNN on each named split."""
    results = {}
    for name, melodies in splits.items():
        log_probs, predictions = lstm_predict(model, melodies)
        results[name] = token_metrics(log_probs, predictions, targets_of(melodies))
    return results


def evaluate_ngrams(
    train: Sequence[np.ndarray], splits: dict[str, Sequence[np.ndarray]], orders: Sequence[int]
) -> dict[str, dict[str, dict]]:
    """Fit a Kneser-Ney model of each order on ``train``; metrics on each split.

    Returns:
        ``{"3-gram": {split: metrics}, ...}``.
    """
    results = {}
    for order in orders:
        model = KneserNeyModel(order).fit(train)
        results[f"{order}-gram"] = {}
        for name, melodies in splits.items():
            log_probs, predictions = model.predict(melodies)
            results[f"{order}-gram"][name] = token_metrics(
                log_probs, predictions, targets_of(melodies)
            )
    return results


def best_ngram(results: dict[str, dict[str, dict]], split: str = "test") -> str:
    """Name of the n-gram model with the lowest cross-entropy on ``split``."""
    names = [name for name in results if name.endswith("-gram")]
    return min(names, key=lambda name: results[name][split]["cross_entropy"])


def margin_over_best_ngram(results: dict[str, dict[str, dict]], split: str = "test") -> float:
    """Relative cross-entropy reduction of the LSTM over the best n-gram on ``split``."""
    reference = results[best_ngram(results, split)][split]["cross_entropy"]
    return (reference - results["lstm"][split]["cross_entropy"]) / reference


def markdown_table(results: dict[str, dict[str, dict]]) -> str:
    """One row per model; each cell holds the validation / test / held-out values."""
    splits = [s for s in SPLIT_LABELS if any(s in r for r in results.values())]
    label = " / ".join(SPLIT_LABELS[s] for s in splits)
    header = (
        f"| model | cross-entropy, nats/token ({label}) | perplexity | accuracy | "
        "note-event accuracy |"
    )
    lines = [header, "|---|---|---|---|---|"]
    formats = {
        "cross_entropy": "{:.3f}",
        "perplexity": "{:.2f}",
        "accuracy": "{:.1%}",
        "event_accuracy": "{:.1%}",
    }
    for model, per_split in results.items():
        cells = [
            " / ".join(formats[m].format(per_split[s][m]) for s in splits if s in per_split)
            for m in METRICS
        ]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
