"""Red team: what a hostile file, a careless argument, a signal or a second process does.

Each case does one hostile or careless thing and states what handling it well means:

- a bad argument or file: a ``ValueError`` or ``FileNotFoundError`` (Gymnasium's own error
  where Gymnasium enforces the API), with a one-line message that names the bad value or the
  argument (a substring the case gives), and less than 100 MB of peak memory growth;
- a CLI mistake: a nonzero exit, no traceback, and a last line ``melody-rl CMD: error: ...``
  naming the problem (argparse's usage line may precede it);
- a planted pickle: refused or ignored, and the marker file it would create never appears;
- a signal, a second process, a fork: the documented outcome (exit 130/143 with a checkpoint
  and a resume line; a refusal naming the lock holder's pid; no hang, within a timeout);
- a valid but unusual input: it works.

Prints one line per case that is not handled well, then the count::

    python benchmarks/red_team.py            # all cases (a few minutes on 2 cores)
    python benchmarks/red_team.py --only env,midi   # some groups
    python benchmarks/red_team.py --list     # the cases, by group

Exit status 0 when at most ``--allowed`` (default 5) cases are not handled well.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import pickle
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

ROOT = Path(__file__).resolve().parents[1]
MEMORY_LIMIT_KB = 100 * 1024
WORK = Path(tempfile.mkdtemp(prefix="red_team_"))


class NotHandled(Exception):
    """A case's outcome that is not the documented, well-handled one."""


CASES: list[tuple[str, str, Callable[[], None]]] = []


def case(group: str, name: str):
    def register(function: Callable[[], None]) -> Callable[[], None]:
        CASES.append((group, name, function))
        return function

    return register


def expect_error(
    call: Callable[[], object],
    mentions: str | tuple[str, ...] = (),
    types: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError),
) -> str:
    """``call`` must raise one of ``types`` with a one-line message containing ``mentions``."""
    try:
        call()
    except types as error:
        message = str(error)
        if "\n" in message.strip():
            raise NotHandled(f"multi-line message: {message[:120]!r}") from None
        for text in (mentions,) if isinstance(mentions, str) else mentions:
            if text.lower() not in message.lower():
                raise NotHandled(f"message lacks {text!r}: {message[:160]!r}") from None
        return message
    except BaseException as error:
        raise NotHandled(f"{type(error).__name__}: {str(error)[:160]}") from None
    raise NotHandled("accepted (no error)")


def tiny_rnn():
    from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig

    if not hasattr(tiny_rnn, "model"):
        tiny_rnn.model = NoteRNN(NoteRNNConfig(hidden_size=16), seed=0)
        tiny_rnn.path = WORK / "tiny.safetensors"
        tiny_rnn.model.save(tiny_rnn.path)
    return tiny_rnn.model


def make_env(**kwargs):
    import gymnasium as gym

    import melody_env

    kwargs.setdefault("reward_rnn", tiny_rnn())
    return gym.make(melody_env.ENV_ID, **kwargs)


def make_vec(num_envs=2, **kwargs):
    from melody_env import MelodyCompositionVectorEnv

    kwargs.setdefault("reward_rnn", tiny_rnn())
    return MelodyCompositionVectorEnv(num_envs, **kwargs)


# ----------------------------------------------------------------------------- env arguments

ENV_ARGUMENTS = [
    ("composition_length", 0),
    ("composition_length", -1),
    ("composition_length", 1.5),
    ("composition_length", "32"),
    ("composition_length", True),
    ("composition_length", 10**9),
    ("steps_per_bar", 0),
    ("steps_per_bar", 500_000_000),
    ("steps_per_bar", "16"),
    ("primer_context", -1),
    ("primer_context", 1_000_000),
    ("primer_context", 2.5),
    ("key", "H major"),
    ("key", 5),
    ("key", ""),
    ("key", None),
    ("reward_mode", "bogus"),
    ("reward_mode", 5),
    ("reward_scaler", "2.0"),
    ("reward_scaler", float("nan")),
    ("reward_scaler", float("inf")),
    ("reward_scaler", True),
    ("reward_weights", "key"),
    ("reward_weights", {"nope": 1.0}),
    ("reward_weights", {"key": "1"}),
    ("reward_weights", {"key": float("inf")}),
    ("reward_terms", [len]),
    ("reward_terms", {"mine": 5}),
    ("reward_terms", {"key": lambda ctx: 0.0}),
    ("render_mode", 5),
    ("render_mode", "bogus"),
    ("primer", [99]),
    ("primer", [-1]),
    ("primer", []),
    ("primer", [[2, 3]]),
    ("primer", [2.5]),
    ("primer", "/nonexistent/primer.mid"),
    ("reward_rnn", "/nonexistent/rnn.safetensors"),
    ("reward_rnn", 5),
    ("qpm", float("inf")),
    ("qpm", 0),
]
for _name, _value in ENV_ARGUMENTS:
    _mention = _name.split("_")[0] if _name not in ("primer", "qpm", "key") else ""
    if _name == "reward_terms":
        _mention = "reward term" if isinstance(_value, dict) else "reward_terms"
    if _name == "reward_rnn":
        _mention = ""

    @case("env", f"gym.make({_name}={_value!r:.30})")
    def _env_argument(name=_name, value=_value, mention=_mention):
        def build():
            env = make_env(**{name: value})
            env.reset(seed=0)
            env.step(3)

        expect_error(build, mention)


@case("env", "a valid unusual env: key='f# minor', length 1, context 0")
def _valid_env():
    env = make_env(key="f# minor", composition_length=1, primer_context=0)
    env.reset(seed=0)
    _, _, terminated, _, _ = env.step(5)
    if not terminated:
        raise NotHandled("a one-step episode did not terminate")


# ----------------------------------------------------------------------------------- actions

for _action in (-1, 38, 1.5, "3", None, 10**20, float("nan"), [3], np.array([3, 4])):

    @case("actions", f"step({_action!r:.20})")
    def _bad_action(action=_action):
        env = make_env()
        env.reset(seed=0)
        expect_error(lambda: env.step(action), "action")


@case("actions", "step(np.int64(3)) and step(np.array(3)) work")
def _numpy_actions():
    env = make_env()
    env.reset(seed=0)
    env.step(np.int64(3))
    env.step(np.array(3))


@case("actions", "step after the episode ended")
def _step_after_end():
    import gymnasium as gym

    env = make_env(composition_length=2)
    env.reset(seed=0)
    env.step(3)
    env.step(3)
    expect_error(lambda: env.step(3), "reset", types=(ValueError, RuntimeError, gym.error.Error))


@case("actions", "step before reset")
def _step_before_reset():
    import gymnasium as gym

    env = make_env()
    expect_error(lambda: env.step(3), "reset", types=(ValueError, gym.error.Error))


# ----------------------------------------------------------------------------- reset options

RESET_OPTIONS = [
    (["key"], "options"),
    ({"key": 5}, "key"),
    ({"key": "H major"}, "H major"),
    ({"primer": [99]}, "99"),
    ({"bogus": 1}, "bogus"),
    ("key=C", "options"),
]
for _options, _mention in RESET_OPTIONS:

    @case("reset", f"reset(options={_options!r})")
    def _bad_options(options=_options, mention=_mention):
        env = make_env()
        expect_error(lambda: env.reset(seed=0, options=options), mention)


for _seed in (-1, 1.5, "a"):

    @case("reset", f"reset(seed={_seed!r})")
    def _bad_seed(seed=_seed):
        env = make_env()
        import gymnasium as gym  # Gymnasium checks seeds itself, with a one-line error

        expect_error(lambda: env.reset(seed=seed), "seed", types=(ValueError, gym.error.Error))


# -------------------------------------------------------------------------------- vector env

for _n in (0, -1, 3_000_000, 1.5, "2"):

    @case("vector", f"MelodyCompositionVectorEnv({_n!r})")
    def _bad_num_envs(n=_n):
        expect_error(lambda: make_vec(n), "num_envs")


VECTOR_STEPS = [
    (np.array([3]), "shape"),
    (np.array([3, 4, 5]), "shape"),
    (np.array([3.5, 4.0]), "action"),
    (np.array([3, 99]), "99"),
    (np.array([-1, 3]), "-1"),
    ([[3], [4]], "shape"),
]
for _actions, _mention in VECTOR_STEPS:

    @case("vector", f"vector step({np.asarray(_actions).tolist()!r})")
    def _bad_vector_step(actions=_actions, mention=_mention):
        envs = make_vec(2)
        envs.reset(seed=0)
        expect_error(lambda: envs.step(actions), mention)


for _options, _mention in (({"key": 5}, "key"), ({"key": ["C major"]}, "key"), ([1], "options")):

    @case("vector", f"vector reset(options={_options!r})")
    def _bad_vector_options(options=_options, mention=_mention):
        envs = make_vec(2)
        expect_error(lambda: envs.reset(seed=0, options=options), mention)


@case("vector", "vector reset(seed=[0]) for 2 envs")
def _bad_vector_seeds():
    envs = make_vec(2)
    expect_error(lambda: envs.reset(seed=[0]), "seed")


# ------------------------------------------------------------------------------ reward terms

BAD_TERMS = [
    (lambda ctx: "abc", "mine"),
    (lambda ctx: None, "mine"),
    (lambda ctx: float("nan"), "mine"),
    (lambda ctx: float("inf"), "mine"),
    (lambda ctx: np.zeros(7), "mine"),
    (lambda ctx: {"a": 1}, "mine"),
    (lambda ctx: [1.0, "x"], "mine"),
]
for _index, (_term, _mention) in enumerate(BAD_TERMS):

    @case("terms", f"a reward term returning bad value #{_index}")
    def _bad_term(term=_term, mention=_mention):
        env = make_env(reward_terms={"mine": term})
        env.reset(seed=0)
        expect_error(lambda: env.step(3), mention)


def _raising_then_retry(vector: bool) -> None:
    """A term that raises once: the step must change nothing, so the retry equals a clean run."""
    calls = {"n": 0}

    def flaky(ctx):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("flaky term")
        return 0.5

    def run(term):
        env = (
            make_vec(2, reward_terms={"mine": term})
            if vector
            else make_env(reward_terms={"mine": term})
        )
        env.reset(seed=0)
        rewards = []
        for step in range(6):
            action = np.array([3 + step, 5]) if vector else 3 + step
            try:
                rewards.append(np.asarray(env.step(action)[1]).tolist())
            except RuntimeError:
                rewards.append(np.asarray(env.step(action)[1]).tolist())  # the retry
        return rewards

    if run(flaky) != run(lambda ctx: 0.5):
        raise NotHandled("a retried step after a raising term gives other rewards")


@case("terms", "a raising term, then a retry (single env): exact")
def _retry_single():
    _raising_then_retry(vector=False)


@case("terms", "a raising term, then a retry (vector env): exact")
def _retry_vector():
    _raising_then_retry(vector=True)


# ----------------------------------------------------------------------------- crafted MIDI


def write_notes(path: Path, notes, program=0, is_drum=False) -> Path:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    instrument = pretty_midi.Instrument(program=program, is_drum=is_drum)
    for pitch, start, end in notes:
        instrument.notes.append(pretty_midi.Note(100, pitch, start, end))
    midi.instruments.append(instrument)
    midi.write(str(path))
    return path


def read(path):
    from melody_env.io.midi_reader import read_primer

    return read_primer(path)


def midi_case(name: str, make: Callable[[Path], Path], mention: str = "") -> None:
    @case("midi", name)
    def _midi():
        path = make(WORK / f"midi_{time.monotonic_ns()}.mid")
        expect_error(lambda: read(path), mention)


midi_case("missing file", lambda p: p, "does not exist")
midi_case("empty file", lambda p: (p.write_bytes(b""), p)[1], "not a readable MIDI")
midi_case("random bytes", lambda p: (p.write_bytes(os.urandom(500)), p)[1], "MIDI")
midi_case(
    "truncated file",
    lambda p: (
        write_notes(p, [(60, 0, 1)] * 4),
        p.write_bytes(p.read_bytes()[:30]),
        p,
    )[2],
    "MIDI",
)
midi_case("drum-only", lambda p: write_notes(p, [(36, 0, 1)], is_drum=True), "drum")
midi_case("no notes", lambda p: write_notes(p, []), "no notes")
midi_case("a folder", lambda p: (p.mkdir(), p)[1], "not a regular file")
midi_case("a FIFO (must not block)", lambda p: (os.mkfifo(p), p)[1], "not a regular file")
midi_case("11 MB file", lambda p: (p.write_bytes(b"MThd" + b"\0" * (11 << 20)), p)[1], "too large")
midi_case(
    "120,000 notes",
    lambda p: write_notes(p, [(60, i * 0.01, i * 0.01 + 0.005) for i in range(120_000)]),
    "too large",
)
midi_case(
    "a melody of 42 hours",
    lambda p: write_notes(p, [(60, 0, 1), (62, 150_000, 150_001)]),
    "MIDI",
)


@case("midi", "a polyphonic primer: its skyline, with a warning")
def _polyphonic():
    from melody_env.io.midi_reader import PolyphonicPrimerWarning

    path = write_notes(WORK / "chords.mid", [(60, 0, 1), (64, 0, 1), (67, 0, 1), (65, 1, 2)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tokens = read(path)
    if not any(issubclass(w.category, PolyphonicPrimerWarning) for w in caught):
        raise NotHandled("no warning for a polyphonic primer")
    if tokens.tolist()[0] != 21:  # G4, the top of the triad
        raise NotHandled(f"not the skyline: {tokens.tolist()}")


@case("midi", "extreme pitches fold into the range")
def _extreme_pitches():
    tokens = read(write_notes(WORK / "wide.mid", [(0, 0, 1), (127, 1, 2)]))
    if not (tokens.min() >= 0 and tokens.max() < 38):
        raise NotHandled(f"tokens out of range: {tokens.tolist()}")


@case("midi", "a primer rewritten with the same mtime is read again")
def _stale_primer():
    path = WORK / "same_mtime.mid"
    write_notes(path, [(60, 0, 0.5), (64, 0.5, 1.0), (67, 1.0, 1.5)])  # C E G
    stat = path.stat()
    env = make_env(primer=str(path), key="C major")
    first = env.reset(seed=0)[1]["primer"]
    write_notes(path, [(60, 0, 0.5), (62, 0.5, 1.0), (67, 1.0, 1.5)])  # C D G
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = env.reset(seed=0)[1]["primer"]
    if np.array_equal(first, second):
        raise NotHandled(f"served the old primer from the cache: {np.asarray(second).tolist()}")


# ------------------------------------------------------------------------- Note RNN files


class Payload:
    """Unpickling this creates ``marker``: proof that a loader ran code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def marker_path() -> Path:
    return WORK / f"EXECUTED_{len(CASES)}_{time.monotonic_ns()}"


def rnn_tensors(hidden_size=8, num_layers=1):
    from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig

    model = NoteRNN(NoteRNNConfig(hidden_size=hidden_size, num_layers=num_layers), seed=0)
    return {name: tensor.contiguous() for name, tensor in model.state_dict().items()}


def rnn_file(path: Path, tensors=None, **config) -> Path:
    from safetensors.torch import save_file

    metadata = {"format": "melody-rl/note-rnn", "config": json.dumps({"hidden_size": 8} | config)}
    save_file(tensors if tensors is not None else rnn_tensors(), str(path), metadata=metadata)
    return path


def raw_safetensors(path: Path, entries: dict, metadata: dict, data: bytes = b"") -> Path:
    document = json.dumps({"__metadata__": metadata, **entries}).encode()
    path.write_bytes(struct.pack("<Q", len(document)) + document + data)
    return path


def rnn_case(name: str, make: Callable[[Path], Path], mention: str = "") -> None:
    @case("note_rnn", name)
    def _rnn():
        from melody_env.models.note_rnn import NoteRNN

        path = make(WORK / f"rnn_{len(CASES)}_{time.monotonic_ns()}.safetensors")
        expect_error(lambda: NoteRNN.load(path), mention)


def _with(tensors, name, value):
    tensors[name][0, 0] = value
    return tensors


def _cast(dtype):
    import torch

    return {name: t.to(getattr(torch, dtype)) for name, t in rnn_tensors().items()}


rnn_case("missing", lambda p: p, "not found")
rnn_case("empty", lambda p: (p.write_bytes(b""), p)[1], "not a readable safetensors")
rnn_case("a pickle", lambda p: (p.write_bytes(pickle.dumps(Payload(marker_path()))), p)[1])
rnn_case("num_classes=1e6", lambda p: rnn_file(p, num_classes=1_000_000), "num_classes")
rnn_case("num_classes=40", lambda p: rnn_file(p, num_classes=40), "num_classes")
rnn_case("num_layers=1e6", lambda p: rnn_file(p, num_layers=1_000_000), "num_layers")
rnn_case("hidden_size=1e9", lambda p: rnn_file(p, hidden_size=10**9), "hidden_size")
rnn_case("hidden_size=-3", lambda p: rnn_file(p, hidden_size=-3), "hidden_size")
rnn_case("hidden_size='8'", lambda p: rnn_file(p, hidden_size="8"), "hidden_size")
rnn_case(
    "config not JSON",
    lambda p: (
        rnn_file(p, tensors=None)
        if False
        else raw_safetensors(p, {}, {"format": "melody-rl/note-rnn", "config": "{nope"})
    ),
    "config",
)
rnn_case("no config", lambda p: raw_safetensors(p, {}, {"format": "melody-rl/note-rnn"}), "config")
rnn_case("another format", lambda p: raw_safetensors(p, {}, {"format": "other"}), "format")
rnn_case("shapes of another size", lambda p: rnn_file(p, rnn_tensors(16)), "shape")
rnn_case(
    "a tensor missing",
    lambda p: rnn_file(p, {k: v for k, v in rnn_tensors().items() if k != "head.bias"}),
    "missing",
)
rnn_case("uint8 weights", lambda p: rnn_file(p, _cast("uint8")), "floating")
rnn_case("int64 weights", lambda p: rnn_file(p, _cast("int64")), "floating")
rnn_case("bool weights", lambda p: rnn_file(p, _cast("bool")), "floating")
rnn_case(
    "a NaN weight", lambda p: rnn_file(p, _with(rnn_tensors(), "lstm.weight_hh_l0", np.nan)), "NaN"
)
rnn_case(
    "an inf weight", lambda p: rnn_file(p, _with(rnn_tensors(), "head.weight", np.inf)), "infinite"
)
rnn_case(
    "header claims 4 TB",
    lambda p: raw_safetensors(
        p,
        {"head.bias": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 4 * 10**12]}},
        {"format": "melody-rl/note-rnn", "config": "{}"},
    ),
    "offsets",
)
rnn_case("header length 2^62", lambda p: (p.write_bytes(struct.pack("<Q", 2**62)), p)[1], "header")
rnn_case(
    "deeply nested header",
    lambda p: (p.write_bytes(struct.pack("<Q", 50_000) + b"[" * 50_000), p)[1],
    "header",
)
rnn_case("truncated", lambda p: (rnn_file(p), p.write_bytes(p.read_bytes()[:300]), p)[2])
rnn_case("a folder", lambda p: (p.mkdir(), p)[1], "regular file")
rnn_case("a FIFO (must not block)", lambda p: (os.mkfifo(p), p)[1], "regular file")


@case("note_rnn", "float16 weights load as float32")
def _float16_rnn():
    from melody_env.models.note_rnn import NoteRNN

    model = NoteRNN.load(rnn_file(WORK / "f16.safetensors", _cast("float16")))
    if str(model.head.weight.dtype) != "torch.float32":
        raise NotHandled(f"dtype {model.head.weight.dtype}")


@case("note_rnn", "loading the shipped model keeps the caller's torch threads")
def _threads_kept():
    import torch

    from melody_env.models.note_rnn import NoteRNN

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        NoteRNN.load()
        make_vec(4, reward_rnn=NoteRNN.load()).reset(seed=0)
        if torch.get_num_threads() != 2:
            raise NotHandled(f"threads changed to {torch.get_num_threads()}")
    finally:
        torch.set_num_threads(previous)


# ------------------------------------------------------------------------ agent checkpoints


def tiny_config(**overrides):
    from agents.rl_tuner.config import make_config

    tiny_rnn()
    base = dict(
        num_envs=8,
        env={"composition_length": 8, "reward_rnn": str(tiny_rnn.path)},
        total_steps=384,
        learning_starts=64,
        train_frequency=16,
        batch_size=4,
        exploration_steps=256,
        eval_every=0,
        checkpoint_every=128,
        summary_compositions=0,
        num_samples=0,
        progress_bar=False,
    )
    return make_config("fast", "q", **(base | overrides))


def trained_run() -> Path:
    """A finished tiny run (made once); cases copy it before changing anything."""
    from agents.rl_tuner.trainer import train

    run = WORK / "trained"
    if not (run / "checkpoints" / "latest.json").exists():
        with contextlib.redirect_stdout(io.StringIO()):
            train(tiny_config(), run, log=lambda *_: None)
    return run


def checkpoint_case(name: str, change: Callable[[Path], None], mention: str = "") -> None:
    @case("agent_checkpoint", name)
    def _checkpoint():
        from agents.rl_tuner.checkpoint import load_agent

        run = Path(shutil.copytree(trained_run(), WORK / f"run_{len(CASES)}_{time.monotonic_ns()}"))
        change(run)
        expect_error(lambda: load_agent(run), mention)


def _latest(run: Path) -> Path:
    return run / "checkpoints" / "latest.json"


def _step_folder(run: Path) -> Path:
    return run / "checkpoints" / json.loads(_latest(run).read_text())["checkpoint"]


def _edit_state(run: Path, edit) -> None:
    path = _step_folder(run) / "state.json"
    state = json.loads(path.read_text())
    edit(state)
    path.write_text(json.dumps(state))


def _edit_weights(run: Path, edit) -> None:
    from safetensors.torch import load_file, save_file

    path = _step_folder(run) / "weights.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path), metadata={"format": "melody-rl/rl-tuner-checkpoint"})


def _first_q_weight(tensors):
    return next(name for name in tensors if name.startswith("q_network."))


checkpoint_case(
    "latest.json points outside the run (../../)",
    lambda run: _latest(run).write_text(
        json.dumps({"checkpoint": "../../trained/checkpoints/step_000000384", "step": 384})
    ),
    "step_NNNNNNNNN",
)
checkpoint_case(
    "latest.json holds an absolute path",
    lambda run: _latest(run).write_text(json.dumps({"checkpoint": str(WORK), "step": 384})),
    "not a folder name",
)
checkpoint_case(
    "latest.json's step disagrees",
    lambda run: _latest(run).write_text(json.dumps({"checkpoint": "step_000000384", "step": 5})),
    "step",
)
checkpoint_case("latest.json not JSON", lambda run: _latest(run).write_text("{"), "pointer")
checkpoint_case(
    "global_step = -5000",
    lambda run: _edit_state(run, lambda s: s["progress"].update(global_step=-5000)),
    "global_step",
)
checkpoint_case(
    "global_step disagrees with its folder",
    lambda run: _edit_state(run, lambda s: s["progress"].update(global_step=999)),
    "disagrees",
)
checkpoint_case(
    "train_seconds = NaN",
    lambda run: _edit_state(run, lambda s: s["progress"].update(train_seconds=float("nan"))),
    "train_seconds",
)
checkpoint_case(
    "NaN Q-weights",
    lambda run: _edit_weights(run, lambda t: t[_first_q_weight(t)].view(-1).__setitem__(0, np.nan)),
    "NaN",
)
checkpoint_case(
    "int64 Q-weights",
    lambda run: _edit_weights(
        run, lambda t: t.update({_first_q_weight(t): t[_first_q_weight(t)].long()})
    ),
    "floating",
)
checkpoint_case(
    "weights replaced by a pickle",
    lambda run: (_step_folder(run) / "weights.safetensors").write_bytes(
        pickle.dumps(Payload(marker_path()))
    ),
)
checkpoint_case(
    "state.json replaced by a pickle",
    lambda run: (_step_folder(run) / "state.json").write_bytes(
        pickle.dumps(Payload(marker_path()))
    ),
)
checkpoint_case(
    "config with num_envs = 3,000,000",
    lambda run: _edit_state(run, lambda s: s["config"].update(num_envs=3_000_000)),
    "num_envs",
)
checkpoint_case(
    "note_rnn_config with hidden_size 1e9",
    lambda run: _edit_state(run, lambda s: s["note_rnn_config"].update(hidden_size=10**9)),
    "hidden_size",
)
checkpoint_case(
    "weights missing",
    lambda run: (_step_folder(run) / "weights.safetensors").unlink(),
    "weights",
)


@case("agent_checkpoint", "a replay.npz holding pickled objects is refused on resume")
def _replay_pickle():
    from agents.rl_tuner.trainer import Trainer

    run = Path(shutil.copytree(trained_run(), WORK / f"run_replay_{time.monotonic_ns()}"))
    replay = _step_folder(run) / "replay.npz"
    with np.load(replay, allow_pickle=False) as data:
        arrays = dict(data)
    name = next(iter(arrays))
    arrays[name] = np.array([Payload(marker_path())], dtype=object)
    np.savez(replay, **arrays)
    expect_error(lambda: Trainer(tiny_config(), run, resume=True, log=lambda *_: None))


# -------------------------------------------------------------------------------- SB3 zips


def sb3_zip(algo: str = "DQN") -> Path:
    path = WORK / f"{algo}.zip"
    if not path.exists():
        import stable_baselines3

        env = make_env(composition_length=8)
        model = getattr(stable_baselines3, algo)(
            "MlpPolicy", env, policy_kwargs={"net_arch": [8]}, seed=0, verbose=0
        )
        model.save(path)
    return path


def rewrite_zip(target: Path, change: Callable[[dict], None], source: Path | None = None) -> Path:
    with zipfile.ZipFile(source or sb3_zip()) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    change(data)
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return target


def pickled_payload() -> str:
    return base64.b64encode(pickle.dumps(Payload(marker_path()))).decode()


def sb3_case(
    name: str,
    make: Callable[[Path], Path],
    spec: str = "sb3-dqn",
    mention: str = "",
    loads: bool = False,
) -> None:
    @case("sb3", name)
    def _sb3():
        from melody_env.evaluation.policies import load_policy

        path = make(WORK / f"sb3_{len(CASES)}_{time.monotonic_ns()}.zip")
        if loads:
            load_policy(f"{spec}:{path}")
        else:
            expect_error(lambda: load_policy(f"{spec}:{path}"), mention)


for _key in ("lr_schedule", "policy_class", "observation_space", "exploration_schedule"):
    sb3_case(
        f"a payload in {_key} (replaced: loads, never runs)",
        lambda p, key=_key: rewrite_zip(
            p, lambda d: d.update({key: {**d[key], ":serialized:": pickled_payload()}})
        ),
        loads=True,
    )
sb3_case(
    "a payload in an unknown entry",
    lambda p: rewrite_zip(
        p, lambda d: d.update(evil={":type:": "<class 'x'>", ":serialized:": pickled_payload()})
    ),
    mention="'evil' is a pickled",
)
sb3_case(
    "a payload in policy_kwargs naming an unknown class",
    lambda p: rewrite_zip(
        p,
        lambda d: d.update(
            policy_kwargs={
                ":type:": "<class 'dict'>",
                ":serialized:": pickled_payload(),
                "features_extractor_class": "<class 'evil.X'>",
            }
        ),
    ),
    mention="features_extractor_class",
)
sb3_case(
    "net_arch [1e9]",
    lambda p: rewrite_zip(p, lambda d: d.update(policy_kwargs={"net_arch": [10**9]})),
    mention="net_arch",
)
sb3_case("a PPO zip as sb3-dqn", lambda p: sb3_zip("PPO"), mention="PPO")
sb3_case("not a zip", lambda p: (p.write_bytes(b"nope"), p)[1], mention="zip")


def write_zip(path: Path, entries: dict[str, bytes], zeros_mb: int = 0) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
        if zeros_mb:
            with archive.open("policy.pth", "w") as handle:
                for _ in range(zeros_mb):
                    handle.write(bytes(1 << 20))
    return path


sb3_case("a zip without data", lambda p: write_zip(p, {"x": b""}), mention="data")
sb3_case("data not JSON", lambda p: write_zip(p, {"data": b"{nope"}), mention="JSON")
sb3_case(
    "a 300 MB zip bomb",
    lambda p: write_zip(p, {"data": b"{}"}, zeros_mb=300),
    mention="more than",
)
sb3_case(
    "observation space of 10^9",
    lambda p: rewrite_zip(p, lambda d: d["observation_space"].update(n=10**9)),
    mention="observation_space",
)


# ------------------------------------------------------------------------------- CLI arguments


def run_cli(argv: list[str]) -> tuple[int, str]:
    from agents.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, err.getvalue()


def cli_case(argv: list[str] | Callable[[], list[str]], mention: str = "") -> None:
    label = " ".join(argv).replace(OUT, "OUT") if isinstance(argv, list) else argv.__doc__
    command = argv[0] if isinstance(argv, list) else label.split()[0]

    @case("cli", f"melody-rl {label}"[:90])
    def _cli():
        arguments = argv if isinstance(argv, list) else argv()
        code, err = run_cli(arguments)
        lines = [line for line in err.strip().splitlines() if line.strip()]
        if code == 0:
            raise NotHandled("exit status 0")
        if "Traceback" in err:
            raise NotHandled(f"traceback: {lines[-1][:120] if lines else ''}")
        if not lines or not lines[-1].startswith(f"melody-rl {command}: error: "):
            raise NotHandled(f"last line is {lines[-1][:120] if lines else '(none)'!r}")
        if len(lines) > 1 and not lines[0].startswith("usage:"):
            raise NotHandled(f"{len(lines)} lines: {lines[0][:100]!r}")
        if not any(text.lower() in lines[-1].lower() for text in mention.split("|")):
            raise NotHandled(f"does not mention {mention!r}: {lines[-1][:140]!r}")


OUT = str(WORK / "cli_out")
for _set, _mention in (
    ("gamma=abc", "gamma"),
    ("seed=1.5", "seed"),
    ("seed=-1", "seed"),
    ("env.composition_length=0", "composition_length"),
    ("env.primer_context=1000000", "primer_context"),
    ("env.steps_per_bar=500000000", "steps_per_bar"),
    ("num_envs=3000000", "num_envs"),
    ("learning_rate=inf", "learning_rate"),
    ("env.key=H major", "H major"),
    ("bogus=1", "bogus"),
    ("env=5", "env"),
    ("gamma", "FIELD=VALUE"),
):
    cli_case(["train", "--algo", "q", "--out", OUT, "--set", _set], _mention)
cli_case(["train", "--algo", "q", "--out", ""], "--out")
cli_case(["train", "--algo", "q", "--out", "x" * 300], "longer than")
cli_case(["train", "--algo", "q", "--out", str(Path(__file__))], "not a folder")
cli_case(["train", "--algo", "q", "--out", str(Path(__file__) / "sub")], "not a folder")
cli_case(["train", "--algo", "q", "--out", OUT, "--steps", "-5"], "total_steps")
cli_case(["train", "--algo", "q", "--out", OUT, "--num-envs", "0"], "num_envs")
cli_case(
    ["train", "--algo", "q", "--out", OUT, "--reward-rnn", "/nonexistent.safetensors"],
    "nonexistent",
)
cli_case(["train", "--algo", "q", "--out", str(WORK / "nothing_here"), "--resume"], "resume")
cli_case(["train", "--out", OUT, "--algo", "bogus"], "bogus")
# the default algorithm (RLOO)
cli_case(["train", "--out", ""], "--out|empty")
cli_case(["train", "--out", str(Path(__file__))], "not a folder|not a directory")
cli_case(["train", "--out", OUT, "--set", "bogus=1"], "bogus")
cli_case(["train", "--out", OUT, "--steps", "-5"], "steps")
cli_case(["sample", "--out", OUT, "--n", "0"], "n must be")
cli_case(["sample", "--out", OUT, "--temperature", "0"], "temperature")
cli_case(["sample", "--out", OUT, "--temperature", "nan"], "temperature")
cli_case(["sample", "--out", OUT, "--length", "0"], "length")
cli_case(["sample", "--out", OUT, "--primer-token", "99"], "99")
cli_case(["sample", "--out", OUT, "--checkpoint", "/nonexistent.safetensors"], "not found")
cli_case(["sample", "--out", OUT, "--n", "abc"], "abc")
cli_case(["generate", "--checkpoint", "/nonexistent/run", "--out", OUT], "nonexistent")


def _generate_negative_seed():
    """generate --seed -1 (a trained agent)"""
    return ["generate", "--checkpoint", str(trained_run()), "--out", OUT, "--seed", "-1"]


def _generate_zero():
    """generate --n 0 (a trained agent)"""
    return ["generate", "--checkpoint", str(trained_run()), "--out", OUT, "--n", "0"]


cli_case(_generate_negative_seed, "seed")
cli_case(_generate_zero, "n")


def _evaluate_ppo_as_dqn():
    """evaluate --checkpoint sb3-dqn:<a PPO zip>"""
    return ["evaluate", "--checkpoint", f"sb3-dqn:{sb3_zip('PPO')}", "--out", OUT]


cli_case(_evaluate_ppo_as_dqn, "PPO")
cli_case(["evaluate", "--checkpoint", "/nonexistent/model.zip", "--out", OUT], "nonexistent")
cli_case(["evaluate", "--checkpoint", "random", "--out", OUT, "--n", "0"], "n")
cli_case(["pretrain", "--hidden-size", "0", "--out", OUT], "hidden_size")
cli_case(["pretrain", "--hidden-size", "100000000", "--out", OUT], "hidden_size")
cli_case(["pretrain", "--window", "1000000000", "--out", OUT], "--window")
cli_case(["pretrain", "--batch-size", "100000000", "--out", OUT], "--batch-size")
cli_case(["pretrain", "--lr", "inf", "--out", OUT], "--lr")
cli_case(["pretrain", "--layers", "100", "--out", OUT], "num_layers")
cli_case(["baseline", "--algo", "sb3-dqn", "--steps", "0", "--out", OUT], "total_steps")
cli_case(["baseline", "--algo", "bogus", "--out", OUT], "bogus")
cli_case(["baseline", "--algo", "sb3-dqn", "--out", ""], "--out")
cli_case(["benchmark", "--out", OUT, "--jobs", "0"], "jobs")
cli_case(["benchmark", "--out", OUT, "--steps", "-1"], "steps")


@case("cli", "a missing extra is named before any work")
def _missing_extra():
    import importlib.util

    real = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *a: None if name == "tensorboard" else real(name, *a)
    try:
        code, err = run_cli(["train", "--algo", "q", "--out", str(WORK / "extra_run")])
    finally:
        importlib.util.find_spec = real
    if code != 2 or "melody-rl[tensorboard]" not in err or (WORK / "extra_run").exists():
        raise NotHandled(f"exit {code}: {err.strip()[:120]!r}")


# ------------------------------------------------------------------ signals and concurrent runs

TRAIN_ARGS = [
    "--algo", "q", "--num-envs", "8", "--no-progress", "--eval-every", "0",
    "--checkpoint-every", "1000000",
    "--set", "env.composition_length=8", "--set", "summary_compositions=0",
    "--set", "num_samples=0",
]  # fmt: skip


def start_cli(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "agents.cli", *argv],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise NotHandled(f"{path.name} never appeared")
        time.sleep(0.2)


def start_training(run: Path, steps: int = 10_000_000) -> subprocess.Popen:
    tiny_rnn()
    process = start_cli(
        ["train", "--out", str(run), "--reward-rnn", str(tiny_rnn.path), "--steps", str(steps),
         *TRAIN_ARGS]
    )  # fmt: skip
    wait_for(run / "tensorboard")  # the training loop has started
    time.sleep(1.0)
    return process


def finish(process: subprocess.Popen, timeout: float = 120.0) -> tuple[int, str]:
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise NotHandled(f"still running {timeout:.0f} s later") from None
    return process.returncode, err


@case("signals", "SIGINT during train: checkpoint, resume line, exit 130, resume works")
def _sigint_train():
    run = WORK / "sigint_run"
    process = start_training(run)
    process.send_signal(signal.SIGINT)
    code, err = finish(process)
    last = err.strip().splitlines()[-1] if err.strip() else ""
    if code != 130 or "resume with: melody-rl train --resume" not in last:
        raise NotHandled(f"exit {code}: {last[:140]!r}")
    from agents.rl_tuner.checkpoint import load_checkpoint

    step = load_checkpoint(run).state["progress"]["global_step"]
    resumed = start_cli(
        ["train", "--algo", "q", "--resume", "--out", str(run), "--steps", str(step + 64)]
    )
    code, err = finish(resumed)
    if code != 0:
        raise NotHandled(f"resume exit {code}: {err.strip()[-200:]!r}")


@case("signals", "SIGTERM during train: checkpoint, exit 143")
def _sigterm_train():
    run = WORK / "sigterm_run"
    process = start_training(run)
    process.send_signal(signal.SIGTERM)
    code, err = finish(process)
    if code != 143 or not (run / "checkpoints" / "latest.json").exists():
        raise NotHandled(f"exit {code}: {err.strip()[-140:]!r}")


@case("signals", "two SIGINTs: stops at once, one line, exit 130")
def _double_sigint():
    process = start_training(WORK / "double_sigint_run")
    process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    code, err = finish(process, timeout=60)
    # -2: killed by the second SIGINT itself once the first stop was done (a shell shows 130)
    if code not in (130, -signal.SIGINT) or "Traceback" in err:
        raise NotHandled(f"exit {code}: {err.strip()[-140:]!r}")


@case("signals", "SIGINT during baseline: model kept, exit 130")
def _sigint_baseline():
    tiny_rnn()
    run = WORK / "sigint_baseline"
    process = start_cli(
        ["baseline", "--algo", "sb3-a2c", "--steps", "10000000", "--num-envs", "4",
         "--out", str(run), "--reward-rnn", str(tiny_rnn.path), "--eval-n", "0"]
    )  # fmt: skip
    wait_for(run / "curve.csv")
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    code, err = finish(process)
    if code != 130 or not (run / "model.zip").exists():
        raise NotHandled(f"exit {code}: {err.strip()[-140:]!r}")


@case("concurrent", "a second train into a running train's folder: refused naming its pid")
def _second_train():
    run = WORK / "locked_run"
    first = start_training(run)
    try:
        code, err = run_cli(["train", "--algo", "q", "--out", str(run)])
        if code != 2 or f"pid {first.pid}" not in err:
            raise NotHandled(f"exit {code}: {err.strip()[:160]!r}")
    finally:
        first.send_signal(signal.SIGTERM)
        finish(first)


@case("concurrent", "a second baseline into a running train's folder: refused")
def _baseline_into_train():
    run = WORK / "locked_run_2"
    first = start_training(run)
    try:
        code, err = run_cli(["baseline", "--algo", "sb3-a2c", "--out", str(run)])
        if code != 2 or f"pid {first.pid}" not in err:
            raise NotHandled(f"exit {code}: {err.strip()[:160]!r}")
    finally:
        first.send_signal(signal.SIGTERM)
        finish(first)


@case("concurrent", "a stale lock of a dead process is taken over")
def _stale_lock():
    from agents.run_control import LOCK_NAME, RunLock

    run = WORK / "stale"
    run.mkdir()
    (run / LOCK_NAME).write_text(json.dumps({"pid": 999_999_999, "command": "train"}))
    with RunLock(run, "train"):
        pass


# ---------------------------------------------------------------------------- forked workers

FORK_SCRIPTS = {
    "gym.make_vec(async) with the shipped Note RNN": """
import gymnasium as gym, melody_env
envs = gym.make_vec(melody_env.ENV_ID, num_envs=2, vectorization_mode="async")
envs.reset(seed=0)
for _ in range(40):
    envs.step(envs.action_space.sample())
envs.close()
""",
    "async after the parent used torch's thread pool": """
import torch
x = torch.randn(1500, 1500); (x @ x).sigmoid_()
import gymnasium as gym, melody_env
envs = gym.make_vec(melody_env.ENV_ID, num_envs=2, vectorization_mode="async")
envs.reset(seed=0); envs.step(envs.action_space.sample()); envs.close()
""",
    "SB3 SubprocVecEnv(start_method='fork')": """
import gymnasium as gym, melody_env
from stable_baselines3.common.vec_env import SubprocVecEnv
gym.make(melody_env.ENV_ID).reset(seed=0)
envs = SubprocVecEnv([lambda: gym.make(melody_env.ENV_ID)] * 2, start_method="fork")
envs.reset(); envs.step([3, 4]); envs.close()
""",
    "multiprocessing fork pool": """
import multiprocessing, torch, gymnasium as gym, melody_env
gym.make(melody_env.ENV_ID).reset(seed=0); torch.randn(1500, 1500).sigmoid_()
def work(seed):
    env = gym.make(melody_env.ENV_ID); env.reset(seed=seed); return env.step(3)[1]
with multiprocessing.get_context("fork").Pool(2) as pool:
    pool.map(work, [0, 1])
""",
}
for _name, _script in FORK_SCRIPTS.items():

    @case("fork", _name)
    def _fork(script=_script):
        try:
            done = subprocess.run(
                [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                timeout=240,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise NotHandled("hung (240 s)") from None
        if done.returncode != 0:
            raise NotHandled(f"exit {done.returncode}: {done.stderr.strip()[-160:]!r}")


# ------------------------------------------------------------------------------------ files


@case("files", "NoteRNN.save, checkpoints and MIDI follow the umask (002)")
def _umask():
    from melody_env.io.midi_writer import write_midi

    previous = os.umask(0o002)
    try:
        folder = WORK / "umask"
        tiny_rnn().save(folder / "m.safetensors")
        write_midi(folder / "a.mid", [14, 0])
        run = Path(shutil.copytree(trained_run(), folder / "run"))
        from agents.rl_tuner.trainer import Trainer

        Trainer(tiny_config(), run, resume=True, log=lambda *_: None).save()
        weights = next((run / "checkpoints").glob("step_*/weights.safetensors"))
        for path in (folder / "m.safetensors", folder / "a.mid", weights):
            if path.stat().st_mode & 0o777 != 0o664:
                raise NotHandled(f"{path.name} is {oct(path.stat().st_mode & 0o777)}")
    finally:
        os.umask(previous)


@case("files", "to_midi onto a FIFO: refused, the FIFO left alone")
def _fifo_output():
    from melody_env.io.midi_writer import write_midi

    fifo = WORK / "out_fifo.mid"
    os.mkfifo(fifo)
    expect_error(lambda: write_midi(fifo, [14]), "regular file")
    if not fifo.is_fifo():
        raise NotHandled("the FIFO was replaced")


@case("files", "sample into a folder holding a FIFO named sample_000.mid")
def _sample_fifo():
    folder = WORK / "sample_fifo"
    folder.mkdir()
    os.mkfifo(folder / "sample_000.mid")
    code, err = run_cli(
        [
            "sample",
            "--out",
            str(folder),
            "--n",
            "1",
            "--checkpoint",
            str(tiny_rnn.path if hasattr(tiny_rnn, "path") else ""),
        ]
    )
    if code != 2 or "regular file" not in err or not (folder / "sample_000.mid").is_fifo():
        raise NotHandled(f"exit {code}: {err.strip()[:140]!r}")


@case("files", "no planted pickle ever ran (checked last)")
def _no_marker():
    ran = sorted(WORK.glob("EXECUTED_*"))
    if ran:
        raise NotHandled(f"{len(ran)} planted payloads ran: {[p.name for p in ran]}")


# ------------------------------------------------------------------------------------ runner


def peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_case(function: Callable[[], None]) -> str | None:
    """``None`` when handled well, else the reason."""
    before = peak_kb()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(io.StringIO()):
                function()
    except NotHandled as finding:
        return str(finding)
    except Exception as error:  # the case itself broke: a finding too
        frame = traceback.extract_tb(error.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        return f"case raised {type(error).__name__}: {error} ({where})"
    growth = peak_kb() - before
    if growth > MEMORY_LIMIT_KB:
        return f"peak memory grew by {growth / 1024:.0f} MB"
    return None


def warm_up(groups: set[str]) -> None:
    """Imports, compilation and the shared fixtures, before any case's memory is measured."""
    from melody_env.models.note_rnn import NoteRNN

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        env = make_env(reward_terms={"warm": lambda ctx: 0.0})
        env.reset(seed=0)
        env.step(3)
        envs = make_vec(2)
        envs.reset(seed=0)
        envs.step(np.array([3, 4]))
        NoteRNN.load()
        if groups & {"sb3", "cli"}:
            sb3_zip("DQN"), sb3_zip("PPO")
            from melody_env.evaluation.policies import load_policy

            load_policy(f"sb3-dqn:{sb3_zip('DQN')}")
        if groups & {"agent_checkpoint", "cli", "files"}:
            from agents.rl_tuner.checkpoint import load_agent

            load_agent(trained_run())
        write_notes(WORK / "warm.mid", [(60, 0, 1)])
        read(WORK / "warm.mid")
        run_cli(["sample", "--out", str(WORK / "warm"), "--n", "0"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated groups")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--allowed", type=int, default=5, help="cases allowed not handled well")
    args = parser.parse_args()
    groups = [group for group in dict.fromkeys(g for g, _, _ in CASES)]
    selected = [c for c in CASES if not args.only or c[0] in args.only.split(",")]
    if args.list:
        for group in groups:
            names = [name for g, name, _ in selected if g == group]
            print(f"{group} ({len(names)}): " + "; ".join(names))
        shutil.rmtree(WORK, ignore_errors=True)
        return 0
    os.chdir(WORK)
    started = time.monotonic()
    warm_up({group for group, _, _ in selected})
    findings = []
    per_group: dict[str, list[int]] = {}
    for group, name, function in selected:
        reason = run_case(function)
        counts = per_group.setdefault(group, [0, 0])
        counts[0] += 1
        if reason is not None:
            counts[1] += 1
            findings.append((group, name, reason))
            print(f"NOT HANDLED  [{group}] {name}: {reason}", flush=True)
    handled = len(selected) - len(findings)
    print()
    for group, (total, bad) in per_group.items():
        print(f"  {group:18s} {total - bad:4d} / {total:4d}")
    print(
        f"red team: {handled} of {len(selected)} cases handled well, {len(findings)} not "
        f"({time.monotonic() - started:.0f} s; work folder {WORK})"
    )
    shutil.rmtree(WORK, ignore_errors=True)
    return 0 if len(findings) <= args.allowed else 1


if __name__ == "__main__":
    sys.exit(main())
