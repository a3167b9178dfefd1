"""Replay of whole compositions, so recurrent states are recomputed exactly at training time.

Compositions are only ``L = 32`` steps long, so instead of single transitions with stored
(stale) LSTM states, as the original kept, the buffer keeps each composition whole: the primer
tokens the agent read, the tokens actually played (also under Boltzmann exploration), the reward
of each step, the prior's log-probabilities after each step (for G-learning's target) and the
terminal flag of the last step. At training time the current online and target networks run over
``primer + actions`` to produce every ``Q(s_t, .)`` and ``Q-(s_{t+1}, .)``: no stale state, the
target network carries its own state, and nothing bootstraps across the end of a composition.

Sampling is uniform over stored compositions (without replacement within a batch) with the
buffer's own seeded ``numpy.random.Generator``, whose state is checkpointed.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from melody_env.atomic import atomic_path
from melody_env.music.transposition import KEY_SHIFTS, READING_TABLES

_UNREADING_TABLES = np.argsort(READING_TABLES, axis=1)  # the token read as each reference token

_ARRAYS = ("primers", "primer_lengths", "actions", "rewards", "prior_log_probs", "terminals")


@dataclass(frozen=True)
class CompositionBatch:
    """Sampled compositions (numpy).

    Attributes:
        primers: ``int64 [B, P]``: primer tokens, right-aligned (the last ``primer_lengths``).
        primer_lengths: ``int64 [B]``: primer tokens per composition (>= 1).
        actions: ``int64 [B, L]``: tokens played.
        rewards: ``float32 [B, L]``: reward of each step.
        prior_log_probs: ``float32 [B, L, 38]``: the prior's log p(. | s_{t+1}) after step t.
        terminals: ``bool [B, L]``: True at the last step.
    """

    primers: np.ndarray
    primer_lengths: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    prior_log_probs: np.ndarray
    terminals: np.ndarray


class CompositionReplay:
    """A ring buffer of ``capacity`` whole compositions.

    Args:
        capacity: compositions kept (the config's transitions // composition length).
        length: steps per composition.
        primer_width: primer tokens kept per composition (the observation's primer context,
            at least 1).
        num_classes: vocabulary size.
        seed: seeds the sampling generator.
    """

    def __init__(
        self, capacity: int, length: int, primer_width: int, num_classes: int = 38, seed: int = 0
    ) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must hold at least 1 composition, got {capacity}")
        self.capacity = capacity
        self.length = length
        self.primer_width = max(primer_width, 1)
        self.num_classes = num_classes
        self.primers = np.zeros((capacity, self.primer_width), dtype=np.int64)
        self.primer_lengths = np.zeros(capacity, dtype=np.int64)
        self.actions = np.zeros((capacity, length), dtype=np.int64)
        self.rewards = np.zeros((capacity, length), dtype=np.float32)
        self.prior_log_probs = np.zeros((capacity, length, num_classes), dtype=np.float32)
        self.terminals = np.zeros((capacity, length), dtype=bool)
        self.position = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    @property
    def transitions(self) -> int:
        return self.size * self.length

    def add(
        self,
        primer: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        prior_log_probs: np.ndarray,
        terminals: np.ndarray,
        key_index: int = 0,
    ) -> None:
        """Store one composition (overwriting the oldest when full).

        The agent's networks work in the reference key (see :mod:`agents.rl_tuner.agent`), so
        a composition in key ``key_index`` (:attr:`Key.index <melody_env.music.keys.Key.index>`)
        is stored as they read it: its primer and actions read through the key's table of
        :mod:`melody_env.music.transposition`, its prior log-probabilities in the reference
        key's token order. C major and A minor are stored as they are.
        """
        primer = np.asarray(primer, dtype=np.int64)[-self.primer_width :]
        if primer.size == 0:
            raise ValueError("a stored composition needs at least one primer token")
        if KEY_SHIFTS[key_index]:
            table = READING_TABLES[key_index]
            primer, actions = table[primer], table[np.asarray(actions, dtype=np.int64)]
            prior_log_probs = np.asarray(prior_log_probs)[..., _UNREADING_TABLES[key_index]]
        index = self.position
        self.primers[index] = 0
        self.primers[index, self.primer_width - primer.size :] = primer
        self.primer_lengths[index] = primer.size
        self.actions[index] = actions
        self.rewards[index] = rewards
        self.prior_log_probs[index] = prior_log_probs
        self.terminals[index] = terminals
        self.position = (index + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> CompositionBatch:
        """``batch_size`` compositions drawn uniformly (distinct if the buffer holds enough)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = self.rng.choice(self.size, batch_size, replace=self.size < batch_size)
        return CompositionBatch(
            self.primers[index],
            self.primer_lengths[index],
            self.actions[index],
            self.rewards[index],
            self.prior_log_probs[index],
            self.terminals[index],
        )

    def sample_steps(self, batch_size: int, per_composition: int | None) -> np.ndarray:
        """``bool [batch_size, L]``: the steps of each sampled composition that enter the loss,
        all of them (``None``) or ``per_composition`` distinct ones drawn uniformly."""
        if per_composition is None or per_composition >= self.length:
            return np.ones((batch_size, self.length), dtype=bool)
        order = np.argsort(self.rng.random((batch_size, self.length)), axis=1)
        mask = np.zeros((batch_size, self.length), dtype=bool)
        np.put_along_axis(mask, order[:, :per_composition], True, axis=1)
        return mask

    # --- persistence: arrays in an .npz (no pickle), counters and RNG state as JSON-able data.

    def save(self, path: str | os.PathLike) -> None:
        """Write the stored compositions to ``path`` (``.npz``), atomically."""
        arrays = {name: getattr(self, name)[: self.size] for name in _ARRAYS}
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    def state(self) -> dict:
        """Counters and the sampling generator's state (JSON-able)."""
        return {"position": self.position, "size": self.size, "rng": self.rng.bit_generator.state}

    def load(self, path: str | os.PathLike, state: dict) -> None:
        """Restore from :meth:`save`'s file and :meth:`state`'s dict.

        Raises:
            ValueError: the file is unreadable (truncated, not an ``.npz``, pickled data) or
                does not match this buffer's shape or the counters.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in _ARRAYS if name in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            raise ValueError(f"replay file {path} is unreadable: {error}") from error
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise ValueError(f"replay file {path} lacks the arrays {missing}")
        size = int(state["size"])
        for name, array in arrays.items():
            expected = getattr(self, name).shape[1:]
            if array.shape != (size, *expected):
                raise ValueError(
                    f"replay file {path}: array {name!r} has shape {array.shape}, expected "
                    f"{(size, *expected)}"
                )
            getattr(self, name)[:size] = array
        self.size = size
        self.position = int(state["position"])
        self.rng.bit_generator.state = state["rng"]
