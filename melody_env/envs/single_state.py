"""State of one composition: the engine of the single env.

:class:`~melody_env.envs.composition_state.CompositionState` advances ``B`` compositions with
numpy arrays; for one composition each array operation would cost more in numpy's fixed
overhead than in arithmetic. This class steps the same rule engine
(:mod:`melody_env.rewards.rule_engine`) for a batch of one and hands the reward terms a
:class:`~melody_env.rewards.context.SingleRewardContext` of Python scalars, so the rules, their
tables and their order of summation are shared, and the rewards agree bit for bit
(``tests/test_vector_env.py``).
"""

from __future__ import annotations

import numpy as np
import torch

from melody_env.models import lstm_step
from melody_env.models.note_rnn import PRIME_BY_STEPS, NoteRNN
from melody_env.music.keys import Key
from melody_env.rewards import rule_engine
from melody_env.rewards.composition import RewardBreakdown, RewardFunction
from melody_env.rewards.context import SingleRewardContext


class SingleCompositionState:
    """Tokens, key, rule states and reward-RNN state of one composition.

    Args:
        length: tokens per composition.
        reward_rnn: the frozen Note RNN scoring each token.
        reward_function: the weighted reward terms.
    """

    def __init__(self, length: int, reward_rnn: NoteRNN, reward_function: RewardFunction) -> None:
        self.length = length
        self.reward_rnn = reward_rnn
        self.reward_function = reward_function
        self.tokens: list[int] = []
        self.key: Key | None = None
        self.primer: np.ndarray | None = None
        self.previous_token = 0
        self._initial_rnn_state = tuple(x.numpy() for x in reward_rnn.initial_state(1))
        self.rnn_state = self._initial_rnn_state
        self.next_log_probs = np.zeros(reward_rnn.config.num_classes, np.float32)
        self._rules = rule_engine.RuleEngine(1, length)
        self._rnn_weights: lstm_step.StepWeights | None = None

    @property
    def step(self) -> int:
        return len(self.tokens)

    @property
    def finished(self) -> bool:
        return len(self.tokens) >= self.length

    @property
    def composition(self) -> np.ndarray:
        """``int64 [step]``: the tokens placed so far (a copy)."""
        return np.array(self.tokens, dtype=np.int64)

    def reset(self, primer: np.ndarray, key: Key) -> None:
        """Start a new composition after ``primer`` (a non-empty token array) in ``key``."""
        self.tokens = []
        self.key = key
        self.primer = primer
        self.previous_token = int(primer[-1])
        self._rules.reset(np.array([key.index], np.int64))
        # The reward RNN is frozen: its weights are fetched (and checked) once per episode.
        self._rnn_weights = self.reward_rnn.step_weights()
        if len(primer) <= PRIME_BY_STEPS:  # e.g. the default one-token primers: numpy steps
            state = self._initial_rnn_state
            for token in primer.tolist():
                log_probs, state = self.reward_rnn.step_arrays((token,), state)
            self.rnn_state, self.next_log_probs = state, log_probs[0]
            return
        log_probs, state = self.reward_rnn.prime(torch.from_numpy(np.array([primer], np.int64)))
        self.rnn_state = tuple(x.numpy() for x in state)
        self.next_log_probs = log_probs.numpy()[0]

    def advance(self, token: int) -> RewardBreakdown:
        """Place ``token`` (a Python ``int``); return the rewards it earns (floats)."""
        if len(self.tokens) >= self.length:
            raise RuntimeError(f"the composition is finished ({self.length} steps); reset first")
        rules = self._rules
        values = rules.advance(len(self.tokens), token)[:, 0].tolist()
        tokens = self.tokens
        tokens.append(token)
        context = SingleRewardContext(
            tokens,
            self.length,
            self.key,
            self.previous_token,
            float(self.next_log_probs[token]),
            rules.facts_of(0),
            values,
        )
        breakdown = self.reward_function(context)
        self.previous_token = token
        if self._rnn_weights is not None:
            log_probs, h, c = lstm_step.step_numpy(self._rnn_weights, (token,), *self.rnn_state)
            self.rnn_state = (h, c)
        else:
            log_probs, self.rnn_state = self.reward_rnn.step_arrays((token,), self.rnn_state)
        self.next_log_probs = log_probs[0]
        return breakdown
