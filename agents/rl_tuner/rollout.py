"""Acting in a Gymnasium vector env of melody envs: one batched forward of the agent per step.

:class:`VectorComposer` keeps the agent's LSTM state for the ``N`` compositions being written,
records each composition step by step and hands back the finished ones whole. It reads only
these ``info`` keys, which the natively batched vector env and Gymnasium's ``SyncVectorEnv``
both provide as arrays over the ``N`` envs: ``reward_terms[name]``, ``music_theory``,
``log_prob`` and ``prior_log_probs``.

Compositions are written in *rounds*: all ``N`` envs are reset together with seeds derived from
the run's seed and the round's index, and every composition of the melody env has the same
length, so all ``N`` end at the same step and the next round starts with an explicit
``reset(seed=...)``. This makes each round's primers a function of the seed and the round, which
is what lets a resumed run continue exactly. Gymnasium's next-step autoreset is still handled
for envs that end alone: the step after a termination is a reset step; its action is ignored,
its reward is not recorded, and its observation starts a new composition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from agents.rl_tuner.agent import RLTunerAgent, read_keys, read_primers
from agents.rl_tuner.config import TrainConfig
from melody_env import ENV_ID
from melody_env.models.note_rnn import NoteRNN
from melody_env.music.encoding import NUM_CLASSES
from melody_env.sampling import sample_tokens

ROUND_PURPOSES = {"train": 0, "eval": 1, "summary": 2, "generate": 3}
"""Streams of round seeds, so evaluation never changes the training compositions."""


def round_seeds(seed: int, purpose: str, index: int, n: int) -> list[int]:
    """``n`` env seeds for round ``index`` of a stream (``ROUND_PURPOSES``)."""
    sequence = np.random.SeedSequence([seed, ROUND_PURPOSES[purpose], index])
    return [int(value) for value in sequence.generate_state(n, dtype=np.uint32)]


def make_vector_env(
    config: TrainConfig, num_envs: int, reward_rnn: NoteRNN
) -> gym.vector.VectorEnv:
    """``num_envs`` melody envs for ``config``'s task, scored by ``reward_rnn``.

    The natively batched vector env when it is registered (``vector_entry_point``), otherwise
    Gymnasium's ``SyncVectorEnv`` (same info keys). Both autoreset on the next step.
    """
    env_config = config.env.replace(reward_rnn=reward_rnn)
    spec = gym.spec(ENV_ID)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode=mode, config=env_config)


@dataclass
class Compositions:
    """``k`` finished compositions.

    Attributes:
        primers: ``int64 [k, P]``: the primer tokens the agent read, right-aligned.
        primer_lengths: ``int64 [k]``.
        actions: ``int64 [k, L]``: the tokens played.
        rewards: ``float32 [k, L]``: the env's reward of each step.
        prior_log_probs: ``float32 [k, L, 38]``: the reward RNN's log p(. | s_{t+1}) after each
            step (``info["prior_log_probs"]``).
        music_theory: ``float32 [k, L]``: r_MT of each step.
        log_prob: ``float32 [k, L]``: log p(a_t | s_t) under the reward RNN.
        terms: each reward term's unweighted value, ``float32 [k, L]``.
        keys: ``int64 [k]``: each composition's key (:attr:`Key.index
            <melody_env.music.keys.Key.index>`); ``None`` for C major throughout.
    """

    primers: np.ndarray
    primer_lengths: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    prior_log_probs: np.ndarray
    music_theory: np.ndarray
    log_prob: np.ndarray
    terms: dict[str, np.ndarray]
    keys: np.ndarray | None = None

    def key_of(self, row: int) -> int:
        """Composition ``row``'s key index (0, C major, when no keys were recorded)."""
        return 0 if self.keys is None else int(self.keys[row])

    def __len__(self) -> int:
        return len(self.actions)

    @classmethod
    def concatenate(cls, parts: list[Compositions]) -> Compositions:
        first = parts[0]
        return cls(
            *(
                np.concatenate([getattr(part, name) for part in parts])
                for name in (
                    "primers",
                    "primer_lengths",
                    "actions",
                    "rewards",
                    "prior_log_probs",
                    "music_theory",
                    "log_prob",
                )
            ),
            terms={name: np.concatenate([p.terms[name] for p in parts]) for name in first.terms},
            keys=None
            if any(part.keys is None for part in parts)
            else np.concatenate([part.keys for part in parts]),
        )

    def take(self, count: int) -> Compositions:
        """The first ``count`` compositions."""
        return Compositions(
            self.primers[:count],
            self.primer_lengths[:count],
            self.actions[:count],
            self.rewards[:count],
            self.prior_log_probs[:count],
            self.music_theory[:count],
            self.log_prob[:count],
            {name: value[:count] for name, value in self.terms.items()},
            None if self.keys is None else self.keys[:count],
        )


class VectorComposer:
    """Writes compositions in a vector env with an agent.

    Args:
        envs: a vector env of melody envs (all with the same composition length).
        agent: acts from its recurrent state, one batched step per env step.
        length: steps per composition.
    """

    def __init__(self, envs: gym.vector.VectorEnv, agent: RLTunerAgent, length: int) -> None:
        self.envs = envs
        self.agent = agent
        self.length = length
        n = envs.num_envs
        self.num_envs = n
        width = max(agent.layout.primer_context, 1)
        self.primers = np.zeros((n, width), dtype=np.int64)
        self.primer_lengths = np.ones(n, dtype=np.int64)
        self.keys = np.zeros(n, dtype=np.int64)
        self.actions = np.zeros((n, length), dtype=np.int64)
        self.rewards = np.zeros((n, length), dtype=np.float32)
        self.prior_log_probs = np.zeros((n, length, NUM_CLASSES), dtype=np.float32)
        self.music_theory = np.zeros((n, length), dtype=np.float32)
        self.log_prob = np.zeros((n, length), dtype=np.float32)
        self.terms: dict[str, np.ndarray] = {}
        self.steps = np.zeros(n, dtype=np.int64)
        self.obs: np.ndarray | None = None
        self.next_prior: np.ndarray | None = None  # info["prior_log_probs"] of ``obs``
        self.state = agent.initial_state(n, with_prior=False)
        self.episode_start = np.ones(n, dtype=bool)
        self.autoreset = np.zeros(n, dtype=bool)
        self.round_done = True

    def reset(self, seeds: list[int]) -> None:
        """Start a round: reset every env with its seed."""
        obs, info = self.envs.reset(seed=seeds)
        self.obs = obs
        self.next_prior = np.asarray(info["prior_log_probs"], dtype=np.float32)
        self.state = self.agent.initial_state(self.num_envs, with_prior=False)
        self.episode_start[:] = True
        self.autoreset[:] = False
        self.round_done = False
        self._start(np.ones(self.num_envs, dtype=bool))

    def _start(self, rows: np.ndarray) -> None:
        """Begin new compositions in ``rows`` from the current observations."""
        if not rows.any():
            return
        primers, lengths = read_primers(self.obs[rows], self.agent.layout)
        self.primers[rows] = primers
        self.primer_lengths[rows] = lengths
        self.keys[rows] = read_keys(self.obs[rows], self.agent.layout)
        self.steps[rows] = 0

    def step(self, choose: Callable[[np.ndarray], np.ndarray]) -> tuple[int, Compositions | None]:
        """One step of every env.

        Args:
            choose: maps the policy logits ``[N, 38]`` to actions ``[N]``.

        Returns:
            The number of transitions recorded (envs not in a reset step) and the compositions
            that ended at this step (``None`` if none did). Sets ``round_done`` when every env
            ended at this step.
        """
        if self.round_done:
            raise RuntimeError("the round is over; call reset(seeds) first")
        # G-learning's policy adds the prior's log-probs: the env's, so the prior runs once.
        logits, self.state = self.agent.step(
            self.obs, self.state, self.episode_start, self.next_prior
        )
        actions = np.asarray(choose(logits.numpy()), dtype=np.int64)
        obs, rewards, terminated, truncated, info = self.envs.step(actions)
        live = ~self.autoreset
        rows = np.flatnonzero(live)
        if rows.size:
            self._record(rows, actions, rewards, info)
        ended = (terminated | truncated) & live
        finished = None
        complete = terminated & live & (self.steps == self.length)
        if complete.any():
            finished = self._collect(complete)
        # Rows that were in a reset step now hold the first observation of a new composition
        # (and their reset info's prior_log_probs).
        self.obs = obs
        self.next_prior = np.asarray(info["prior_log_probs"], dtype=np.float32)
        self.episode_start = self.autoreset.copy()
        self._start(self.autoreset)
        self.autoreset = ended
        self.round_done = bool(ended.all())
        return int(rows.size), finished

    def _record(self, rows: np.ndarray, actions, rewards, info) -> None:
        steps = self.steps[rows]
        if (steps >= self.length).any():
            raise RuntimeError(
                f"a composition ran past its {self.length} steps without terminating"
            )
        self.actions[rows, steps] = actions[rows]
        self.rewards[rows, steps] = rewards[rows]
        self.prior_log_probs[rows, steps] = np.asarray(info["prior_log_probs"])[rows]
        self.music_theory[rows, steps] = np.asarray(info["music_theory"])[rows]
        self.log_prob[rows, steps] = np.asarray(info["log_prob"])[rows]
        for name, values in info["reward_terms"].items():
            if name.startswith("_"):
                continue  # SyncVectorEnv's masks
            if name not in self.terms:
                self.terms[name] = np.zeros((self.num_envs, self.length), dtype=np.float32)
            self.terms[name][rows, steps] = np.asarray(values)[rows]
        self.steps[rows] = steps + 1

    def _collect(self, rows: np.ndarray) -> Compositions:
        return Compositions(
            self.primers[rows].copy(),
            self.primer_lengths[rows].copy(),
            self.actions[rows].copy(),
            self.rewards[rows].copy(),
            self.prior_log_probs[rows].copy(),
            self.music_theory[rows].copy(),
            self.log_prob[rows].copy(),
            {name: values[rows].copy() for name, values in self.terms.items()},
            self.keys[rows].copy(),
        )


def compose(
    agent: RLTunerAgent,
    envs: gym.vector.VectorEnv,
    count: int,
    seed: int,
    purpose: str = "eval",
    greedy: bool = False,
    temperature: float = 1.0,
) -> Compositions:
    """``count`` compositions of ``agent`` without exploration, reproducibly.

    Tokens are sampled from the softmax of the policy logits (the paper's evaluation) or, with
    ``greedy``, their argmax. Round ``r`` of the ``purpose`` stream seeds the envs.
    """
    composer = VectorComposer(envs, agent, agent.config.env.composition_length)
    rng = np.random.default_rng(np.random.SeedSequence([seed, ROUND_PURPOSES[purpose], 1 << 20]))

    def choose(logits: np.ndarray) -> np.ndarray:
        if greedy:
            return logits.argmax(axis=1)
        return sample_tokens(logits, rng, temperature)

    parts, total, round_index = [], 0, 0
    while total < count:
        composer.reset(round_seeds(seed, purpose, round_index, envs.num_envs))
        while not composer.round_done:
            _, finished = composer.step(choose)
            if finished is not None:
                parts.append(finished)
                total += len(finished)
        round_index += 1
    return Compositions.concatenate(parts).take(count)
