"""State of one composition: the engine of the single env.

:class:`~melody_env.envs.composition_state.CompositionState` advances ``B`` compositions with
numpy arrays; for one composition each array operation would cost more in numpy's fixed
overhead than in arithmetic. This class steps the same rule engine
(:mod:`melody_env.rewards.rule_engine`) for a batch of one and hands the reward terms a
:class:`~melody_env.rewards.context.SingleRewardContext` of Python scalars, so the rules, their
tables and their order of summation are shared, and the rewards agree bit for bit
(``tests/test_vector_env.py``).

As there, the reward RNN reads the composition transposed into C major or A minor and its
log-probabilities are mapped back (:mod:`melody_env.music.transposition`), and a step that
raises changes nothing.
"""

from __future__ import annotations

import numpy as np
import torch

from melody_env.envs.composition_state import check_finite_rewards
from melody_env.models import lstm_step
from melody_env.models.note_rnn import PRIME_BY_STEPS, NoteRNN
from melody_env.music.keys import Key
from melody_env.music.transposition import KEY_SHIFTS, READING_TABLES
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
        # The reward RNN's view of the key (see melody_env.music.transposition); None in C major
        # and A minor, where it reads the tokens as they are.
        self._reference_tokens: list[int] | None = None
        self._read_back: np.ndarray | None = None

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
        if KEY_SHIFTS[key.index]:
            self._reference_tokens = READING_TABLES[key.index].tolist()
            self._read_back = READING_TABLES[key.index]
            primer = READING_TABLES[key.index][np.asarray(primer, dtype=np.int64)]
        else:
            self._reference_tokens = self._read_back = None
        if len(primer) <= PRIME_BY_STEPS:  # e.g. the default one-token primers: compiled steps
            state = self._initial_rnn_state
            for token in primer.tolist():
                log_probs, state = self.reward_rnn.step_arrays((token,), state)
            self.rnn_state, self.next_log_probs = state, self._mapped(log_probs[0])
            return
        log_probs, state = self.reward_rnn.prime(torch.from_numpy(np.array([primer], np.int64)))
        self.rnn_state = tuple(x.numpy() for x in state)
        self.next_log_probs = self._mapped(log_probs.numpy()[0])

    def _mapped(self, log_probs: np.ndarray) -> np.ndarray:
        """The RNN's log-probabilities over the key's own tokens."""
        return log_probs if self._read_back is None else log_probs[self._read_back]

    def advance(self, token: int) -> RewardBreakdown:
        """Place ``token`` (a Python ``int``); return the rewards it earn (floats).

        If this raises, nothing has changed: the step can be retried.
        """
        tokens = self.tokens
        step = len(tokens)
        if step >= self.length:
            raise RuntimeError(f"the composition is finished ({self.length} steps); reset first")
        rules = self._rules
        values = rules.advance(step, token)[:, 0].tolist()
        tokens.append(token)
        try:
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
            check_finite_rewards(breakdown, step)
            rnn_token = token if self._reference_tokens is None else self._reference_tokens[token]
            weights = self._rnn_weights
            if weights is not None and weights.gate_rows is not None:
                log_probs, h, c = lstm_step.step_one(
                    rnn_token, weights.gate_rows, weights.head_rows, *self.rnn_state
                )
                rnn_state = (h, c)
            else:
                log_probs, rnn_state = self.reward_rnn.step_arrays((rnn_token,), self.rnn_state)
        except BaseException:
            self._rewind(step)
            raise
        self.previous_token = token
        self.rnn_state = rnn_state
        self.next_log_probs = self._mapped(log_probs[0])
        return breakdown

    def _rewind(self, step: int) -> None:
        """Undo a failed step at ``step``: drop its token and replay the rule engine through
        the tokens before it (only a failure pays for this)."""
        del self.tokens[step:]
        rules = self._rules
        rules.tokens_by_step[step] = 0
        rules.reset(np.array([self.key.index], np.int64))
        for earlier, token in enumerate(self.tokens):
            rules.advance(earlier, token)
