"""``melody-rl train --key`` and ``generate --key`` with keys other than C major."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.cli import main
from agents.commands.generate import composing_key
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig

TINY = [
    "--num-envs", "8", "--eval-every", "128", "--checkpoint-every", "128", "--no-progress",
    "--set", "env.composition_length=8", "--set", "summary_compositions=16",
    "--set", "num_samples=2", "--set", "eval_num_envs=8", "--set", "eval_compositions=8",
    "--set", "learning_starts=64", "--set", "batch_size=4", "--set", "train_frequency=16",
]  # fmt: skip


@pytest.fixture(scope="module")
def any_key_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys_cli")
    note_rnn = folder / "note_rnn.safetensors"
    NoteRNN(NoteRNNConfig(hidden_size=16), seed=0).save(note_rnn)
    out = folder / "run"
    args = ["train", "--algo", "q", "--steps", "256", "--out", str(out), "--key", "ANY"]
    assert main([*args, "--reward-rnn", str(note_rnn), *TINY]) == 0
    return out


def test_train_any_key_records_it_and_resume_keeps_it(any_key_run, capsys):
    summary = json.loads((any_key_run / "summary.json").read_text())
    assert summary["config"]["env"]["key"] == "any"
    assert "sampled" in summary  # summarised (in C major: the suite takes one key)
    capsys.readouterr()
    resume = ["train", "--out", str(any_key_run), "--resume", "--no-progress"]
    assert main([*resume, "--key", "G major"]) == 2
    assert "--key G major differs from the resumed run's 'any'" in capsys.readouterr().err


def test_generate_any_key_agent_in_every_key(any_key_run, tmp_path, capsys):
    args = ["generate", "--checkpoint", str(any_key_run), "--n", "6", "--out", str(tmp_path)]
    assert main([*args, "--key", "any"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and all(" major):" in line or " minor):" in line for line in lines)
    assert main([*args, "--key", "Eb minor"]) == 0
    assert len(list(tmp_path.glob("*.mid"))) == 6


@pytest.mark.parametrize(
    ("trained", "requested", "expected"),
    [
        ("C major", "G major", "G major"),
        ("D minor", "bb minor", "A# minor"),
        ("any", "F# minor", "F# minor"),
        ("any", "any", "any"),
    ],
)
def test_composing_key(trained, requested, expected):
    assert composing_key(trained, requested) == expected


@pytest.mark.parametrize(
    ("trained", "requested", "message"),
    [
        ("C major", "A minor", "--key must be a major key (or train with --key any)"),
        ("C major", "any", "--key any needs an agent trained with --key any"),
        ("any", "H major", "unknown key 'H major'"),
    ],
)
def test_composing_key_refusals(trained, requested, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        composing_key(trained, requested)


def test_train_refuses_an_unknown_key(capsys):
    assert main(["train", "--out", "x", "--key", "C dorian"]) == 2
    assert "unknown key 'C dorian'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def d_minor_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys_cli_d_minor")
    note_rnn = folder / "note_rnn.safetensors"
    NoteRNN(NoteRNNConfig(hidden_size=16), seed=0).save(note_rnn)
    out = folder / "dminor"
    args = ["train", "--algo", "q", "--steps", "256", "--out", str(out), "--key", "d minor"]
    # The default composition length, which melody-rl evaluate uses.
    at = TINY.index("env.composition_length=8")
    tiny = TINY[: at - 1] + TINY[at + 1 :]
    assert main([*args, "--reward-rnn", str(note_rnn), *tiny]) == 0
    return out, note_rnn


def test_evaluate_warns_when_the_key_is_not_the_trained_one(d_minor_run, tmp_path, capsys):
    run, note_rnn = d_minor_run
    args = ["evaluate", "--checkpoint", f"agent:{run}", "--n", "8", "--samples", "0"]
    args += ["--bootstrap", "0", "--reward-rnn", str(note_rnn), "--out", str(tmp_path)]
    capsys.readouterr()
    assert main([*args, "--key", "G major"]) == 0
    assert "warning: dminor was trained in D minor only; evaluating it in G major" in (
        capsys.readouterr().err
    )
    assert main([*args, "--key", "D minor"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main([*args, "--key", "H minor"]) == 2
    assert "unknown key 'H minor'" in capsys.readouterr().err


def test_key_tables_pool_every_composition_once(tmp_path):
    from types import SimpleNamespace

    from agents.commands.evaluate import evaluation_keys, write_key_tables
    from melody_env.evaluation.metrics import STATISTICS
    from melody_env.evaluation.stats import summarize

    def result(not_in_key):
        table = {
            "not_in_key": np.array(not_in_key, float),
            "steps": np.full(len(not_in_key), 32.0),
        }
        return SimpleNamespace(name="m", table=table, summary=summarize(table, STATISTICS, 0))

    by_key = {"C major": [result([1, 0])], "G major": [result([3, 0, 2])]}
    markdown = write_key_tables(by_key, tmp_path, n_bootstrap=0, seed=0)
    rows = {line.split(" | ")[0]: line for line in markdown.splitlines() if line.startswith("|")}
    column = [cell.strip() for cell in rows["| key"].split("|")].index("Notes not in key")
    cells = {name: [c.strip() for c in line.split("|")] for name, line in rows.items()}
    assert cells["| C major"][column] == "1.56%"  # 1 / 64
    assert cells["| G major"][column] == "5.21%"  # 5 / 96
    assert cells["| **pooled**"][column] == "3.75%"  # 6 / 160, not the mean of the two
    data = json.loads((tmp_path / "keys.json").read_text())
    assert data["m"]["pooled"]["not_in_key"]["value"] == pytest.approx(6 / 160)
    assert evaluation_keys("all")[:2] == ["C major", "C# major"]
