"""Bad Note RNN and agent checkpoints are refused with an error naming the file and the problem.

Missing, truncated, of another architecture, without their config, or pickles: none is loaded
half-way, none raises torch's bare ``RuntimeError`` or a ``KeyError``, and nothing in them runs.
"""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from agents.cli import main
from agents.rl_tuner import checkpoint as ckpt
from agents.rl_tuner.trainer import Trainer, train
from melody_env import MelodyCompositionEnv
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig
from tests.conftest import tiny_agent_config


class PickleBomb:
    """Unpickling this creates ``marker``: proof that a loader executed code from the file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


@pytest.fixture
def bomb(tmp_path):
    marker = tmp_path / "EXECUTED"
    yield pickle.dumps(PickleBomb(marker))
    assert not marker.exists(), "a loader unpickled the file"


# ---------------------------------------------------------------- Note RNN files


@pytest.fixture(scope="module")
def rnn_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rnn") / "note_rnn.safetensors"
    NoteRNN(NoteRNNConfig(hidden_size=16), seed=0).save(path)
    return path


def tensors_of(hidden_size, num_layers=1):
    model = NoteRNN(NoteRNNConfig(hidden_size=hidden_size, num_layers=num_layers), seed=0)
    return {name: tensor.contiguous() for name, tensor in model.state_dict().items()}


def note_rnn_header(**config):
    return {"format": "melody-rl/note-rnn", "config": json.dumps(config)}


def test_missing_note_rnn_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not found: .*absent\.safetensors"):
        NoteRNN.load(tmp_path / "absent.safetensors")


def test_truncated_note_rnn_file_is_not_readable(rnn_file, tmp_path):
    half = tmp_path / "half.safetensors"
    half.write_bytes(rnn_file.read_bytes()[: rnn_file.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"half\.safetensors is not a readable safetensors"):
        NoteRNN.load(half)


@pytest.mark.parametrize(
    ("tensors", "metadata", "problem"),
    [
        # tensors of a 32-unit model under a header saying 16 units
        (
            tensors_of(32),
            note_rnn_header(hidden_size=16),
            r"hidden_size=16.*'head\.weight' has shape \(38, 32\), expected \(38, 16\)",
        ),
        # a 2-layer model's tensors under a 1-layer header
        (
            tensors_of(16, num_layers=2),
            note_rnn_header(hidden_size=16, num_layers=1),
            r"unexpected tensors \['lstm\.bias_hh_l1'",
        ),
        ({"weights": torch.zeros(3)}, note_rnn_header(), r"missing tensors \['head\.bias'"),
        (tensors_of(16), None, r"not a melody-rl Note RNN checkpoint \(metadata format=None\)"),
        (tensors_of(16), {"format": "melody-rl/note-rnn"}, "has no NoteRNN config"),
        (
            tensors_of(16),
            {"format": "melody-rl/note-rnn", "config": "{hidden_size: 16"},
            "NoteRNN config in its metadata is invalid",
        ),
        (tensors_of(16), note_rnn_header(hidden=16), r"unknown NoteRNNConfig fields \['hidden'\]"),
    ],
    ids=[
        "other-hidden-size",
        "other-num-layers",
        "wrong-names",
        "no-metadata",
        "no-config",
        "config-not-json",
        "config-unknown-field",
    ],
)
def test_note_rnn_of_another_architecture_is_refused(tmp_path, tensors, metadata, problem):
    path = tmp_path / "other.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(ValueError, match=rf"other\.safetensors.*{problem}"):
        NoteRNN.load(path)
    with pytest.raises(ValueError, match=rf"other\.safetensors.*{problem}"):
        MelodyCompositionEnv(reward_rnn=str(path))


@pytest.mark.parametrize("name", ["note_rnn.pt", "note_rnn.safetensors"])
def test_a_pickled_note_rnn_is_never_unpickled(tmp_path, bomb, name):
    path = tmp_path / name
    path.write_bytes(bomb)
    with pytest.raises(ValueError, match=rf"{name} is not a readable safetensors"):
        NoteRNN.load(path)
    torch.save({"head.bias": torch.zeros(38)}, path)  # a real torch checkpoint: also a pickle
    with pytest.raises(ValueError, match=rf"{name} is not a readable safetensors"):
        MelodyCompositionEnv(reward_rnn=str(path))


# ---------------------------------------------------------------- agent checkpoints


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, rnn_file):
    """A finished 128-step run with one checkpoint (Adam state included: it learned)."""
    run = tmp_path_factory.mktemp("agent") / "run"
    config = tiny_agent_config(str(rnn_file), total_steps=128)
    train(config, run, log=lambda *_: None)
    return run


@pytest.fixture
def run(trained_run, tmp_path):
    """A copy of the trained run to break; returns ``(run folder, its checkpoint folder)``."""
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy, ckpt.find_checkpoint(copy)


def edit_tensors(folder, change):
    tensors = load_file(str(folder / ckpt.WEIGHTS))
    change(tensors)
    save_file(tensors, str(folder / ckpt.WEIGHTS), metadata={"format": ckpt.FORMAT})


def edit_state(folder, change):
    state = json.loads((folder / ckpt.STATE).read_text())
    change(state)
    (folder / ckpt.STATE).write_text(json.dumps(state))


def pointer_json(step):
    return json.dumps({"checkpoint": "step_000000128", "step": step})


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


LATEST = r"checkpoints[/\\]latest\.json"
WEIGHTS = r"step_000000128[/\\]weights\.safetensors"
STATE = r"step_000000128[/\\]state\.json"
REPLAY = r"step_000000128[/\\]replay\.npz"

Q_TENSOR_OTHER_SHAPE = (
    lambda c: edit_tensors(c, lambda t: t.update({"q_network.head.bias": torch.zeros(5)})),
    rf"{WEIGHTS} \(q_network\.\*\).*'head\.bias' has shape \(5,\), expected \(38,\)",
)
"""A Q-network tensor of another shape: refused by load_agent and by a resume, naming the file."""

# Read by load_agent, so both `generate` and `train --resume` refuse them.
AGENT_CASES = {
    "weights-missing": (
        lambda c: (c / ckpt.WEIGHTS).unlink(),
        r"step_000000128 has no weights\.safetensors",
    ),
    "state-missing": (lambda c: (c / ckpt.STATE).unlink(), r"step_000000128.*no state\.json"),
    "weights-truncated": (lambda c: truncate(c / ckpt.WEIGHTS), rf"corrupt .*{WEIGHTS}"),
    "state-truncated": (lambda c: truncate(c / ckpt.STATE), rf"corrupt .*{STATE}"),
    "q-tensor-renamed": (
        lambda c: edit_tensors(
            c, lambda t: t.update({"q_network.head.b": t.pop("q_network.head.bias")})
        ),
        rf"{WEIGHTS} \(q_network\.\*\).*missing tensors \['head\.bias'\]; unexpected "
        r"tensors \['head\.b'\]",
    ),
    "q-tensor-other-shape": Q_TENSOR_OTHER_SHAPE,
    "note-rnn-config-of-another-size": (
        lambda c: edit_state(c, lambda s: s["note_rnn_config"].update(hidden_size=32)),
        rf"{WEIGHTS} \(reward_rnn.*hidden_size=32.*has shape \(38, 16\), expected \(38, 32\)",
    ),
    "note-rnn-config-invalid": (
        lambda c: edit_state(c, lambda s: s["note_rnn_config"].update(hidden_size=0)),
        rf"{STATE}: invalid note_rnn_config",
    ),
    "config-missing": (
        lambda c: edit_state(c, lambda s: s.pop("config")),
        rf"{STATE} is incomplete: it lacks the keys \['config'\]",
    ),
    "note-rnn-config-missing": (
        lambda c: edit_state(c, lambda s: s.pop("note_rnn_config")),
        rf"{STATE} is incomplete: it lacks the keys \['note_rnn_config'\]",
    ),
    "rng-state-missing": (
        lambda c: edit_tensors(c, lambda t: t.pop("torch_rng_state")),
        rf"{WEIGHTS} lacks the tensor 'torch_rng_state'",
    ),
    "no-checkpoint": (
        lambda c: shutil.rmtree(c.parent),
        r"no checkpoint in .*run: expected a run folder with checkpoints/latest\.json, or a "
        r"checkpoint folder with state\.json and weights\.safetensors",
    ),
    "pointer-not-json": (
        lambda c: (c.parent / ckpt.LATEST).write_text("{"),
        rf"corrupt checkpoint pointer .*{LATEST}: Expecting",
    ),
    "pointer-larger-than-4-kb": (
        lambda c: (c.parent / ckpt.LATEST).write_text(pointer_json(128).ljust(4097)),
        rf"corrupt checkpoint pointer .*{LATEST}: larger than 4 KB",
    ),
    "pointer-name-not-text": (
        lambda c: (c.parent / ckpt.LATEST).write_text('{"checkpoint": 5}'),
        rf"corrupt checkpoint pointer .*{LATEST}: checkpoint 5 is not a folder name "
        r"step_NNNNNNNNN next to it",
    ),
    "pointer-step-disagrees": (
        lambda c: (c.parent / ckpt.LATEST).write_text(pointer_json(64)),
        rf"corrupt checkpoint pointer .*{LATEST}: step 64 but step_000000128",
    ),
    "state-of-another-format": (
        lambda c: edit_state(c, lambda s: s.update(format="another")),
        rf"{STATE} is not an RL Tuner checkpoint \(format 'melody-rl/rl-tuner-checkpoint'\)",
    ),
    "state-not-an-object": (
        lambda c: (c / ckpt.STATE).write_text("[]"),
        rf"{STATE} is not an RL Tuner checkpoint",
    ),
    "config-invalid": (
        lambda c: edit_state(c, lambda s: s["config"].update(gamma=7)),
        rf"{STATE} holds an invalid config: gamma must be in \[0, 1\], got 7",
    ),
    "progress-global-step-disagrees": (
        lambda c: edit_state(c, lambda s: s["progress"].update(global_step=64)),
        rf"{STATE}: progress\.global_step = 64 disagrees with its folder step_000000128",
    ),
    "progress-count-not-an-integer": (
        lambda c: edit_state(c, lambda s: s["progress"].update(global_step=128.0)),
        rf"{STATE}: progress\.global_step = 128\.0 \(must be >= 0\)",
    ),
    "progress-not-an-object": (
        lambda c: edit_state(c, lambda s: s.update(progress=[128])),
        rf"{STATE}: 'progress' must be a JSON object",
    ),
    "progress-negative-time": (
        lambda c: edit_state(c, lambda s: s["progress"].update(train_seconds=-1.0)),
        rf"{STATE}: progress\.train_seconds = -1\.0 \(must be >= 0\)",
    ),
    "progress-infinite-time": (
        lambda c: edit_state(c, lambda s: s["progress"].update(train_seconds=float("inf"))),
        rf"{STATE}: progress\.train_seconds = inf",
    ),
    "progress-time-as-text": (
        lambda c: edit_state(c, lambda s: s["progress"].update(train_seconds="12")),
        rf"{STATE}: progress\.train_seconds = '12'",
    ),
}


@pytest.mark.parametrize("case", AGENT_CASES)
def test_bad_agent_checkpoint_is_refused_by_load_agent_and_generate(run, case, capsys, tmp_path):
    folder, checkpoint = run
    damage, problem = AGENT_CASES[case]
    damage(checkpoint)
    with pytest.raises((ValueError, FileNotFoundError), match=problem):
        ckpt.load_agent(folder)
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(folder), "--out", str(tmp_path / "m")]) == 2
    assert "melody-rl generate: error:" in capsys.readouterr().err


@pytest.mark.parametrize("name", [ckpt.WEIGHTS, ckpt.STATE, ckpt.REPLAY])
def test_a_pickle_in_an_agent_checkpoint_is_never_unpickled(run, bomb, name):
    folder, checkpoint = run
    (checkpoint / name).write_bytes(bomb)
    message = {
        ckpt.WEIGHTS: rf"corrupt checkpoint weights .*{WEIGHTS}",
        ckpt.STATE: rf"corrupt checkpoint state .*{STATE}",
        ckpt.REPLAY: rf"{REPLAY} is unreadable: .*pickled \(object\) data",
    }[name]
    with pytest.raises(ValueError, match=message):
        Trainer(ckpt.load_checkpoint(folder).config, folder, resume=True)


def object_array_replay(path):
    """An .npz whose ``actions`` is an object array: a pickle inside a valid zip."""
    with np.load(path) as data:
        arrays = dict(data)
    arrays["actions"] = np.array([PickleBomb(path.parent / "EXECUTED")], dtype=object)
    np.savez(path.with_suffix(".tmp.npz"), **arrays)
    path.with_suffix(".tmp.npz").replace(path)


def adam_key_past_the_end(tensors):
    """Adam's state name for the parameter one past the last (their indices are 0..P-1)."""
    last = max(int(key.split(".")[1]) for key in tensors if key.startswith("optimizer."))
    return f"optimizer.{last + 1}.exp_avg"


# Only a resume reads the replay buffer and Adam's state.
RESUME_CASES = {
    "replay-missing": (lambda c: (c / ckpt.REPLAY).unlink(), r"step_000000128 has no replay\.npz"),
    "replay-truncated": (lambda c: truncate(c / ckpt.REPLAY), rf"{REPLAY} is unreadable"),
    "replay-with-object-array": (
        lambda c: object_array_replay(c / ckpt.REPLAY),
        rf"{REPLAY} is unreadable: Object arrays cannot be loaded",
    ),
    "replay-array-missing": (
        lambda c: np.savez(c / ckpt.REPLAY, actions=np.zeros((16, 8), dtype=np.int64)),
        rf"{REPLAY} lacks the arrays \['primers', 'primer_lengths', 'rewards'",
    ),
    "adam-state-other-shape": (
        lambda c: edit_tensors(c, lambda t: t.update({"optimizer.0.exp_avg": torch.zeros(2)})),
        r"step_000000128 cannot be restored: .*'optimizer\.0\.exp_avg' has shape \(2,\)",
    ),
    "q-tensor-other-shape": Q_TENSOR_OTHER_SHAPE,
    "adam-state-of-no-parameter": (
        lambda c: edit_tensors(c, lambda t: t.update({adam_key_past_the_end(t): torch.zeros(1)})),
        r"cannot be restored: ValueError: 'optimizer\.(\d+)\.exp_avg' belongs to no parameter "
        r"\(there are \1\)",
    ),
    "adam-state-index-not-a-number": (
        lambda c: edit_tensors(c, lambda t: t.update({"optimizer.x.exp_avg": torch.zeros(1)})),
        r"'optimizer\.x\.exp_avg' belongs to no parameter",
    ),
    "progress-unknown-field": (
        lambda c: edit_state(c, lambda s: s["progress"].update(episodes_done=3)),
        r"step_000000128 cannot be restored: TypeError: .*'episodes_done'",
    ),
}


@pytest.mark.parametrize("case", RESUME_CASES)
def test_bad_agent_checkpoint_is_refused_by_resume(run, case, capsys):
    folder, checkpoint = run
    damage, problem = RESUME_CASES[case]
    damage(checkpoint)
    with pytest.raises(ValueError, match=problem):
        Trainer(ckpt.load_checkpoint(folder).config, folder, resume=True)
    capsys.readouterr()
    assert main(["train", "--out", str(folder), "--resume", "--no-progress"]) == 2
    assert "melody-rl train: error:" in capsys.readouterr().err
    assert not (checkpoint.parent / "EXECUTED").exists()


def test_a_pointer_of_4_kb_and_one_without_its_step_are_read(run):
    folder, checkpoint = run
    latest = checkpoint.parent / ckpt.LATEST
    latest.write_text(pointer_json(128).ljust(4096))
    assert ckpt.find_checkpoint(folder) == checkpoint
    latest.write_text('{"checkpoint": "step_000000128"}')  # the step is optional
    assert ckpt.find_checkpoint(folder) == checkpoint


def test_weights_larger_than_the_bound_are_refused_before_they_are_read(run, monkeypatch):
    folder, checkpoint = run
    size = (checkpoint / ckpt.WEIGHTS).stat().st_size
    monkeypatch.setattr(ckpt, "MAX_WEIGHTS_BYTES", size - 1)
    bound = f"{size:,} bytes, more than the {size - 1:,} allowed"
    with pytest.raises(ValueError, match=rf"corrupt checkpoint weights .*{WEIGHTS}: .*{bound}"):
        ckpt.load_checkpoint(folder)
