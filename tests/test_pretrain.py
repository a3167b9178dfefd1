"""Note RNN pretraining: batching, schedule, a tiny reproducible run, metrics, the shipped model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from melody_env.models.evaluation import lstm_predict, markdown_table, targets_of, token_metrics
from melody_env.models.note_rnn import DEFAULT_CHECKPOINT, NoteRNN, NoteRNNConfig
from melody_env.models.training import (
    PretrainConfig,
    _batch,
    learning_rate,
    plan_epoch,
    train_note_rnn,
)

FIXTURE = Path(__file__).parent / "data" / "heldout_airds_airs.json"


def toy_melodies(count: int = 12, seed: int = 0) -> list[np.ndarray]:
    """Melodies with structure an LSTM can learn quickly: scale runs with held notes."""
    rng = np.random.default_rng(seed)
    melodies = []
    for _ in range(count):
        start = int(rng.integers(2, 20))
        notes = [start + (i % 8) for i in range(int(rng.integers(6, 20)))]
        melodies.append(np.array([t for n in notes for t in (n, 0)], dtype=np.int64))
    return melodies


TINY = PretrainConfig(
    hidden_size=16,
    window=8,
    batch_size=4,
    max_steps=60,
    lr=1e-2,
    lr_schedule="constant",
    threads=1,
    tensorboard=False,
)


def test_epoch_plan_covers_every_target_once():
    lengths = np.array([2, 9, 17, 30, 8, 5])
    plan = plan_epoch(lengths, batch_size=3, window=8, rng=np.random.default_rng(0))
    melodies = [np.arange(n) % 38 for n in lengths]
    seen = []
    for step in range(len(plan.melody)):
        _, _, mask, fresh = _batch(melodies, plan, step, 8)
        seen.append(int(mask.sum()))
        # A lane starts from a zero state exactly when a melody starts (or it is idle).
        assert (fresh.numpy() == ((plan.start[step] == 0) | (plan.melody[step] < 0))).all()
    assert sum(seen) == int((lengths - 1).sum())
    pairs = {
        (int(m), int(s))
        for m, s in zip(plan.melody.ravel(), plan.start.ravel(), strict=True)
        if m >= 0
    }
    assert pairs == {(i, w * 8) for i, n in enumerate(lengths) for w in range(-(-(n - 1) // 8))}


def test_learning_rate_schedule():
    config = PretrainConfig(lr=1e-2, warmup_steps=10, min_lr_ratio=0.1)
    assert learning_rate(config, 0, 100) == pytest.approx(1e-3)
    assert learning_rate(config, 9, 100) == pytest.approx(1e-2)
    assert learning_rate(config, 99, 100) == pytest.approx(1e-3, rel=0.01)
    assert learning_rate(replace(config, lr_schedule="constant"), 99, 100) == 1e-2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"window": 0}, "window must be a positive integer"),
        ({"lr_schedule": "linear"}, "lr_schedule must be one of"),
        ({"held_out": "miscFolk", "collections": ("airdsAirs",)}, "held_out 'miscFolk'"),
        ({"epochs": 0}, "epochs >= 1 or max_steps"),
    ],
)
def test_bad_config_values_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        PretrainConfig(**changes)


def test_tiny_training_lowers_the_loss_and_is_reproducible():
    melodies = toy_melodies()
    result = train_note_rnn(TINY, melodies, progress=False)
    again = train_note_rnn(TINY, melodies, progress=False)
    other = train_note_rnn(replace(TINY, seed=1), melodies, progress=False)
    before = NoteRNN(NoteRNNConfig(hidden_size=16), seed=0)
    loss_before = -lstm_predict(before, melodies)[0].mean()
    loss_after = -lstm_predict(result.model, melodies)[0].mean()
    assert loss_after < 0.6 * loss_before
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(tensor, again.model.state_dict()[name]), name
    assert not torch.equal(result.model.head.weight, other.model.head.weight)
    assert result.steps == 60


def test_lstm_scoring_matches_step_by_step():
    model = NoteRNN(NoteRNNConfig(hidden_size=8), seed=3)
    melodies = toy_melodies(5, seed=2)
    log_probs, predictions = lstm_predict(model, melodies, batch_size=2)
    expected, best = [], []
    for melody in melodies:
        state = model.initial_state(1)
        for t in range(len(melody) - 1):
            scores, state = model.step(torch.tensor([melody[t]]), state)
            expected.append(float(scores[0, melody[t + 1]]))
            best.append(int(scores[0].argmax()))
    np.testing.assert_allclose(log_probs, expected, rtol=1e-5, atol=1e-6)
    assert predictions.tolist() == best
    assert len(targets_of(melodies)) == len(log_probs)


def test_metrics_on_a_hand_made_case():
    targets = np.array([0, 0, 14, 1, 0, 16])
    predictions = np.array([0, 0, 14, 0, 0, 18])  # right on 3 of 4 holds... and 1 of 3 events
    log_probs = np.log([0.5, 0.5, 0.25, 0.25, 0.5, 0.125])
    metrics = token_metrics(log_probs, predictions, targets)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["event_accuracy"] == pytest.approx(1 / 3)
    assert metrics["event_tokens"] == 3
    assert metrics["cross_entropy"] == pytest.approx(np.log(2) * (1 + 1 + 2 + 2 + 1 + 3) / 6)
    assert metrics["perplexity"] == pytest.approx(np.exp(metrics["cross_entropy"]))
    table = markdown_table({"lstm": {"validation": metrics, "test": metrics}})
    assert "| lstm | 1.155 / 1.155 |" in table and "33.3% / 33.3%" in table


def test_run_pretraining_writes_the_run_folder_and_ships(tmp_path):
    pytest.importorskip("music21")
    from melody_env.models.pretrain import run_pretraining, ship

    config = replace(
        TINY,
        collections=("miscFolk",),
        held_out=None,
        limit=40,
        max_steps=5,
        ngram_orders=(1, 2),
        tensorboard=True,
        cache_dir=str(tmp_path / "cache"),
        processes=1,
        out=str(tmp_path / "run"),
    )
    report = run_pretraining(config, command="melody-rl pretrain ...", progress=False)
    run = tmp_path / "run"
    for name in ("note_rnn.safetensors", "report.json", "report.md", "config.json"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").iterdir())
    assert set(report["results"]) == {"lstm", "1-gram", "2-gram"}
    assert json.loads((run / "report.json").read_text())["corpus"]["splits"]["train"]["pieces"] > 0
    checkpoint = ship(run, tmp_path / "shipped")
    assert NoteRNN.load(checkpoint).metadata["command"] == "melody-rl pretrain ..."
    card = (tmp_path / "shipped" / "MODEL_CARD.md").read_text()
    assert "public domain" in card and "melody-rl pretrain ..." in card


@pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason="no shipped checkpoint")
def test_shipped_checkpoint_prefers_real_held_out_melodies_to_random_tokens():
    melodies = [np.array(m) for m in json.loads(FIXTURE.read_text())["melodies"]]
    model = NoteRNN.load()
    real = lstm_predict(model, melodies)[0].mean()
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 38, size=len(m)) for m in melodies]
    random = lstm_predict(model, noise)[0].mean()
    assert real - random > 1.5
    assert -real < 1.3  # nats/token on unseen airdsAirs tunes
    assert DEFAULT_CHECKPOINT.stat().st_size < 1_000_000
