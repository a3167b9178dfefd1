"""State of ``B`` compositions advanced in lockstep: the engine of the vector env and of the
evaluation. The single env's engine (:mod:`melody_env.envs.single_state`) is the same for one
composition.

Each step costs the same at the first and the last token: what the rules need to know about
the history is kept up to date token by token by the rule engine
(:mod:`melody_env.rewards.rule_engine`), which both engines step, instead of being recomputed
from the whole history.

The reward RNN reads each composition in its key transposed into C major or A minor, the keys it
was trained in, and its log-probabilities are mapped back to the composition's own tokens
(:class:`~melody_env.envs.key_reading.KeyReading`; the maps are defined in
:mod:`melody_env.music.transposition`).

A step is a transaction: if it raises (a reward term fails, or the reward is not finite), the
state is as it was before the step, so the same step can be retried exactly.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch

from melody_env.envs.key_reading import KeyReading
from melody_env.envs.priming import stack_primers
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
        check_finite: raise ``FloatingPointError`` (and leave the state as it was) when a
            step's total reward is NaN or infinite, as the envs do.
    """

    def __init__(
        self,
        batch_size: int,
        length: int,
        reward_rnn: NoteRNN,
        reward_function: RewardFunction,
        check_finite: bool = False,
    ) -> None:
        self.batch_size = batch_size
        self.check_finite = check_finite
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
        self._reading: KeyReading | None = None  # None: all in C major / A minor
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
        self._reading = KeyReading.for_keys(self.key_arrays.index)
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
        reading = self._reading
        if stacked is not None:  # the usual case, e.g. the default one-token random primers
            if reading is not None:
                stacked = reading.primers(stacked)
            log_probs, state = self.reward_rnn.prime(torch.from_numpy(stacked))
            self.rnn_state = tuple(x.numpy() for x in state)
            self.next_log_probs = self._read_back(log_probs.numpy())
            return
        # Primers of equal length run as one batch.
        rows_by_length = defaultdict(list)
        for row, primer in enumerate(primers):
            rows_by_length[len(primer)].append(row)
        h, c = (tensor.clone() for tensor in self.reward_rnn.initial_state(self.batch_size))
        log_probs = torch.empty(self.batch_size, self.reward_rnn.config.num_classes)
        if reading is not None:
            primers = [reading.primer(row, primer) for row, primer in enumerate(primers)]
        for rows in rows_by_length.values():
            tokens = torch.from_numpy(np.stack([primers[row] for row in rows]).astype(np.int64))
            group_log_probs, (group_h, group_c) = self.reward_rnn.prime(tokens)
            index = torch.tensor(rows)
            log_probs[index] = group_log_probs
            h[:, index], c[:, index] = group_h, group_c
        self.rnn_state = (h.numpy(), c.numpy())
        self.next_log_probs = self._read_back(log_probs.numpy())

    def _read_back(self, log_probs: np.ndarray) -> np.ndarray:
        """The RNN's log-probabilities over each composition's own tokens."""
        return log_probs if self._reading is None else self._reading.log_probs(log_probs)

    def advance(self, actions: np.ndarray) -> RewardBreakdown:
        """Place ``actions [B]`` at the current step; return the rewards they earn.

        If this raises, nothing has changed: the step can be retried.
        """
        step = self.step
        actions = np.asarray(actions)
        if step >= self.length:
            raise RuntimeError(f"the compositions are finished ({self.length} steps); reset first")
        rules = self._rules
        values = rules.advance(step, actions)
        try:
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
            if self.check_finite:
                check_finite_rewards(breakdown, step)
            reading = self._reading
            rnn_tokens = actions if reading is None else reading.tokens(actions)
            # Views of the buffers: the state is updated in place, the log-probs stay valid
            # through the next step; what outlives that (the envs' info) is copied. The step
            # checks the weights before it writes anything.
            log_probs, rnn_state = self.reward_rnn.step_arrays(
                rnn_tokens, self.rnn_state, self._rnn_buffers
            )
        except BaseException:
            self._rewind(step)
            raise
        self.step = step + 1
        self.previous_token = actions
        self.rnn_state = rnn_state
        self.next_log_probs = self._read_back(log_probs)
        return breakdown

    def _rewind(self, step: int) -> None:
        """Undo a failed step at ``step``: replay the rule engine through the steps before it
        (only a failure pays for this; a snapshot would cost every step)."""
        rules = self._rules
        placed = self._tokens_by_step[:step].copy()
        self._tokens_by_step[step] = 0
        rules.reset(self.key_arrays.index)
        for earlier in range(step):
            rules.advance(earlier, placed[earlier])


def check_finite_rewards(breakdown: RewardBreakdown, step: int) -> None:
    """Raise ``FloatingPointError`` naming the first composition whose total reward at
    ``step`` (0-based) is NaN or infinite, and its terms."""
    total = breakdown.total
    if isinstance(total, float) and math.isfinite(total):  # a single env's step, checked fast
        return
    total = np.asarray(total, dtype=np.float64)
    if np.isfinite(total).all():
        return
    if total.ndim == 0:
        terms = {name: float(value) for name, value in breakdown.terms.items()}
        raise FloatingPointError(f"non-finite reward {float(total)} at step {step + 1}: {terms}")
    env = int(np.flatnonzero(~np.isfinite(total))[0])
    terms = {
        name: float(np.asarray(value).reshape(-1)[env]) if np.ndim(value) else float(value)
        for name, value in breakdown.terms.items()
    }
    raise FloatingPointError(
        f"non-finite reward {total[env]} in env {env} at step {step + 1}: {terms}"
    )
