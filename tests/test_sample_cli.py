"""``melody-rl sample`` writes N readable MIDI files, reproducibly."""

from __future__ import annotations

import pretty_midi
import pytest

from agents.cli import build_parser, main
from agents.commands.sample import sample_melodies
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "tiny.safetensors"
    NoteRNN(NoteRNNConfig(hidden_size=8), seed=0).save(path)
    return path


def test_sample_writes_n_readable_midi_files(tmp_path, checkpoint, capsys):
    out = tmp_path / "samples"
    argv = [
        "sample",
        "--n",
        "3",
        "--out",
        str(out),
        "--checkpoint",
        str(checkpoint),
        "--seed",
        "5",
        "--length",
        "48",
    ]
    assert main(argv) == 0
    files = sorted(out.glob("*.mid"))
    assert [f.name for f in files] == ["sample_000.mid", "sample_001.mid", "sample_002.mid"]
    for path in files:
        midi = pretty_midi.PrettyMIDI(str(path))
        assert len(midi.instruments) == 1
        assert midi.get_end_time() <= 48 * 60 / 80 / 4 + 1e-6
    first = [f.read_bytes() for f in files]
    assert main([*argv[:4], str(tmp_path / "again"), *argv[5:]]) == 0
    assert [f.read_bytes() for f in sorted((tmp_path / "again").glob("*.mid"))] == first
    assert "sample_000.mid" in capsys.readouterr().out


def test_primer_token_temperature_and_length(checkpoint):
    model = NoteRNN.load(checkpoint)
    melodies = sample_melodies(model, n=4, length=20, temperature=0.5, seed=1, primer_token=14)
    assert melodies.shape == (4, 20) and melodies.min() >= 0 and melodies.max() < 38
    again = sample_melodies(model, n=4, length=20, temperature=0.5, seed=1, primer_token=14)
    assert (melodies == again).all()
    with pytest.raises(ValueError, match=r"temperature must be in \[0.01, 100.0\]"):
        sample_melodies(model, n=1, length=4, temperature=0.0)
    with pytest.raises(ValueError, match="primer token contain 40"):
        sample_melodies(model, n=1, length=4, primer_token=40)
    with pytest.raises(ValueError, match="length must be an integer in"):
        sample_melodies(model, n=1, length=0)


def test_pretrain_and_sample_are_registered():
    parser = build_parser()
    args = parser.parse_args(["pretrain", "--epochs", "2", "--held-out", "none"])
    assert args.epochs == 2 and args.held_out is None
    args = parser.parse_args(["sample", "--out", "x"])
    assert args.n == 10 and args.length == 32 and args.temperature == 1.0


def test_canonical_pretrain_command_round_trips():
    import shlex

    from agents.commands.pretrain import canonical_command, config_from_args

    parser = build_parser()
    config = config_from_args(parser.parse_args(["pretrain", "--seed", "3", "--limit", "9"]))
    command = canonical_command(config)
    again = config_from_args(parser.parse_args(shlex.split(command)[1:]))
    assert again == config
