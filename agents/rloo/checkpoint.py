"""RLOO checkpoints: safetensors + JSON, written atomically, resumed bit for bit.

A checkpoint is a folder ``RUN/checkpoints/step_000204800/`` (the RL Tuner's layout, with its
``latest.json`` pointer, so :func:`agents.rl_tuner.checkpoint.find_checkpoint` finds both) holding:

- ``weights.safetensors``: the policy (``policy.*``), the frozen Note RNN (``prior.*``: the
  env's scorer and the KL's reference, so no Note RNN file is needed to resume or evaluate) and
  Adam's state tensors (``optimizer.<param>.<name>``);
- ``state.json``: ``format`` (:data:`FORMAT`), the :class:`~agents.rloo.config.RLOOConfig` (read
  by :meth:`~agents.rloo.config.RLOOConfig.from_dict`, so older checkpoints' flat env fields
  load into ``config.env``), the Note RNN's architecture, the counters (:class:`Progress`) and
  Adam's hyper-parameters.

No generator state is stored: every round's primers and samples are drawn from generators
seeded by ``(seed, round)``, so the weights, Adam's state and the round counter determine the
rest of the run. The folder is staged under a hidden name and renamed into place before
``latest.json`` is replaced; a run killed at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from agents.rl_tuner.checkpoint import (  # the run folder's layout is every agent's
    CHECKPOINTS,
    LATEST,
    STATE,
    WEIGHTS,
    find_checkpoint,
    load_optimizer,
    optimizer_tensors,
    read_state_and_weights,
    stored_note_rnn,
)
from agents.rl_tuner.checkpoint import save_checkpoint as write_checkpoint

__all__ = [
    "CHECKPOINTS",
    "FORMAT",
    "LATEST",
    "STATE",
    "WEIGHTS",
    "Checkpoint",
    "Progress",
    "checkpoint_format",
    "find_checkpoint",
    "is_rloo_checkpoint",
    "load_agent",
    "load_checkpoint",
    "load_optimizer",
    "load_policy_tensors",
    "optimizer_tensors",
    "restore",
    "save_checkpoint",
]
from agents.rloo.config import RLOOConfig
from melody_env.models.note_rnn import NoteRNN

FORMAT = "melody-rl/rloo-checkpoint"
STATE_KEYS = ("config", "note_rnn_config", "progress", "optimizer")
"""What every ``state.json`` holds besides ``format``."""


@dataclass
class Progress:
    """Counters of a run (saved in every checkpoint)."""

    iteration: int = 0
    """Gradient steps taken (= rounds of training compositions written)."""
    global_step: int = 0
    """Training transitions (tokens placed)."""
    train_seconds: float = 0.0
    """Wall-clock seconds of rollouts and updates (no summary, no checkpoint writing)."""


@dataclass
class Checkpoint:
    """A checkpoint read from disk (see the module docstring)."""

    directory: Path
    config: RLOOConfig
    state: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    def network(self, prefix: str) -> NoteRNN:
        """The ``policy`` or ``prior`` Note RNN stored under ``prefix.*``.

        Raises:
            ValueError: the architecture or the tensors do not match (naming the file).
        """
        return stored_note_rnn(self.directory, self.state, self.tensors, prefix)


def save_checkpoint(
    run_dir: str | os.PathLike,
    config: RLOOConfig,
    policy,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
) -> Path:
    """Write a complete checkpoint of an :class:`~agents.rloo.policy.RLOOPolicy` (its network,
    position logits and prior) at ``progress.global_step``; point ``latest.json`` to it."""
    prior = policy.prior
    tensors = {
        f"{prefix}.{name}": tensor.detach().cpu().contiguous()
        for prefix, model in (("policy", policy.network), ("prior", prior))
        for name, tensor in model.state_dict().items()
    }
    if policy.position_logits is not None:
        tensors["position_logits"] = policy.position_logits.detach().clone().contiguous()
    adam_tensors, adam_settings = optimizer_tensors(optimizer)
    tensors.update(adam_tensors)
    state = {
        "config": config.to_dict(),
        "note_rnn_config": asdict(prior.config),
        "progress": asdict(progress),
        "optimizer": adam_settings,
    }
    return write_checkpoint(run_dir, progress.global_step, tensors, state, format_name=FORMAT)


def checkpoint_format(path: str | os.PathLike) -> str | None:
    """The ``format`` of the checkpoint meant by ``path`` (``None`` if unreadable)."""
    try:
        state = json.loads((find_checkpoint(path) / STATE).read_text())
    except (OSError, ValueError):
        return None
    return state.get("format") if isinstance(state, dict) else None


def is_rloo_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` (a run folder or checkpoint folder) holds an RLOO checkpoint."""
    return checkpoint_format(path) == FORMAT


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read the checkpoint meant by ``path`` (a run folder, its ``checkpoints`` or a step folder).

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: a file is missing, unreadable, incomplete or not an RLOO checkpoint.
    """
    directory = find_checkpoint(path)
    state, tensors = read_state_and_weights(directory, FORMAT, STATE_KEYS, "RLOO")
    try:
        config = RLOOConfig.from_dict(state["config"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{directory / STATE} holds an invalid config: {error}") from error
    return Checkpoint(directory, config, state, tensors)


def load_policy_tensors(loaded: Checkpoint, policy) -> None:
    """Copy the checkpoint's policy network and position logits into ``policy``.

    Raises:
        ValueError: a tensor is missing or of another shape (naming the file).
    """
    policy.network.load_state_dict(loaded.network("policy").state_dict())
    if policy.position_logits is not None:
        stored = loaded.tensors.get("position_logits")
        if stored is None or stored.shape != policy.position_logits.shape:
            raise ValueError(
                f"{loaded.directory / WEIGHTS}: position_logits missing or not of shape "
                f"{tuple(policy.position_logits.shape)}"
            )
        with torch.no_grad():
            policy.position_logits.copy_(stored)


def restore(loaded: Checkpoint, policy, optimizer: torch.optim.Optimizer) -> Progress:
    """Load the policy and Adam's state of ``loaded``; return its counters.

    Raises:
        ValueError: a tensor or setting does not fit (naming the checkpoint).
    """
    load_policy_tensors(loaded, policy)
    try:
        load_optimizer(optimizer, loaded.tensors, loaded.state["optimizer"])
        return Progress(**loaded.state["progress"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"checkpoint {loaded.directory} cannot be restored: {type(error).__name__}: {error}"
        ) from error


def load_agent(path: str | os.PathLike):
    """The trained policy of an RLOO run or checkpoint folder (weights only), with ``config``
    and ``prior`` attributes: an :class:`~agents.rloo.policy.RLOOPolicy`."""
    from agents.rloo.policy import RLOOPolicy

    loaded = load_checkpoint(path)
    config = loaded.config
    policy = RLOOPolicy.from_config(config, loaded.network("prior"))
    load_policy_tensors(loaded, policy)
    return policy
