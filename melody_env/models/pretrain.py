"""A whole pretraining run: corpus -> splits -> Note RNN -> n-gram baselines -> report.

:func:`run_pretraining` writes to the run folder (``config.out``):

* ``note_rnn.safetensors``: the trained model (config and provenance in its metadata),
* ``report.json`` and ``report.md``: metrics per model and split, splits summary, timings,
* ``config.json``, and TensorBoard events (``loss/train``, ``loss/validation``, ``charts/lr``).

:func:`ship` copies a run into ``melody_env/models/checkpoints`` with a generated model card.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from melody_env.atomic import atomic_write_text
from melody_env.data.corpus import ExtractionSettings, load_collection
from melody_env.data.splits import EVALUATION_SPLITS, make_splits
from melody_env.models.evaluation import (
    best_ngram,
    evaluate_lstm,
    evaluate_ngrams,
    lstm_predict,
    margin_over_best_ngram,
    markdown_table,
    targets_of,
)
from melody_env.models.model_card import model_card
from melody_env.models.note_rnn import DEFAULT_CHECKPOINT, NoteRNN
from melody_env.models.training import PretrainConfig, train_note_rnn


def open_summary_writer(folder: str | os.PathLike):
    """A TensorBoard ``SummaryWriter`` (the optional ``tensorboard`` extra)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError(
            "TensorBoard logging needs the optional 'tensorboard' extra: "
            "pip install 'melody-rl[tensorboard]' (or turn it off: --no-tensorboard)"
        ) from error
    return SummaryWriter(log_dir=str(folder))


def machine_summary() -> dict:
    """Where a run ran, for the report and the model card."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def run_pretraining(config: PretrainConfig, command: str = "", progress: bool = True) -> dict:
    """Extract (or load) the corpus, train, evaluate, and write the run folder.

    Args:
        config: the run's settings.
        command: the command line that started the run, recorded for reproduction.
        progress: show progress bars.

    Returns:
        The report (also written to ``report.json``).
    """
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(asdict(config), indent=2) + "\n")
    torch.set_num_threads(config.threads)

    started = time.perf_counter()
    settings = ExtractionSettings()
    collections = {
        name: load_collection(
            name,
            settings,
            config.cache_dir,
            processes=config.processes,
            limit=config.limit,
            progress=progress,
        )
        for name in config.collections
    }
    splits, duplicates = make_splits(collections, config.held_out)
    corpus_seconds = time.perf_counter() - started
    evaluation = {
        name: splits[name].melodies for name in EVALUATION_SPLITS if splits[name].melodies
    }
    if "validation" not in evaluation:
        raise ValueError("the validation split is empty; use more tunes (limit) or collections")

    val_targets = targets_of(evaluation["validation"])

    def validation_loss(model: NoteRNN) -> float:
        log_probs, _ = lstm_predict(model, evaluation["validation"])
        model.train()
        return float(-log_probs.mean()) if len(val_targets) else float("nan")

    writer = open_summary_writer(out / "tensorboard") if config.tensorboard else None
    try:
        result = train_note_rnn(
            config, splits["train"].melodies, validation_loss, writer=writer, progress=progress
        )
    finally:
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    results = {"lstm": evaluate_lstm(result.model, evaluation)}
    lstm_eval_seconds = time.perf_counter() - started
    started = time.perf_counter()
    results.update(evaluate_ngrams(splits["train"].melodies, evaluation, config.ngram_orders))
    ngram_seconds = time.perf_counter() - started

    split_for_margin = "test" if "test" in evaluation else "validation"
    report = {
        "config": asdict(config),
        "command": command,
        "corpus": {
            "collections": list(config.collections),
            "held_out": config.held_out,
            "extraction": asdict(settings),
            "collection_stats": {name: m.stats for name, m in collections.items()},
            "splits": {name: split.summary() for name, split in splits.items()},
            "evaluation_duplicates_removed": duplicates,
        },
        "results": results,
        "best_ngram": best_ngram(results, split_for_margin) if config.ngram_orders else None,
        "margin_split": split_for_margin,
        "margin_over_best_ngram": margin_over_best_ngram(results, split_for_margin)
        if config.ngram_orders
        else None,
        "training": {"steps": result.steps, "history": result.history},
        "seconds": {
            "corpus": corpus_seconds,
            "training": result.seconds,
            "lstm_evaluation": lstm_eval_seconds,
            "ngrams": ngram_seconds,
        },
        "machine": machine_summary(),
    }
    metadata = {
        "seed": str(config.seed),
        "command": command,
        "corpus": json.dumps(
            {"collections": list(config.collections), "held_out": config.held_out}
        ),
    }
    result.model.save(out / "note_rnn.safetensors", metadata=metadata)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out / "report.md", report_markdown(report))
    return report


def report_markdown(report: dict) -> str:
    """The metrics table and the margin, as markdown."""
    lines = ["# Note RNN pretraining report", "", markdown_table(report["results"]), ""]
    if report.get("best_ngram"):
        margin = report["margin_over_best_ngram"]
        lines.append(
            f"The LSTM's {report['margin_split']} cross-entropy is {abs(margin):.1%} "
            f"{'lower' if margin >= 0 else 'higher'} than the best n-gram's "
            f"({report['best_ngram']})."
        )
    splits = report["corpus"]["splits"]
    lines += ["", "| split | pieces | tokens |", "|---|---|---|"]
    lines += [f"| {name} | {s['pieces']} | {s['tokens']} |" for name, s in splits.items()]
    return "\n".join(lines) + "\n"


def ship(
    run_dir: str | os.PathLike, target_dir: str | os.PathLike | None = None, notes: str = ""
) -> Path:
    """Copy a run's checkpoint and report into the package, with a model card.

    Writes ``note_rnn.safetensors``, ``note_rnn.json`` (the report) and ``MODEL_CARD.md`` (with
    ``notes`` appended) to ``target_dir`` (default: ``melody_env/models/checkpoints``).
    Returns the checkpoint path.
    """
    run_dir = Path(run_dir)
    target = Path(target_dir) if target_dir is not None else DEFAULT_CHECKPOINT.parent
    report = json.loads((run_dir / "report.json").read_text())
    model = NoteRNN.load(run_dir / "note_rnn.safetensors")
    metadata = {k: v for k, v in model.metadata.items() if k not in ("format", "config")}
    checkpoint = target / DEFAULT_CHECKPOINT.name
    model.save(checkpoint, metadata=metadata)
    atomic_write_text(target / "note_rnn.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(
        target / "MODEL_CARD.md", model_card(report, checkpoint.stat().st_size, notes)
    )
    return checkpoint
