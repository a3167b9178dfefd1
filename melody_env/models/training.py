"""Pretraining the Note RNN on the melody corpus: config, batching, the loop.

Batching is stateful truncated backpropagation through time. Each epoch the training melodies
are shuffled (a NumPy generator seeded from ``(seed, epoch)``) and dealt to ``batch_size``
lanes; a lane reads its melodies in windows of ``window`` steps, carrying the (detached) LSTM
state from one window to the next of the same melody and starting every melody from a zero
state. So every transition of every melody, its first one from the zero state included, is
trained once per epoch, in the same conditions as scoring and the RL environment (one melody
from a zero state). A melody's last window is padded; padded steps are masked out of the loss.

The loop is seeded end to end (weights, shuffling, no other randomness): the same config, data
and thread count give bit-identical weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from melody_env.data.corpus import COLLECTIONS
from melody_env.data.splits import DEFAULT_HELD_OUT
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig

LR_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class PretrainConfig:
    """Everything a pretraining run depends on (stored in the run's ``config.json``)."""

    collections: tuple[str, ...] = COLLECTIONS
    """music21 collections to read; the four public-domain ones leave out ``essenFolksong``."""
    held_out: str | None = DEFAULT_HELD_OUT
    """Collection never trained on, evaluated as a whole (must be in ``collections``; or None)."""
    limit: int | None = None
    """Keep only the first ``limit`` tunes of each collection (tests and quick trials)."""
    hidden_size: int = 100
    """LSTM units, as in the paper."""
    num_layers: int = 1
    """Stacked LSTM layers, as in the paper."""
    window: int = 128
    """Truncated-BPTT window, in sixteenth steps (8 bars of 4/4)."""
    batch_size: int = 32
    """Lanes (melody streams) per gradient step."""
    epochs: int = 20
    """Passes over the training melodies (ignored if ``max_steps`` is set)."""
    max_steps: int | None = None
    """Stop after this many gradient steps instead (tests, quick trials)."""
    lr: float = 3e-3
    """Peak Adam learning rate."""
    lr_schedule: str = "cosine"
    """``"cosine"`` (linear warm-up, cosine decay to ``min_lr_ratio * lr``) or ``"constant"``."""
    warmup_steps: int = 200
    """Linear warm-up steps of the cosine schedule."""
    min_lr_ratio: float = 0.02
    """Final learning rate of the cosine schedule, as a fraction of ``lr``."""
    grad_clip: float = 5.0
    """Clip the global gradient norm to this (the paper clipped at 5)."""
    weight_decay: float = 0.0
    """L2 penalty added by Adam (the paper used 2.5e-5; this much data needs none)."""
    seed: int = 0
    """Seeds the weights and the batch order."""
    threads: int = 2
    """torch CPU threads (also the reproducibility unit: same threads, same weights)."""
    processes: int = 2
    """Worker processes for corpus extraction (only when the cache is cold)."""
    ngram_orders: tuple[int, ...] = tuple(range(1, 10))
    """Kneser-Ney baselines to fit and report."""
    tensorboard: bool = True
    """Log scalars (``loss/train``, ``loss/validation``, ``charts/lr``) to the run folder."""
    cache_dir: str | None = None
    """Corpus cache folder; ``None`` for ``$MELODY_RL_CACHE/corpus`` or ``~/.cache/...``."""
    out: str = "runs/pretrain"
    """Run folder: checkpoint, config, report (JSON and markdown), TensorBoard events."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "collections", tuple(self.collections))
        object.__setattr__(self, "ngram_orders", tuple(self.ngram_orders))
        positive = ("hidden_size", "num_layers", "window", "batch_size", "threads", "processes")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PretrainConfig.{name} must be a positive integer, got {value!r}")
        for name in ("epochs", "warmup_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"PretrainConfig.{name} must be an integer >= 0, got {value!r}")
        for name in ("max_steps", "limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"PretrainConfig.{name} must be None or >= 1, got {value!r}")
        if self.epochs == 0 and self.max_steps is None:
            raise ValueError("PretrainConfig needs epochs >= 1 or max_steps")
        if not self.lr > 0 or not self.grad_clip > 0 or self.weight_decay < 0:
            raise ValueError(
                f"PretrainConfig needs lr > 0, grad_clip > 0 and weight_decay >= 0, got "
                f"lr={self.lr!r}, grad_clip={self.grad_clip!r}, weight_decay={self.weight_decay!r}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"PretrainConfig.lr_schedule must be one of {LR_SCHEDULES}, "
                f"got {self.lr_schedule!r}"
            )
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(
                f"PretrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}"
            )
        if self.held_out is not None and self.held_out not in self.collections:
            raise ValueError(
                f"PretrainConfig.held_out {self.held_out!r} must be one of the collections "
                f"{self.collections} or None"
            )
        if any(not isinstance(o, int) or o < 1 for o in self.ngram_orders):
            raise ValueError(
                f"PretrainConfig.ngram_orders must be positive, got {self.ngram_orders}"
            )


@dataclass
class EpochPlan:
    """Which window each lane reads at each step: ``melody[step, lane]`` (-1: idle lane) and
    ``start[step, lane]`` (first input position of the window in that melody)."""

    melody: np.ndarray
    start: np.ndarray


def plan_epoch(lengths: np.ndarray, batch_size: int, window: int, rng: np.random.Generator):
    """Deal shuffled melodies to lanes (each to the shortest lane) and list their windows."""
    order = rng.permutation(len(lengths))
    windows = np.ceil((lengths - 1) / window).astype(np.int64)  # a melody of L has L-1 targets
    lanes: list[list[tuple[int, int]]] = [[] for _ in range(batch_size)]
    for index in order:
        lane = min(range(batch_size), key=lambda i: (len(lanes[i]), i))
        lanes[lane].extend((index, w * window) for w in range(windows[index]))
    steps = max(len(lane) for lane in lanes)
    melody = np.full((steps, batch_size), -1, dtype=np.int64)
    start = np.zeros((steps, batch_size), dtype=np.int64)
    for lane, items in enumerate(lanes):
        for step, (index, first) in enumerate(items):
            melody[step, lane], start[step, lane] = index, first
    return EpochPlan(melody, start)


def learning_rate(config: PretrainConfig, step: int, total_steps: int) -> float:
    """Learning rate at ``step`` (0-based) of ``total_steps``."""
    if config.lr_schedule == "constant":
        return config.lr
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def _batch(melodies: Sequence[np.ndarray], plan: EpochPlan, step: int, window: int):
    """``inputs, targets, mask [lanes, window]`` and ``fresh [lanes]`` (a melody starts)."""
    lanes = plan.melody.shape[1]
    inputs = np.zeros((lanes, window), dtype=np.int64)
    targets = np.zeros((lanes, window), dtype=np.int64)
    mask = np.zeros((lanes, window), dtype=np.float32)
    for lane in range(lanes):
        index = plan.melody[step, lane]
        if index < 0:
            continue
        first = plan.start[step, lane]
        piece = melodies[index][first : first + window + 1]
        n = len(piece) - 1
        inputs[lane, :n], targets[lane, :n], mask[lane, :n] = piece[:-1], piece[1:], 1.0
    fresh = (plan.start[step] == 0) | (plan.melody[step] < 0)
    return (
        torch.from_numpy(inputs),
        torch.from_numpy(targets),
        torch.from_numpy(mask),
        torch.from_numpy(fresh),
    )


@dataclass
class TrainResult:
    """What :func:`train_note_rnn` returns."""

    model: NoteRNN
    steps: int
    seconds: float
    history: list[dict] = field(default_factory=list)


def train_note_rnn(
    config: PretrainConfig,
    train: Sequence[np.ndarray],
    validate: Callable[[NoteRNN], float] | None = None,
    writer=None,
    progress: bool = True,
) -> TrainResult:
    """Train a fresh Note RNN on ``train`` melodies.

    Args:
        config: the run's settings (model shape, optimisation, seed, threads).
        train: training melodies (token arrays of length >= 2).
        validate: called with the model after each epoch (and at the end); returns the
            validation loss to log.
        writer: a TensorBoard ``SummaryWriter`` or ``None``.
        progress: show a tqdm bar.
    """
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    melodies = [np.asarray(m, dtype=np.int64) for m in train]
    lengths = np.array([len(m) for m in melodies])
    if len(melodies) == 0 or (lengths < 2).any():
        raise ValueError("training needs at least one melody, each of at least 2 tokens")
    model = NoteRNN(
        NoteRNNConfig(hidden_size=config.hidden_size, num_layers=config.num_layers),
        seed=config.seed,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    plans = []
    total = 0
    for epoch in range(config.epochs if config.max_steps is None else 10**9):
        plans.append(
            plan_epoch(
                lengths,
                config.batch_size,
                config.window,
                np.random.default_rng([config.seed, epoch]),
            )
        )
        total += len(plans[-1].melody)
        if config.max_steps is not None and total >= config.max_steps:
            break
    total = total if config.max_steps is None else config.max_steps
    history: list[dict] = []
    started = time.perf_counter()
    bar = tqdm(total=total, desc="pretrain", unit="step", disable=not progress)
    step = 0
    state = model.initial_state(config.batch_size)
    for epoch, plan in enumerate(plans):
        model.train()
        losses = []
        for plan_step in range(len(plan.melody)):
            if step >= total:
                break
            inputs, targets, mask, fresh = _batch(melodies, plan, plan_step, config.window)
            keep = (~fresh).to(state[0].dtype)[None, :, None]
            state = (state[0].detach() * keep, state[1].detach() * keep)
            lr = learning_rate(config, step, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            logits, state = model(inputs, state)
            token_loss = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
            loss = (token_loss * mask).sum() / mask.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(loss.item())
            step += 1
            bar.update()
            if writer is not None and step % 50 == 0:
                writer.add_scalar("loss/train", float(np.mean(losses[-50:])), step)
                writer.add_scalar("charts/lr", lr, step)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", lr=f"{lr:.1e}")
        record = {"epoch": epoch + 1, "step": step, "train_loss": float(np.mean(losses))}
        if validate is not None:
            record["validation_loss"] = float(validate(model))
            if writer is not None:
                writer.add_scalar("loss/validation", record["validation_loss"], step)
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        bar.write(
            f"epoch {record['epoch']}: train {record['train_loss']:.4f}"
            + (f", validation {record['validation_loss']:.4f}" if validate else "")
        )
        if step >= total:
            break
    bar.close()
    return TrainResult(model.eval(), step, time.perf_counter() - started, history)
