"""The RLOO policy: a trainable copy of the Note RNN, sampled at a temperature.

The policy is ``pi(. | s_t) = softmax(logits_t / temperature)``, where ``logits_t`` are the LSTM's
outputs after the primer and the tokens placed so far. It speaks Stable-Baselines3's recurrent
``predict`` protocol (and ``action_log_probs`` with the same arguments, for the evaluation's KL):
from an observation it reads only the last token and, at an episode start, the primer (the last
``primer_context`` primer tokens, right-aligned), exactly as the RL Tuner agent does.

>>> from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig
>>> policy = RLOOPolicy(NoteRNN(NoteRNNConfig(hidden_size=8), seed=0), seed=0)
>>> obs = np.zeros((3, policy.layout.size), dtype=np.int8)
>>> obs[:, 5] = 1  # last token 5 ...
>>> obs[:, policy.layout.slices["primer"].stop - 38 + 5] = 1  # ... which is the whole primer
>>> action, state = policy.predict(obs, deterministic=True)
>>> action.shape, len(state), state[0].shape
((3,), 2, (1, 3, 8))
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import torch

from agents.rl_tuner.agent import read_primers
from agents.rl_tuner.networks import freeze
from agents.rloo.config import RLOOConfig
from melody_env.envs.observation import ObservationLayout
from melody_env.models.note_rnn import LSTMState, NoteRNN
from melody_env.music.encoding import NUM_CLASSES
from melody_env.music.keys import MODES, Key
from melody_env.music.transposition import READING_TABLES
from melody_env.sampling import sample_tokens  # the one sampler; its log-probs are tempered

_READING = torch.from_numpy(READING_TABLES.copy())
"""``int64 [24, 38]``: :data:`READING_TABLES` as a tensor."""


class RowKeys(NamedTuple):
    """Each row's key, for a key-``any`` policy."""

    tables: torch.Tensor
    """``int64 [n, 38]``: token -> the reference token (:data:`READING_TABLES` rows)."""
    modes: torch.Tensor
    """``int64 [n]``: 0 major, 1 minor (the position logits' set)."""

    def take(self, rows: np.ndarray) -> RowKeys:
        index = torch.from_numpy(rows)
        return RowKeys(self.tables[index], self.modes[index])


def observed_keys(obs: np.ndarray, layout: ObservationLayout) -> np.ndarray:
    """``int64 [n]``: the :attr:`Key.index <melody_env.music.keys.Key.index>` each observation
    shows (its ``key_tonic`` and ``key_mode`` one-hots)."""
    tonic = obs[:, layout.slices["key_tonic"]].argmax(axis=1)
    mode = obs[:, layout.slices["key_mode"]].argmax(axis=1)
    return (mode * 12 + tonic).astype(np.int64)


class RLOOPolicy:
    """The policy network and its sampling.

    Args:
        note_rnn: the pretrained Note RNN the policy starts from (copied; the copy is trained).
        temperature: the policy's softmax temperature.
        seed: seeds the sampling of :meth:`predict`.
        composition_length, primer_context, steps_per_bar: the env's, for the observation layout.
        position_logits: add a learnt logit per step of the composition and token
            (:attr:`position_logits`).
        key: the key of the compositions. The network reads every token as the env's reward
            RNN does, transposed into C major / A minor (:mod:`melody_env.music.transposition`),
            and its log-probabilities are mapped back, so the untuned policy is the env's prior
            in every key (the identity in C major and A minor). ``"any"``: each composition in
            its own key, told per row (``key_index``, :attr:`Key.index
            <melody_env.music.keys.Key.index>`; :meth:`predict` reads it from the observation);
            the position logits are then over the reference key's tokens, one set per mode.
    """

    def __init__(
        self,
        note_rnn: NoteRNN,
        temperature: float = 1.0,
        seed: int | None = None,
        composition_length: int = 32,
        primer_context: int = 8,
        steps_per_bar: int = 16,
        position_logits: bool = False,
        key: str = "C major",
    ) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.network = copy.deepcopy(note_rnn).train()
        for parameter in self.network.parameters():
            parameter.requires_grad_(True)
        self.temperature = float(temperature)
        self.layout = ObservationLayout(composition_length, primer_context, steps_per_bar)
        self.any_key = str(key).strip().lower() == "any"
        """Each composition in its own key (told per row)."""
        reading = READING_TABLES[0 if self.any_key else Key.from_name(key).index]
        self.reading: torch.Tensor | None = (
            None if (reading == np.arange(NUM_CLASSES)).all() else torch.from_numpy(reading.copy())
        )
        """Token -> the reference token the network reads (``None``: the identity, or per row
        with ``any_key``)."""
        self.position_logits: torch.Tensor | None = None
        """``[L, 38]`` logits added at each step of the composition (zeros at the start, so the
        policy starts as the Note RNN), or ``None``. The rules reward the tonic at fixed steps
        (the first, and the last four), which the Note RNN cannot see: it has no clock."""
        if position_logits:
            shape = (len(MODES),) * self.any_key + (composition_length, NUM_CLASSES)
            self.position_logits = torch.zeros(shape, requires_grad=True)
        self.predict_rng = np.random.default_rng(seed)
        self.config: RLOOConfig | None = None
        """The run's config (set by :meth:`from_config`)."""
        self.prior: NoteRNN | None = None
        """The frozen Note RNN the policy started from (set by :meth:`from_config`)."""

    @classmethod
    def from_config(cls, config: RLOOConfig, note_rnn: NoteRNN) -> RLOOPolicy:
        """The policy of a run: a trainable copy of ``note_rnn``, which is kept, frozen, as
        :attr:`prior`."""
        policy = cls(
            note_rnn,
            temperature=config.temperature,
            seed=config.seed,
            composition_length=config.env.composition_length,
            primer_context=config.env.primer_context,
            steps_per_bar=config.env.steps_per_bar,
            position_logits=config.position_logits,
            key=config.env.key,
        )
        policy.config = config
        policy.prior = freeze(copy.deepcopy(note_rnn))
        return policy

    # --- distributions

    def parameters(self) -> list[torch.Tensor]:
        """The trained tensors: the LSTM's and head's, then :attr:`position_logits` if any."""
        extra = [] if self.position_logits is None else [self.position_logits]
        return [*self.network.parameters(), *extra]

    def read(self, tokens: torch.Tensor, rows: RowKeys | None = None) -> torch.Tensor:
        """The tokens (``[n]`` or ``[n, T]``) as the network reads them (transposed into the
        reference key; per row with ``rows``)."""
        if rows is not None:
            return rows.tables.gather(1, tokens.reshape(len(tokens), -1)).reshape(tokens.shape)
        return tokens if self.reading is None else self.reading[tokens]

    def map_back(self, scores: torch.Tensor) -> torch.Tensor:
        """The network's scores over reference tokens as scores over the key's tokens."""
        return scores if self.reading is None else scores[..., self.reading]

    def row_keys(self, key_index) -> RowKeys | None:
        """The per-row reading of a key-``any`` policy (``None`` for one key).

        Raises:
            ValueError: a key-``any`` policy without ``key_index``.
        """
        if not self.any_key:
            return None
        if key_index is None:
            raise ValueError("a policy for key 'any' needs each composition's key (key_index)")
        index = torch.as_tensor(np.asarray(key_index, dtype=np.int64))
        return RowKeys(_READING[index], index // 12)

    def finish(self, scores: torch.Tensor, steps, rows: RowKeys | None) -> torch.Tensor:
        """``log pi`` over the key's tokens from the network's scores over reference tokens
        (``[n, 38]``, or ``[n, T, 38]`` with ``steps`` a slice); ``steps``: the composition
        step(s), an int, one per row, or a slice."""
        if rows is None:
            return self.temper(self.map_back(scores), steps)
        if self.position_logits is not None:  # per mode, over reference tokens
            per_row = self.position_logits[rows.modes]  # [n, L, 38]
            if isinstance(steps, slice):
                scores = scores + per_row[:, steps]
            else:
                at = torch.as_tensor(steps).expand(len(per_row))
                scores = scores + per_row[torch.arange(len(per_row)), at]
        tables = rows.tables if scores.dim() == 2 else rows.tables[:, None].expand(scores.shape)
        mapped = scores.gather(-1, tables)
        return torch.log_softmax(mapped / self.temperature, dim=-1)

    def temper(self, log_probs: torch.Tensor, steps) -> torch.Tensor:
        """``log softmax((logits + position_logits[step]) / T)`` from the LSTM's logits or
        log-probs (the same up to a constant); ``steps`` indexes the leading dimensions."""
        if self.position_logits is not None:
            log_probs = log_probs + self.position_logits[steps]
        if self.temperature == 1.0:
            return torch.log_softmax(log_probs, dim=-1)
        return torch.log_softmax(log_probs / self.temperature, dim=-1)

    def sequence_log_probs(
        self,
        primers: np.ndarray,
        primer_lengths: np.ndarray,
        actions: np.ndarray,
        key_index: np.ndarray | None = None,
    ) -> torch.Tensor:
        """``log pi(. | s_t)`` at every step of whole compositions, with gradients.

        Args:
            primers: ``int64 [n, P]``, right-aligned (as :func:`read_primers` returns them).
            primer_lengths: ``int64 [n]``, each at least 1.
            actions: ``int64 [n, L]``: the tokens placed.
            key_index: ``int64 [n]``, each composition's key (a key-``any`` policy only).

        Returns:
            ``float32 [n, L, 38]``: row ``t`` is the distribution ``a_t`` was drawn from.
        """
        n, length = actions.shape
        out = torch.empty(n, length, NUM_CLASSES)
        width = primers.shape[1]
        keys = self.row_keys(key_index)
        for primer_length in np.unique(primer_lengths):
            rows = np.flatnonzero(primer_lengths == primer_length)
            tokens = np.concatenate(
                [primers[rows, width - primer_length :], actions[rows, :-1]], axis=1
            )
            row_keys = None if keys is None else keys.take(rows)
            # [rows, P + L - 1, 38]
            logits, _ = self.network(self.read(torch.from_numpy(tokens), row_keys))
            out[torch.from_numpy(rows)] = self.finish(
                logits[:, primer_length - 1 :], slice(0, length), row_keys
            )
        return out

    @torch.no_grad()
    def prime(
        self, primers: np.ndarray, primer_lengths: np.ndarray, key_index: np.ndarray | None = None
    ) -> tuple[np.ndarray, LSTMState]:
        """From a zero state, run over each primer; return ``log pi(. | s_0) [n, 38]`` and the
        state (``key_index``: each row's key, a key-``any`` policy only)."""
        n, width = primers.shape
        h, c = self.network.initial_state(n)
        keys = self.row_keys(key_index)
        log_probs = torch.empty(n, NUM_CLASSES)
        for primer_length in np.unique(primer_lengths):
            rows = np.flatnonzero(primer_lengths == primer_length)
            tokens = torch.from_numpy(np.ascontiguousarray(primers[rows, width - primer_length :]))
            row_keys = None if keys is None else keys.take(rows)
            lp, (h_rows, c_rows) = self.network.prime(self.read(tokens, row_keys))
            if keys is None:
                lp = self.map_back(lp)
            index = torch.from_numpy(rows)
            log_probs[index], h[:, index], c[:, index] = lp, h_rows, c_rows
        if keys is None:
            return self.temper(log_probs, 0).numpy(), (h, c)
        return self.finish(log_probs, 0, keys).numpy(), (h, c)

    @torch.no_grad()
    def step(
        self, tokens: np.ndarray, state: LSTMState, steps, key_index: np.ndarray | None = None
    ) -> tuple[np.ndarray, LSTMState]:
        """Feed one token per composition; return ``log pi(. | s) [n, 38]`` at composition step
        ``steps`` (an int, or one per composition) and the new state (``key_index``: each row's
        key, a key-``any`` policy only)."""
        keys = self.row_keys(key_index)
        log_probs, state = self.network.step(self.read(torch.from_numpy(tokens), keys), state)
        return self.finish(log_probs, steps, keys).numpy(), state

    # --- Stable-Baselines3's recurrent protocol

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Actions for observations ``[n, size]`` (or one ``[size]``) and the new state.

        Args:
            observation: the env's observations.
            state: what the previous call returned, or ``None`` at the start (then every
                composition starts an episode).
            episode_start: ``bool [n]``: True where the observation is the first of an episode;
                those states are reset and primed from the observation's primer.
            deterministic: the most likely token instead of a sample.

        Returns:
            ``actions`` (``int64 [n]``, or a 0-d array for a single observation) and ``(h, c)``
            as numpy arrays ``[1, n, hidden_size]``.
        """
        log_probs, new_state, single = self._advance(observation, state, episode_start)
        if deterministic:
            actions = log_probs.argmax(axis=1).astype(np.int64)
        else:
            actions = sample_tokens(log_probs, self.predict_rng)
        return (actions[0] if single else actions), new_state

    def set_random_seed(self, seed: int) -> None:
        """Reseed :meth:`predict`'s sampling (the evaluation calls it with its seed)."""
        self.predict_rng = np.random.default_rng(seed)

    def action_log_probs(self, observation, state=None, episode_start=None) -> np.ndarray:
        """``log pi(. | s) [n, 38]`` for the same arguments as :meth:`predict` (no state change)."""
        return self._advance(observation, state, episode_start)[0].astype(np.float64)

    def _advance(self, observation, state, episode_start):
        single = np.ndim(observation) == 1
        obs = self.layout.as_batch(observation)
        n = len(obs)
        if state is None:
            starts = np.ones(n, dtype=bool)
            h, c = self.network.initial_state(n)
        else:
            starts = (
                np.zeros(n, dtype=bool)
                if episode_start is None
                else np.asarray(episode_start, dtype=bool).reshape(n)
            )
            h, c = (torch.as_tensor(np.asarray(x, dtype=np.float32)).clone() for x in state)
        log_probs = np.empty((n, NUM_CLASSES), dtype=np.float32)
        key_index = observed_keys(obs, self.layout) if self.any_key else None
        rows = np.flatnonzero(~starts)
        if rows.size:
            index = torch.from_numpy(rows)
            last = obs[rows, self.layout.slices["last_token"]].argmax(axis=1)
            # the step about to be played; all zeros after the last one (nothing to play)
            steps = torch.from_numpy(obs[rows, self.layout.slices["position"]].argmax(axis=1))
            state_rows = (h[:, index], c[:, index])
            keys = key_index[rows] if key_index is not None else None
            lp, (h_rows, c_rows) = self.step(last.astype(np.int64), state_rows, steps, keys)
            log_probs[rows], h[:, index], c[:, index] = lp, h_rows, c_rows
        rows = np.flatnonzero(starts)
        if rows.size:
            index = torch.from_numpy(rows)
            primers, lengths = read_primers(obs[rows], self.layout)
            keys = key_index[rows] if key_index is not None else None
            lp, (h_rows, c_rows) = self.prime(primers, lengths, keys)
            log_probs[rows], h[:, index], c[:, index] = lp, h_rows, c_rows
        return log_probs, (h.numpy().copy(), c.numpy().copy()), single

    def __repr__(self) -> str:
        return f"RLOOPolicy(temperature={self.temperature})"
