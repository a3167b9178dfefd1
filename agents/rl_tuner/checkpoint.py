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
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from agents.rl_tuner.config import TrainConfig
from melody_env.atomic import atomic_path, atomic_write_text
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig, check_tensors

CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
WEIGHTS = "weights.safetensors"
STATE = "state.json"
REPLAY = "replay.npz"
FORMAT = "melody-rl/rl-tuner-checkpoint"
KEEP = 2
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
        try:
            config = NoteRNNConfig.from_dict(self.state["note_rnn_config"])
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"{self.directory / STATE}: invalid note_rnn_config ({error})"
            ) from error
        model = NoteRNN(config)
        prefix = "reward_rnn."
        own = {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}
        check_tensors(model, own, f"{self.weights_path} (reward_rnn.*, {config})")
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
    save_replay,
) -> Path:
    """Write a complete checkpoint for ``step`` and point ``latest.json`` to it.

    Args:
        run_dir: the run's folder.
        step: training transitions so far (names the folder).
        tensors: network, optimiser and RNG tensors.
        state: JSON-able ``state.json`` content (must include ``config``).
        save_replay: callable writing the replay buffer to the path it is given.

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
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    atomic_write_text(staging / STATE, json.dumps({"format": FORMAT, **state}, indent=1))
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
            try:
                name = json.loads(latest.read_text())["checkpoint"]
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"corrupt checkpoint pointer {latest}: {error}") from error
            if not (root / name / STATE).is_file():
                raise FileNotFoundError(
                    f"{latest} points to {name}, which is missing or incomplete (no {STATE})"
                )
            return root / name
    raise FileNotFoundError(
        f"no checkpoint in {path}: expected a run folder with {CHECKPOINTS}/{LATEST}, or a "
        f"checkpoint folder with {STATE} and {WEIGHTS}"
    )


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read the checkpoint meant by ``path`` (see :func:`find_checkpoint`).

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: a file of the checkpoint is missing, unreadable or not ours.
    """
    directory = find_checkpoint(path)
    try:
        state = json.loads((directory / STATE).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"corrupt checkpoint state {directory / STATE}: {error}") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{directory / STATE} is not an RL Tuner checkpoint (format {FORMAT!r})")
    missing = [key for key in STATE_KEYS if key not in state]
    if missing:
        raise ValueError(f"{directory / STATE} is incomplete: it lacks the keys {missing}")
    if not (directory / WEIGHTS).is_file():
        raise ValueError(f"checkpoint {directory} has no {WEIGHTS}")
    try:
        tensors = load_file(str(directory / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"corrupt checkpoint weights {directory / WEIGHTS}: {error}") from error
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
    """The trained agent of a run folder or checkpoint folder (weights only, no optimiser)."""
    from agents.rl_tuner.agent import RLTunerAgent

    loaded = load_checkpoint(path)
    agent = RLTunerAgent(loaded.config, loaded.note_rnn())
    agent.load_named_tensors(loaded.tensors, source=str(loaded.weights_path))
    return agent
