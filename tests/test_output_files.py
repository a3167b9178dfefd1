"""Output files follow the umask and only ever replace regular files."""

from __future__ import annotations

import os
import stat

import pytest

from melody_env.atomic import atomic_write_text
from melody_env.io.midi_writer import tokens_to_pretty_midi, write_midi
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield lambda value: os.umask(value)
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    NoteRNN(NoteRNNConfig(hidden_size=4), seed=0).save(tmp_path / "m.safetensors")
    write_midi(tmp_path / "a.mid", [14, 0, 1])
    atomic_write_text(tmp_path / "t.json", "{}")
    for name in ("m.safetensors", "a.mid", "t.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_fifo_or_folder_is_never_replaced(tmp_path):
    fifo = tmp_path / "out.mid"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="it is not a regular file"):
        write_midi(fifo, [14])
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    with pytest.raises(ValueError, match="it is a folder"):
        NoteRNN(NoteRNNConfig(hidden_size=4), seed=0).save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mid"]  # no temporary left


@pytest.mark.parametrize("qpm", [float("inf"), float("nan"), 0, -80, "80", True])
def test_bad_tempo(qpm):
    with pytest.raises(ValueError, match="qpm must be a number"):
        tokens_to_pretty_midi([14], qpm=qpm)
