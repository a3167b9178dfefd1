"""``melody-rl train --key`` and ``generate --key`` with keys other than C major."""

from __future__ import annotations

import json

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
    # No final summary: it runs the evaluation suite, which takes one key per call.
    tiny = [*TINY, "--set", "summary_compositions=0"]
    assert main([*args, "--reward-rnn", str(note_rnn), *tiny]) == 0
    return out


def test_train_any_key_records_it_and_resume_keeps_it(any_key_run, capsys):
    config = json.loads((any_key_run / "summary.json").read_text())["config"]
    assert config["env"]["key"] == "any"
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
