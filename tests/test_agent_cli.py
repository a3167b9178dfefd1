"""``melody-rl train`` and ``melody-rl generate`` on a tiny budget, and their error messages."""

from __future__ import annotations

import json

import pretty_midi
import pytest

from agents.cli import main
from agents.rl_tuner.checkpoint import load_checkpoint
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig

TINY = [
    "--num-envs", "8", "--eval-every", "128", "--checkpoint-every", "128", "--no-progress",
    "--set", "env.composition_length=8", "--set", "summary_compositions=16",
    "--set", "num_samples=2", "--set", "eval_num_envs=8", "--set", "eval_compositions=8",
    "--set", "learning_starts=64", "--set", "batch_size=4", "--set", "train_frequency=16",
]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    note_rnn = folder / "note_rnn.safetensors"
    NoteRNN(NoteRNNConfig(hidden_size=16), seed=0).save(note_rnn)
    out = folder / "run"
    args = ["train", "--algo", "psi", "--steps", "256", "--out", str(out)]
    assert main([*args, "--reward-rnn", str(note_rnn), *TINY]) == 0
    return out


def test_train_writes_checkpoint_samples_and_summary(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 256 and summary["config"]["algo"] == "psi"
    for key in ("not_in_key", "excessively_repeated", "starts_with_tonic", "leaps_resolved"):
        assert key in summary["sampled"] and key in summary["greedy"]
    assert "starting_with_tonic" not in summary["sampled"]  # the suite's names only
    text = (run_dir / "summary.md").read_text()  # the evaluation suite's report
    assert "Notes not in key" in text and "Distinct openings" in text and "KL(policy" in text
    assert summary["sampled"]["kl"] >= 0 and "greedy_distinct_openings" in summary["sampled"]
    assert len(list((run_dir / "samples").glob("*.mid"))) == 2
    assert list((run_dir / "tensorboard").iterdir())
    assert (run_dir / "checkpoints" / "latest.json").is_file()


def test_resume_extends_a_finished_run_and_follows_the_progress_flag(run_dir, capsys):
    """``--no-progress`` on a resume is honoured (the checkpoint's config once replaced it)."""
    assert (
        main(["train", "--out", str(run_dir), "--resume", "--steps", "320", "--no-progress"]) == 0
    )
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 320
    captured = capsys.readouterr()
    assert "resumed from" in captured.out and "%|" not in captured.err
    assert main(["train", "--out", str(run_dir), "--resume", "--steps", "352", "--progress"]) == 0
    assert "%|" in capsys.readouterr().err  # the tqdm bar
    config = load_checkpoint(run_dir).config
    assert config.progress_bar is True and config.total_steps == 352


def test_generate_writes_transposed_midi(run_dir, tmp_path, capsys):
    out = tmp_path / "melodies"
    args = ["generate", "--checkpoint", str(run_dir), "--n", "3", "--out", str(out)]
    assert main([*args, "--key", "D major", "--seed", "1"]) == 0
    files = sorted(out.glob("*.mid"))
    assert len(files) == 3
    for path in files:
        pretty_midi.PrettyMIDI(str(path))
    assert capsys.readouterr().out.count(".mid:") == 3
    assert main([*args, "--greedy"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "--checkpoint", "/no/such/run", "--out", "x"], "does not exist"),
        (["train", "--out", "/no/such/run", "--resume"], "cannot resume"),
        (
            ["train", "--algo", "q", "--out", "x", "--set", "bogus=1"],
            "unknown config field 'bogus'",
        ),
        (
            ["train", "--algo", "q", "--out", "x", "--set", "exploration=softmax"],
            "unknown exploration 'softmax'",
        ),
        (["train", "--algo", "q", "--out", "x", "--set", "gamma=1.5"], "gamma must be in [0, 1]"),
    ],
)
def test_errors_name_the_bad_value(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_generate_refuses_a_key_of_another_mode(run_dir, tmp_path, capsys):
    args = ["generate", "--checkpoint", str(run_dir), "--out", str(tmp_path), "--key", "A minor"]
    assert main(args) == 2
    assert "must be a major key" in capsys.readouterr().err


def test_resume_refuses_to_change_the_config(run_dir, capsys):
    assert main(["train", "--out", str(run_dir), "--resume", "--algo", "q"]) == 2
    assert "differs from the resumed run's 'psi'" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value"), [("--algo", "dqn"), ("--preset", "slow")])
def test_unknown_algo_or_preset_lists_the_choices(flag, value, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--out", "x", flag, value])
    assert f"invalid choice: '{value}'" in capsys.readouterr().err
