"""The recurrent RL Tuner agent: three Note RNN copies, acting, and Stable-Baselines3's ``predict``.

The agent reads from an observation three slices (:mod:`melody_env.envs.observation`): the last
token, which it feeds to its LSTMs one step at a time; when an episode starts, the primer (the last
``primer_context`` primer tokens, right-aligned); and the key. Like the env's reward RNN, all three
networks work in the *reference key* of the episode's mode, C major or A minor: they read each token
transposed there and their 38 outputs are mapped back to the episode key's tokens
(:mod:`melody_env.music.transposition`; a permutation of the 38 tokens, the identity in C major and
A minor). An agent therefore composes in every key as in its reference key, up to that relabelling,
and one agent can train on compositions in many keys (``env.key = "any"``); the replay stores
compositions in the reference key (:meth:`~agents.rl_tuner.replay.CompositionReplay.add`). At an
episode start its state is reset to zeros and it runs over the primer, so its first scores follow
the primer as the env's reward RNN does. A primer longer than ``primer_context`` (e.g. a MIDI file)
is only seen through its last ``primer_context`` tokens: an approximation of the reward RNN's
priming on the whole primer (exact for the default one-token primers). Training uses the same rule,
so the replay recomputes exactly the states the agent acted from.

>>> from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig
>>> from agents.rl_tuner.config import make_config
>>> agent = RLTunerAgent(make_config("fast", "g"), NoteRNN(NoteRNNConfig(hidden_size=8), seed=0))
>>> obs = np.zeros((3, agent.layout.size), dtype=np.float32)
>>> obs[:, 5] = 1.0  # last token 5 ...
>>> obs[:, agent.layout.slices["primer"].stop - 38 + 5] = 1.0  # ... which is the whole primer
>>> action, state = agent.predict(obs, deterministic=True)
>>> action.shape, len(state), state[0].shape
((3,), 4, (1, 3, 8))
"""

from __future__ import annotations

import numpy as np
import torch

from agents.rl_tuner.config import TrainConfig
from agents.rl_tuner.networks import build_networks
from agents.rl_tuner.targets import policy_scores
from melody_env.envs.observation import ObservationLayout
from melody_env.models.note_rnn import NoteRNN, check_tensors, single_threaded
from melody_env.music.encoding import NUM_CLASSES
from melody_env.music.transposition import READING_TABLES
from melody_env.sampling import sample_tokens

AgentState = tuple[torch.Tensor, ...]
"""``(h, c)`` of the Q-network, followed for G-learning by ``(h, c)`` of the prior; each
``[num_layers, n, hidden_size]``."""


def read_keys(obs: np.ndarray, layout: ObservationLayout) -> np.ndarray:
    """``int64 [n]``: the key (:attr:`Key.index <melody_env.music.keys.Key.index>`) of each of
    the observations ``[n, size]``, from their tonic and mode one-hots."""
    tonic = obs[:, layout.slices["key_tonic"]].argmax(axis=1)
    mode = obs[:, layout.slices["key_mode"]].argmax(axis=1)
    return (mode * 12 + tonic).astype(np.int64)


def read_primers(obs: np.ndarray, layout: ObservationLayout) -> tuple[np.ndarray, np.ndarray]:
    """The primer tokens visible in observations ``[n, size]``.

    Returns:
        ``tokens [n, max(P, 1)]`` right-aligned and ``lengths [n]`` (at least 1: with no primer
        slot filled, the last token is the primer).
    """
    width = max(layout.primer_context, 1)
    last = obs[:, layout.slices["last_token"]].argmax(axis=1)
    tokens = np.zeros((len(obs), width), dtype=np.int64)
    lengths = np.ones(len(obs), dtype=np.int64)
    tokens[:, -1] = last
    if layout.primer_context:
        slots = obs[:, layout.slices["primer"]].reshape(
            len(obs), layout.primer_context, NUM_CLASSES
        )
        present = slots.max(axis=2) > 0
        counts = present.sum(axis=1)
        filled = counts > 0
        tokens[filled] = slots[filled].argmax(axis=2)
        lengths[filled] = counts[filled]
    return tokens, lengths


class RLTunerAgent:
    """Q-network, target network and frozen prior of one run, and the policy they define.

    Args:
        config: the run's configuration (algorithm, temperature, observation layout).
        note_rnn: the pretrained Note RNN all three networks start from.
    """

    def __init__(self, config: TrainConfig, note_rnn: NoteRNN) -> None:
        self.config = config
        self.algo = config.algo
        self.q_network, self.target_q_network, self.reward_rnn = build_networks(note_rnn)
        env = config.env
        self.layout = ObservationLayout(
            env.composition_length, env.primer_context, env.steps_per_bar
        )
        self.predict_rng = np.random.default_rng(config.seed)
        """Draws the samples of ``predict(deterministic=False)``."""

    @property
    def uses_prior(self) -> bool:
        """Whether the policy needs the prior's log-probabilities (G-learning)."""
        return self.algo == "g"

    def initial_state(self, n: int, with_prior: bool | None = None) -> AgentState:
        """Zero recurrent state for ``n`` compositions.

        ``with_prior`` (default: G-learning) adds the prior's ``(h, c)``: :meth:`step` runs the
        prior itself when it is not given the env's ``prior_log_probs`` (as in :meth:`predict`).
        """
        state = self.q_network.initial_state(n)
        if self.uses_prior if with_prior is None else with_prior:
            state = state + self.reward_rnn.initial_state(n)
        return tuple(tensor.detach().clone() for tensor in state)

    @torch.no_grad()
    def step(
        self,
        obs: np.ndarray,
        state: AgentState,
        episode_start: np.ndarray,
        prior_log_probs: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, AgentState]:
        """Consume one observation per composition; return the policy's logits and the new state.

        Args:
            obs: ``float [n, size]`` observations.
            state: the state after the previous observation of each composition.
            episode_start: ``bool [n]``: compositions whose observation is the first of an
                episode; their state is zeroed (a ``1 - episode_start`` mask) and primed.
            prior_log_probs: ``float [n, 38]``: the env's ``info["prior_log_probs"]`` for
                ``obs`` (G-learning's policy adds them). When training, the env gives them, so
                the prior never runs twice; ``None`` (``predict``) runs the agent's own copy,
                whose ``(h, c)`` then follow the Q-network's in ``state``.

        Returns:
            ``policy logits [n, 38]`` (see :func:`~agents.rl_tuner.targets.policy_scores`) and the
            state after ``obs``.
        """
        with single_threaded():
            episode_start = np.asarray(episode_start, dtype=bool)
            keep = torch.from_numpy(~episode_start).to(state[0].dtype)[None, :, None]
            state = tuple(tensor * keep for tensor in state)
            tokens = torch.from_numpy(obs[:, self.layout.slices["last_token"]].argmax(axis=1))
            if episode_start.any() and self.layout.primer_context > 1:
                state = self._prime(obs, state, episode_start)
            # The networks read the tokens in the reference key and score its tokens.
            table = torch.from_numpy(READING_TABLES[read_keys(obs, self.layout)])
            read = table.gather(1, tokens[:, None])
            logits, q_state = self.q_network(read, state[:2])
            scores, new_state = logits[:, 0].gather(1, table), q_state
            if self.uses_prior and prior_log_probs is not None:
                prior_log_probs = torch.as_tensor(np.asarray(prior_log_probs), dtype=scores.dtype)
            elif self.uses_prior:
                prior_logits, prior_state = self.reward_rnn(read, state[2:])
                prior_log_probs = torch.log_softmax(prior_logits[:, 0], dim=-1).gather(1, table)
                new_state = q_state + prior_state
            return policy_scores(self.algo, scores, prior_log_probs), new_state

    def _prime(self, obs: np.ndarray, state: AgentState, episode_start: np.ndarray) -> AgentState:
        """Run the starting rows over their primer but its last token (fed by :meth:`step`)."""
        primers, lengths = read_primers(obs[episode_start], self.layout)
        tables = READING_TABLES[read_keys(obs[episode_start], self.layout)]
        rows = np.flatnonzero(episode_start)
        state = tuple(tensor.clone() for tensor in state)
        width = primers.shape[1]
        for length in np.unique(lengths):
            if length < 2:
                continue
            group = lengths == length
            prefix = primers[group, width - length : width - 1]
            read = torch.from_numpy(np.take_along_axis(tables[group], prefix, axis=1))
            index = torch.from_numpy(rows[group])
            _, (h, c) = self.q_network(read)
            state[0][:, index], state[1][:, index] = h, c
            if len(state) > 2:  # the prior's state too (it runs in ``step``)
                _, (h, c) = self.reward_rnn(read)
                state[2][:, index], state[3][:, index] = h, c
        return state

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Stable-Baselines3's recurrent ``predict`` protocol.

        Args:
            observation: ``[n, size]`` or a single ``[size]`` observation.
            state: the state returned by the previous call, or ``None`` at the start (then every
                composition is treated as starting an episode).
            episode_start: ``bool [n]``: True where the observation is the first of an episode
                (e.g. the previous step's ``done``); those states are reset and primed.
            deterministic: greedy (argmax of the policy logits) instead of sampling from their
                softmax at the config's temperature.

        Returns:
            ``actions`` (``[n]``, or a 0-d array for a single observation) and the new state, a
            tuple of numpy arrays ``[num_layers, n, hidden_size]``.
        """
        single = np.ndim(observation) == 1
        scores, tensors = self.step(*self._inputs(observation, state, episode_start))
        logits = scores.numpy()
        if deterministic:
            actions = logits.argmax(axis=1).astype(np.int64)
        else:
            actions = sample_tokens(logits, self.predict_rng, self.config.temperature)
        new_state = tuple(tensor.numpy().copy() for tensor in tensors)
        return (actions[0] if single else actions), new_state

    def action_log_probs(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
    ) -> np.ndarray:
        """``log pi(. | s)``, ``float64 [n, 38]``: the distribution ``predict(...,
        deterministic=False)`` samples from with the same arguments.

        That is ``log_softmax(logits / temperature)`` of the policy logits (Q or Psi: the
        network's outputs; G: ``G + log p``), at the config's temperature, as
        :func:`~melody_env.sampling.sample_tokens` draws. Nothing is sampled and no state is
        returned: call :meth:`predict` with the same ``state`` to act.
        """
        scores, _ = self.step(*self._inputs(observation, state, episode_start))
        scaled = scores.to(torch.float64) / self.config.temperature
        return torch.log_softmax(scaled, dim=-1).numpy()

    def _inputs(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None,
        episode_start: np.ndarray | None,
    ) -> tuple[np.ndarray, AgentState, np.ndarray]:
        """Observations ``float32 [n, size]``, the state tensors and the episode starts of
        :meth:`predict`'s arguments (``state=None``: every composition starts)."""
        obs = self.layout.as_batch(observation, np.float32)
        n = len(obs)
        if state is None:
            return obs, self.initial_state(n), np.ones(n, dtype=bool)
        tensors = tuple(torch.as_tensor(np.asarray(array, dtype=np.float32)) for array in state)
        starts = (
            np.zeros(n, dtype=bool)
            if episode_start is None
            else np.asarray(episode_start, dtype=bool).reshape(n)
        )
        return obs, tensors, starts

    def named_tensors(self) -> dict[str, torch.Tensor]:
        """Weights of the three networks, prefixed by network name."""
        tensors = {}
        for prefix, model in (
            ("q_network", self.q_network),
            ("target_q_network", self.target_q_network),
            ("reward_rnn", self.reward_rnn),
        ):
            for name, tensor in model.state_dict().items():
                tensors[f"{prefix}.{name}"] = tensor.detach().cpu().contiguous()
        return tensors

    def load_named_tensors(self, tensors: dict[str, torch.Tensor], source: str = "tensors") -> None:
        """Inverse of :meth:`named_tensors` (strict: every tensor must be present).

        Raises:
            ValueError: a network's tensors are missing, unexpected or of another shape; the
                message names ``source`` (e.g. the checkpoint file), expected and found.
        """
        for prefix, model in (
            ("q_network", self.q_network),
            ("target_q_network", self.target_q_network),
            ("reward_rnn", self.reward_rnn),
        ):
            own = {
                name[len(prefix) + 1 :]: tensor
                for name, tensor in tensors.items()
                if name.startswith(prefix + ".")
            }
            check_tensors(model, own, f"{source} ({prefix}.*)")
            model.load_state_dict(own, strict=True)
