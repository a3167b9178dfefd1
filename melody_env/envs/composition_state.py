"""State of ``B`` compositions advanced in lockstep: the engine of the vector env and of the
evaluation. The single env's engine (:mod:`melody_env.envs.single_state`) is the same for one
composition.

Each step costs the same at the first and the last token: what the rules need to know about
the history is kept up to date token by token by the rule engine
(:mod:`melody_env.rewards.rule_engine`), which both engines step, instead of being recomputed
from the whole history.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from melody_env.models.note_rnn import NoteRNN
from melody_env.music.keys import Key
from melody_env.rewards import rule_engine
from melody_env.rewards.composition import RewardBreakdown, RewardFunction
from melody_env.rewards.context import KeyArrays, RewardContext


class CompositionState:
    """Tokens, keys, rule states and reward-RNN state of ``batch_size`` compositions.

    Args:
        batch_size: number of compositions.
        length: tokens per composition.
        reward_rnn: the frozen Note RNN scoring each token.
        reward_function: the weighted reward terms (any callable ``RewardContext ->
            RewardBreakdown``).
    """

    def __init__(
        self,
        batch_size: int,
        length: int,
        reward_rnn: NoteRNN,
        reward_function: RewardFunction,
    ) -> None:
        self.batch_size = batch_size
        self.length = length
        self.reward_rnn = reward_rnn
        self.reward_function = reward_function
        self._rules = rule_engine.RuleEngine(batch_size, length)
        # Step-major (the engine's): a step writes one contiguous row. Read as [B, L] views.
        self._tokens_by_step = self._rules.tokens_by_step
        self.step = 0
        self.previous_token = np.zeros(batch_size, dtype=np.int64)
        self.keys: list[Key] = []
        self.key_arrays: KeyArrays | None = None
        self.primers: list[np.ndarray] = []
        self.rnn_state = tuple(x.numpy() for x in reward_rnn.initial_state(batch_size))
        self._rnn_buffers = None  # the reward RNN's running state and outputs; made at reset
        num_classes = reward_rnn.config.num_classes
        self.next_log_probs = np.zeros((batch_size, num_classes), np.float32)
        self._log_prob_index = np.arange(batch_size) * num_classes

    @property
    def finished(self) -> bool:
        return self.step >= self.length

    @property
    def tokens(self) -> np.ndarray:
        """``int64 [B, length]``: the tokens placed so far, zeros after them (a view)."""
        return self._tokens_by_step.T

    @property
    def composition(self) -> np.ndarray:
        """``int64 [B, step]``: the tokens placed so far (a view)."""
        return self._tokens_by_step[: self.step].T

    def reset(self, primers: list[np.ndarray] | np.ndarray, keys: list[Key]) -> None:
        """Start new compositions after ``primers`` in ``keys``.

        Args:
            primers: one non-empty token array per composition, or an ``int [B, T]`` array.
            keys: one key per composition.
        """
        self._tokens_by_step[:] = 0
        self.step = 0
        self.primers = primers
        self.keys = keys
        self.key_arrays = KeyArrays.from_keys(keys)
        self._rules.reset(self.key_arrays.index)
        # Written in place step after step, so they stay warm in the caches through the rest
        # of a step. Made at each reset so that they follow any change to the weights.
        self._rnn_buffers = self.reward_rnn.step_buffers(self.batch_size)
        stacked = stack_primers(primers)
        if stacked is not None:
            self.previous_token = stacked[:, -1].copy()
        else:
            self.previous_token = np.array([primer[-1] for primer in primers], dtype=np.int64)
        self._prime_reward_rnn(primers, stacked)

    def _prime_reward_rnn(self, primers: list[np.ndarray], stacked: np.ndarray | None) -> None:
        if stacked is not None:  # the usual case, e.g. the default one-token random primers
            log_probs, state = self.reward_rnn.prime(torch.from_numpy(stacked))
            self.rnn_state = tuple(x.numpy() for x in state)
            self.next_log_probs = log_probs.numpy()
            return
        # Primers of equal length run as one batch.
        rows_by_length = defaultdict(list)
        for row, primer in enumerate(primers):
            rows_by_length[len(primer)].append(row)
        h, c = (tensor.clone() for tensor in self.reward_rnn.initial_state(self.batch_size))
        log_probs = torch.empty(self.batch_size, self.reward_rnn.config.num_classes)
        for rows in rows_by_length.values():
            tokens = torch.from_numpy(np.stack([primers[row] for row in rows]).astype(np.int64))
            group_log_probs, (group_h, group_c) = self.reward_rnn.prime(tokens)
            index = torch.tensor(rows)
            log_probs[index] = group_log_probs
            h[:, index], c[:, index] = group_h, group_c
        self.rnn_state = (h.numpy(), c.numpy())
        self.next_log_probs = log_probs.numpy()

    def advance(self, actions: np.ndarray) -> RewardBreakdown:
        """Place ``actions [B]`` at the current step; return the rewards they earn."""
        step = self.step
        actions = np.asarray(actions)
        if step >= self.length:
            raise RuntimeError(f"the compositions are finished ({self.length} steps); reset first")
        rules = self._rules
        values = rules.advance(step, actions)
        context = RewardContext(
            history=self._tokens_by_step[:step].T,
            action=actions,
            step=step,
            length=self.length,
            keys=self.key_arrays,
            previous_token=self.previous_token,
            log_prob=self.next_log_probs.reshape(-1)[self._log_prob_index + actions],
            leap_outcome=rules.leap_outcome,
            sequence=self._tokens_by_step[: step + 1].T,
            pitch=rules.pitch,
            in_key=rules.in_key,
            interval=rules.interval,
            is_repeating=rules.is_repeating,
            motif_notes=rules.motif_notes,
            rule_values=values[: rule_engine.NUM_RULES],
            music_theory=values[rule_engine.NUM_RULES],
        )
        breakdown = self.reward_function(context)
        self.step = step + 1
        self.previous_token = actions
        # Views of the buffers: the state is updated in place, the log-probs stay valid through
        # the next step; what outlives that (the envs' info) is copied.
        self.next_log_probs, self.rnn_state = self.reward_rnn.step_arrays(
            actions, self.rnn_state, self._rnn_buffers
        )
        return breakdown


def stack_primers(primers: list[np.ndarray] | np.ndarray) -> np.ndarray | None:
    """The primers as one ``int64 [B, T]`` array if they all have ``T`` tokens, else ``None``."""
    if isinstance(primers, np.ndarray) and primers.ndim == 2:
        return primers.astype(np.int64, copy=False)
    length = len(primers[0])
    if all(len(primer) == length for primer in primers):
        return np.array(primers, dtype=np.int64)
    return None
