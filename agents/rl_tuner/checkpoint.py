"""Checkpoints a killed run resumes from exactly, with nothing unpickled.

A checkpoint is a folder ``RUN/checkpoints/step_000204800/`` holding:

- ``weights.safetensors``: the three networks (``q_network.*``, ``target_q_network.*``,
  ``reward_rnn.*``), Adam's state tensors (``optimizer.<param>.<name>``) and torch's RNG state
  (``torch_rng_state``, uint8);
- ``state.json``: the :class:`~agents.rl_tuner.config.TrainConfig`, the Note RNN's architecture,
  the step counters, Adam's hyper-parameters and the states of the numpy generators (exploration
  and replay sampling) as JSON;
- ``replay.npz``: the replay buffer's compositions (loaded with ``allow_pickle=False``).

Every file is written to a temporary name and renamed (:mod:`melody_env.atomic`), inside a
temporary folder that is renamed into place once complete; only then is ``latest.json`` (the
pointer a resume follows) replaced, atomically. A run killed at any moment leaves the previous
checkpoint intact and pointed to. The two most recent checkpoints are kept; older ones are renamed
to a hidden name before they are deleted, so every visible ``step_*`` folder is complete. What a
killed save leaves behind (hidden staging folders, temporary files) is removed by the next save.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from agents.rl_tuner.config import TrainConfig
from melody_env.atomic import atomic_path, atomic_write_text
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig, check_tensors, single_threaded
from melody_env.models.safetensors_checks import read_checked

CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
WEIGHTS = "weights.safetensors"
STATE = "state.json"
REPLAY = "replay.npz"
FORMAT = "melody-rl/rl-tuner-checkpoint"
KEEP = 2
NAME_PATTERN = re.compile(r"step_(\d{9})")
"""A checkpoint folder's name; ``latest.json`` may only point to such a sibling folder."""
MAX_WEIGHTS_BYTES = 256 * 1024 * 1024
"""Largest ``weights.safetensors`` read (the paper's networks and Adam's state take ~2 MB)."""
STATE_KEYS = (
    "config",
    "note_rnn_config",
    "progress",
    "exploration_rng",
    "predict_rng",
    "replay",
    "optimizer",
)
"""What every ``state.json`` holds (besides ``format``)."""
LEFTOVERS = (".step_*", f".{LATEST}.*.tmp")
"""Hidden names a killed save can leave in ``checkpoints/``: staging folders, folders being
deleted, and the temporary file of ``latest.json`` (see :func:`melody_env.atomic.atomic_path`)."""


@dataclass
class Checkpoint:
    """A checkpoint read from disk.

    Attributes:
        directory: its folder.
        config: the run's config.
        state: the rest of ``state.json`` (counters, RNG states, optimiser settings).
        tensors: the tensors of ``weights.safetensors``.
    """

    directory: Path
    config: TrainConfig
    state: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def replay_path(self) -> Path:
        return self.directory / REPLAY

    @property
    def weights_path(self) -> Path:
        return self.directory / WEIGHTS

    def note_rnn(self) -> NoteRNN:
        """The frozen prior stored in the checkpoint (no Note RNN file needed).

        Raises:
            ValueError: ``note_rnn_config`` is invalid, or the ``reward_rnn.*`` tensors do not
                match it (the message names the file, expected and found).
        """
        return stored_note_rnn(self.directory, self.state, self.tensors, "reward_rnn")


def stored_note_rnn(
    directory: Path, state: dict[str, Any], tensors: dict[str, torch.Tensor], prefix: str
) -> NoteRNN:
    """The Note RNN whose weights a checkpoint stores under ``prefix.*``, built from its
    ``note_rnn_config`` (every agent's checkpoints store their networks this way).

    Raises:
        ValueError: the config is invalid or the tensors do not match it (naming the file).
    """
    try:
        config = NoteRNNConfig.from_dict(state["note_rnn_config"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{directory / STATE}: invalid note_rnn_config ({error})") from error
    model = NoteRNN(config)
    start = f"{prefix}."
    own = {k[len(start) :]: v for k, v in tensors.items() if k.startswith(start)}
    check_tensors(model, own, f"{directory / WEIGHTS} ({prefix}.*, {config})")
    with single_threaded():  # fork-safe, as NoteRNN.load
        model.load_state_dict(own)
    return model.eval()


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Adam's state as tensors plus its JSON-able hyper-parameters."""
    state_dict = optimizer.state_dict()
    tensors = {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            tensors[f"optimizer.{index}.{name}"] = (
                torch.as_tensor(value).detach().cpu().contiguous()
            )
    groups = [
        {key: (list(value) if isinstance(value, tuple) else value) for key, value in group.items()}
        for group in state_dict["param_groups"]
    ]
    return tensors, {"param_groups": groups}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, settings: dict) -> None:
    """Inverse of :func:`optimizer_tensors`.

    Raises:
        ValueError: a state tensor belongs to no parameter or has another shape than it (torch
            would only fail at the next optimiser step).
    """
    params = [param for group in optimizer.param_groups for param in group["params"]]
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            if not index.isdigit() or int(index) >= len(params):
                raise ValueError(f"{key!r} belongs to no parameter (there are {len(params)})")
            wanted = tuple(params[int(index)].shape)
            if name != "step" and tuple(value.shape) != wanted:
                raise ValueError(f"{key!r} has shape {tuple(value.shape)}, expected {wanted}")
            state.setdefault(int(index), {})[name] = value.clone()
    groups = [
        {key: (tuple(value) if key == "betas" else value) for key, value in group.items()}
        for group in settings["param_groups"]
    ]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
    save_replay=None,
    format_name: str = FORMAT,
) -> Path:
    """Write a complete checkpoint for ``step`` and point ``latest.json`` to it (every agent's
    checkpoints are written this way; ``format_name`` tells them apart).

    Args:
        run_dir: the run's folder.
        step: training transitions so far (names the folder).
        tensors: network, optimiser and RNG tensors.
        state: JSON-able ``state.json`` content (must include ``config``).
        save_replay: callable writing the replay buffer to the path it is given (``None``: an
            agent without one).
        format_name: the ``format`` written into ``state.json`` and the weights' metadata.

    Returns:
        The checkpoint folder.
    """
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    remove_leftovers(root)
    name = f"step_{step:09d}"
    staging = root / f".{name}.tmp{os.getpid()}"
    staging.mkdir()
    with atomic_path(staging / WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"format": format_name})
    atomic_write_text(staging / STATE, json.dumps({"format": format_name, **state}, indent=1))
    if save_replay is not None:
        save_replay(staging / REPLAY)
    final = root / name
    if final.exists():  # written by a run killed before it pointed latest.json to it
        discard(final)
    os.replace(staging, final)
    atomic_write_text(root / LATEST, json.dumps({"checkpoint": name, "step": step}) + "\n")
    previous = sorted(p for p in root.glob("step_*") if p.is_dir() and p != final)
    for old in previous[: max(len(previous) - (KEEP - 1), 0)]:
        discard(old)
    return final


def discard(folder: Path) -> None:
    """Delete a checkpoint folder, first renaming it to a hidden name.

    ``rmtree`` deletes file by file: a kill midway through would leave a visible ``step_*``
    folder with half its files, one a user could pass to ``--checkpoint``.
    """
    trash = folder.with_name(f".{folder.name}.del{os.getpid()}")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def remove_leftovers(root: Path) -> None:
    """Remove what killed saves left in ``root`` (:data:`LEFTOVERS`); checkpoints stay."""
    for pattern in LEFTOVERS:
        for path in root.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def find_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint folder meant by ``path``: a run folder (its latest checkpoint), its
    ``checkpoints`` folder, or a checkpoint folder.

    Raises:
        FileNotFoundError: nothing there, or no checkpoint in it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint path does not exist: {path}")
    if (path / STATE).is_file():
        return path
    for root in (path / CHECKPOINTS, path):
        latest = root / LATEST
        if latest.is_file():
            name = read_pointer(latest)
            if not (root / name / STATE).is_file():
                raise FileNotFoundError(
                    f"{latest} points to {name}, which is missing or incomplete (no {STATE})"
                )
            return root / name
    raise FileNotFoundError(
        f"no checkpoint in {path}: expected a run folder with {CHECKPOINTS}/{LATEST}, or a "
        f"checkpoint folder with {STATE} and {WEIGHTS}"
    )


def read_pointer(latest: Path) -> str:
    """The checkpoint folder named by ``latest.json``: ``step_NNNNNNNNN`` (a sibling folder,
    never a path elsewhere), agreeing with its ``step``.

    Raises:
        ValueError: unreadable, or a name or step that breaks the rules above.
    """
    try:
        if latest.stat().st_size > 4096:
            raise ValueError("larger than 4 KB")
        pointer = json.loads(latest.read_text())
        name, step = pointer["checkpoint"], pointer.get("step")
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"corrupt checkpoint pointer {latest}: {error}") from error
    match = NAME_PATTERN.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise ValueError(
            f"corrupt checkpoint pointer {latest}: checkpoint {name!r:.80} is not a folder name "
            "step_NNNNNNNNN next to it"
        )
    if step is not None and step != int(match.group(1)):
        raise ValueError(f"corrupt checkpoint pointer {latest}: step {step!r:.40} but {name}")
    return name


def check_progress(progress: object, directory: Path) -> None:
    """Refuse counters no run can have: negative or non-integer counts, a non-finite or negative
    time, or a ``global_step`` other than the one the folder is named after.

    Raises:
        ValueError: naming the field and the value.
    """
    source = directory / STATE
    if not isinstance(progress, dict):
        raise ValueError(f"{source}: 'progress' must be a JSON object")
    for name, value in progress.items():
        if name == "train_seconds":
            ok = type(value) in (int, float) and math.isfinite(value) and value >= 0
        else:
            ok = type(value) is int and value >= 0
        if not ok:
            raise ValueError(f"{source}: progress.{name} = {value!r:.40} (must be >= 0)")
    match = NAME_PATTERN.fullmatch(directory.name)
    step = progress.get("global_step")
    if match is not None and step != int(match.group(1)):
        raise ValueError(
            f"{source}: progress.global_step = {step!r:.40} disagrees with its folder "
            f"{directory.name}"
        )


def read_state_and_weights(
    directory: Path, format_name: str, state_keys: tuple[str, ...], kind: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A checkpoint folder's ``state.json`` and weights, every agent's the same way: the state's
    ``format`` and keys, its progress counters (:func:`check_progress`), then the weights bounded
    in size, floating (but RNG states and Adam's step counts) and finite.

    Raises:
        ValueError: naming the file and what is wrong (``kind`` names the agent).
    """
    try:
        state = json.loads((directory / STATE).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"corrupt checkpoint state {directory / STATE}: {error}") from error
    if not isinstance(state, dict) or state.get("format") != format_name:
        raise ValueError(
            f"{directory / STATE} is not an {kind} checkpoint (format {format_name!r})"
        )
    missing = [key for key in state_keys if key not in state]
    if missing:
        raise ValueError(f"{directory / STATE} is incomplete: it lacks the keys {missing}")
    check_progress(state["progress"], directory)
    if not (directory / WEIGHTS).is_file():
        raise ValueError(f"checkpoint {directory} has no {WEIGHTS}")
    try:
        _, tensors = read_checked(
            directory / WEIGHTS,
            allow_other_dtypes=("torch_rng_state", "optimizer."),
            max_bytes=MAX_WEIGHTS_BYTES,
        )
    except (OSError, ValueError) as error:
        raise ValueError(f"corrupt checkpoint weights {directory / WEIGHTS}: {error}") from error
    return state, tensors


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read the checkpoint meant by ``path`` (see :func:`find_checkpoint`).

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: a file of the checkpoint is missing, unreadable or not ours.
    """
    directory = find_checkpoint(path)
    state, tensors = read_state_and_weights(directory, FORMAT, STATE_KEYS, "RL Tuner")
    if not (directory / REPLAY).is_file():
        raise ValueError(f"checkpoint {directory} has no {REPLAY}")
    try:
        config = TrainConfig.from_dict(state["config"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{directory / STATE} holds an invalid config: {error}") from error
    if "torch_rng_state" not in tensors:
        raise ValueError(f"{directory / WEIGHTS} lacks the tensor 'torch_rng_state'")
    return Checkpoint(directory, config, state, tensors)


def load_agent(path: str | os.PathLike):
    """The trained agent of a run folder or checkpoint folder (weights only, no optimiser).

    An RLOO checkpoint (:mod:`agents.rloo.checkpoint`, told by its ``format``) loads as that
    agent's policy, so ``melody-rl evaluate`` and ``generate`` take either kind of run."""
    from agents.rl_tuner.agent import RLTunerAgent
    from agents.rloo import checkpoint as rloo_checkpoint

    if rloo_checkpoint.is_rloo_checkpoint(path):
        return rloo_checkpoint.load_agent(path)
    loaded = load_checkpoint(path)
    agent = RLTunerAgent(loaded.config, loaded.note_rnn())
    agent.load_named_tensors(loaded.tensors, source=str(loaded.weights_path))
    return agent
