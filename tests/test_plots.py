"""Figures (piano rolls, training curves, histograms), music export, reports and the CLI."""

from __future__ import annotations

import json
import sys

import numpy as np
import pretty_midi
import pytest
from matplotlib.image import imread

from agents.cli import main
from melody_env.evaluation import RandomPolicy, evaluate
from melody_env.evaluation.export import (
    AudioUnavailableError,
    check_audio,
    export_samples,
    melody_events,
    tokens_to_score,
    write_musicxml,
    write_wav,
)
from melody_env.evaluation.plots import (
    piano_roll_grid,
    read_training_log,
    reward_term_histograms,
    training_curves,
)
from melody_env.evaluation.report import PAPER_TABLE_1, build_report, format_value, render_markdown
from tests.conftest import tokens

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MELODIES = np.array(
    [
        tokens("C4 hold E4 hold G4 hold hold hold rest hold C5 hold B4 hold C5 hold"),
        tokens("D4 F#4 A4 hold D5 rest hold hold C#5 hold A4 hold F#4 hold D4 hold"),
    ]
)


def is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC


def test_piano_roll_grid(tmp_path):
    path = piano_roll_grid(MELODIES, "D major", tmp_path / "roll.png", titles=["a", "b"])
    assert is_png(path)
    height, width, _ = imread(path).shape
    assert width > height > 100
    # A silent composition still draws.
    assert is_png(piano_roll_grid(np.ones((1, 8), int), "C major", tmp_path / "silent.png"))
    with pytest.raises(ValueError, match="at least one"):
        piano_roll_grid(np.zeros((0, 8), int), "C major", tmp_path / "none.png")


def write_tensorboard_run(run_dir):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir))
    for step in range(0, 1000, 100):
        writer.add_scalar("charts/music_theory", step / 1000, step)
        writer.add_scalar("charts/log_prob", -3 + step / 1000, step)
        writer.add_scalar("charts/episodic_return", step / 100, step)
        writer.add_scalar("losses/td_loss", 1.0, step)
    writer.close()


def test_training_curves_from_tensorboard(tmp_path):
    write_tensorboard_run(tmp_path / "run")
    curves = read_training_log(tmp_path / "run")
    assert set(curves) == {"charts/music_theory", "charts/log_prob", "charts/episodic_return"}
    steps, values = curves["charts/log_prob"]
    assert steps.tolist() == list(range(0, 1000, 100))
    assert values[0] == pytest.approx(-3.0)
    assert is_png(training_curves(tmp_path / "run", tmp_path / "curves.png", smooth=3))


def test_training_curves_from_csv_and_jsonl(tmp_path):
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "progress.csv").write_text(
        "global_step,charts/music_theory,log_prob\n10,0.5,-2.0\n20,0.75,-1.5\n"
    )
    curves = read_training_log(tmp_path / "csv")
    assert curves["charts/music_theory"][1].tolist() == [0.5, 0.75]
    assert curves["charts/log_prob"][0].tolist() == [10.0, 20.0]
    assert "charts/episodic_return" not in curves
    assert is_png(training_curves(tmp_path / "csv", tmp_path / "csv.png"))
    (tmp_path / "jsonl").mkdir()
    (tmp_path / "jsonl" / "log.jsonl").write_text('{"step": 5, "episodic_return": 1.5}\n')
    assert read_training_log(tmp_path / "jsonl")["charts/episodic_return"][1].tolist() == [1.5]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no training metric"):
        training_curves(tmp_path / "empty", tmp_path / "empty.png")


def test_reward_term_histograms(tiny_rnn, tmp_path):
    first = evaluate(RandomPolicy(), n=20, reward_rnn=tiny_rnn, n_bootstrap=0)
    second = evaluate(RandomPolicy(), n=20, seed=1, reward_rnn=tiny_rnn, n_bootstrap=0)
    path = reward_term_histograms({"a": first.table, "b": second.table}, tmp_path / "terms.png")
    assert is_png(path)


# --- Music export -------------------------------------------------------------------------------


def test_midi_and_musicxml_export(tmp_path):
    written = export_samples(MELODIES, tmp_path, "D major", musicxml=True)
    assert [p.name for p in written] == [
        "sample_000.mid",
        "sample_000.musicxml",
        "sample_001.mid",
        "sample_001.musicxml",
    ]
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "sample_001.mid"))
    assert [n.pitch for n in midi.instruments[0].notes] == [62, 66, 69, 74, 73, 69, 66, 62]

    import music21

    score = music21.converter.parse(str(tmp_path / "sample_001.musicxml"))
    notes = [n for n in score.recurse().notes]
    assert [n.pitch.midi for n in notes] == [62, 66, 69, 74, 73, 69, 66, 62]
    assert score.recurse().getElementsByClass("KeySignature")[0].sharps == 2
    assert sum(r.quarterLength for r in score.recurse().getElementsByClass("Rest")) == 0.75


def test_musicxml_of_a_minor_key_and_leading_silence(tmp_path):
    score = tokens_to_score(tokens("hold rest A3 hold hold C4"), "A minor")
    key = score.recurse().getElementsByClass("Key")[0]
    assert (key.tonic.name, key.mode) == ("A", "minor")
    assert (
        write_musicxml(tmp_path / "a.musicxml", [2, 0], "A minor").read_bytes().startswith(b"<?xml")
    )
    assert melody_events(tokens("hold rest A3 hold hold C4")) == [(None, 2), (57, 3), (60, 1)]


def test_wav_without_fluidsynth_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # import fluidsynth -> ImportError
    with pytest.raises(AudioUnavailableError) as error:
        check_audio()
    message = str(error.value)
    assert "pip install 'melody-rl[audio]'" in message and "libfluidsynth3" in message
    with pytest.raises(AudioUnavailableError):
        write_wav(tmp_path / "a.wav", MELODIES[0])
    with pytest.raises(AudioUnavailableError):
        export_samples(MELODIES, tmp_path / "wav", wav=True)
    assert not (tmp_path / "wav").exists()  # checked before writing anything


def test_wav_export_when_fluidsynth_is_installed(tmp_path):
    try:
        check_audio()
    except AudioUnavailableError:
        pytest.skip("pyfluidsynth / libfluidsynth not installed")
    import wave

    path = write_wav(tmp_path / "a.wav", MELODIES[0], sample_rate=8000)
    with wave.open(str(path)) as handle:
        assert handle.getframerate() == 8000 and handle.getnframes() > 8000


# --- Report and CLI -----------------------------------------------------------------------------


def test_report_layout(tiny_rnn):
    results = [
        evaluate(RandomPolicy(), n=20, reward_rnn=tiny_rnn, n_bootstrap=20, name=name)
        for name in ("note_rnn", "random")
    ]
    report = build_report(results)
    rows = {row["name"]: row for row in report["rows"]}
    assert rows["excessively_repeated"]["paper"] == {
        "Note RNN": 0.633,
        "Q": 0.0,
        "Ψ": 0.0002,
        "G": 0.0003,
    }
    assert set(PAPER_TABLE_1) <= set(rows)
    markdown = render_markdown(report)
    assert (
        "| Statistic | note_rnn | random | paper Note RNN | paper Q | paper Ψ | paper G |"
        in markdown
    )
    assert "| Notes excessively repeated |" in markdown and "63.30%" in markdown
    assert format_value(None, True) == "n/a"
    with pytest.raises(ValueError, match="unique"):
        build_report([results[0], results[0]])


def test_cli_writes_report_figures_and_midi(tiny_rnn, tiny_rnn_path, tmp_path, capsys):
    from tests.test_evaluate import make_dqn

    make_dqn(tiny_rnn).save(tmp_path / "dqn.zip")
    write_tensorboard_run(tmp_path / "run")
    out = tmp_path / "out"
    code = main(
        [
            "evaluate",
            "--reward-rnn", tiny_rnn_path,
            "--checkpoint", tiny_rnn_path,
            "--checkpoint", f"sb3-dqn:{tmp_path / 'dqn.zip'}",
            "--baseline", "random",
            "--n", "24",
            "--samples", "2",
            "--bootstrap", "20",
            "--key", "G major",
            "--run-dir", str(tmp_path / "run"),
            "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["models"]) == ["note_rnn", "random", "tiny", "dqn"]
    assert report["models"]["note_rnn"]["key"] == "G major"
    markdown = (out / "report.md").read_text()
    assert "| Notes excessively repeated |" in markdown
    for name in ("reward_terms.png", "training_curves.png"):
        assert is_png(out / name)
    for model in report["models"]:
        assert is_png(out / model / "piano_roll.png")
        assert sorted(p.name for p in (out / model).glob("*.mid")) == [
            "sample_000.mid",
            "sample_001.mid",
        ]
        assert np.load(out / model / "compositions.npy").shape == (24, 32)
    assert "Notes excessively repeated" in capsys.readouterr().out


def test_cli_errors(tiny_rnn_path, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "out")
    base = ["evaluate", "--reward-rnn", tiny_rnn_path, "--n", "4", "--out", out]
    assert main([*base, "--checkpoint", str(tmp_path / "missing.zip")]) == 2
    assert "cannot load" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "fluidsynth", None)
    assert main([*base, "--wav"]) == 2
    assert "melody-rl[audio]" in capsys.readouterr().err
    assert main(["evaluate", "--reward-rnn", str(tmp_path / "none.safetensors"), "--out", out]) == 2
    assert "--reward-rnn" in capsys.readouterr().err
