"""Policies to evaluate, all with SB3's ``predict``, and a loader registry for checkpoints.

A policy is any object with ``predict(observation, state=None, episode_start=None,
deterministic=False) -> (action, state)`` (Stable-Baselines3's protocol; our recurrent agent
speaks it too). Three are defined here:

- :class:`NoteRNNPolicy`: the untuned Note RNN, each token sampled from its softmax at
  temperature 1 (the paper's "Note RNN" column);
- :class:`RandomPolicy`: uniform over the 38 tokens;
- :class:`MaskedPolicy`: a trained sb3-contrib ``MaskablePPO`` that predicts with the in-key
  mask of each observation (:func:`~melody_env.wrappers.in_key_action_mask`), as it was trained.

Both also have a fast path for :func:`~melody_env.evaluation.evaluate`: they sample from the env's
``prior_log_probs`` directly (``sample_from_prior``), with no observation and no second LSTM.

:func:`load_policy` turns a ``--checkpoint`` argument into a policy: ``random``, ``note-rnn``,
``note-rnn:PATH.safetensors``, ``sb3-dqn:PATH.zip`` (and ``sb3-ppo``, ``sb3-a2c``, ``sb3-qrdqn``,
``sb3-recurrentppo``, ``sb3-maskableppo``), or a bare path recognised by its suffix
(``.safetensors`` a Note RNN, ``.zip`` an SB3 model). The env package knows no agent: a package
of agents adds its own kinds by passing ``loaders`` (and a ``default_kind`` for bare paths), as
:mod:`agents.policies` does for the RL Tuner and RLOO checkpoints.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melody_env.envs.melody_composition import DEFAULT_COMPOSITION_LENGTH, DEFAULT_PRIMER_CONTEXT
from melody_env.envs.observation import ObservationLayout
from melody_env.models.note_rnn import NoteRNN
from melody_env.music.encoding import NUM_CLASSES
from melody_env.sampling import sample_tokens
from melody_env.wrappers import in_key_action_mask

UNIFORM_LOG_PROB = -float(np.log(NUM_CLASSES))


def normalize_log_probs(scores: np.ndarray) -> np.ndarray:
    """``scores - logsumexp(scores)`` per row (a log-softmax).

    >>> np.exp(normalize_log_probs(np.array([[0.0, np.log(3.0)]]))).round(2)
    array([[0.25, 0.75]])
    """
    top = scores.max(axis=1, keepdims=True)
    return scores - (top + np.log(np.exp(scores - top).sum(axis=1, keepdims=True)))


def _batch_size(observation: np.ndarray) -> tuple[int, bool]:
    """``(B, batched)`` for an observation of shape ``[B, size]`` or ``[size]``."""
    observation = np.asarray(observation)
    return (observation.shape[0], True) if observation.ndim > 1 else (1, False)


class RandomPolicy:
    """Uniformly random tokens (``deterministic`` changes nothing: there is no best token).

    Args:
        seed: seeds :meth:`predict`.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        batch, batched = _batch_size(observation)
        actions = self.rng.integers(0, NUM_CLASSES, size=batch)
        return (actions if batched else actions[0]), state

    def action_log_probs(self, observation, state=None, episode_start=None) -> np.ndarray:
        """``log pi(. | s)``: ``[B, 38]`` of ``-log 38``."""
        return np.full((_batch_size(observation)[0], NUM_CLASSES), UNIFORM_LOG_PROB)

    def sample_from_prior(
        self, prior_log_probs: np.ndarray, rng: np.random.Generator, deterministic: bool = False
    ) -> np.ndarray:
        """Tokens for a batch whose env prior is ``prior_log_probs [B, 38]`` (ignored here)."""
        return rng.integers(0, NUM_CLASSES, size=len(prior_log_probs))

    def log_probs_from_prior(
        self, prior_log_probs: np.ndarray, deterministic: bool = False
    ) -> np.ndarray:
        """``log pi(. | s) [B, 38]`` given the env prior (uniform here)."""
        return np.full(prior_log_probs.shape, UNIFORM_LOG_PROB)

    def samples_env_prior(self, reward_rnn: NoteRNN) -> bool:
        """Whether :func:`evaluate` may use :meth:`sample_from_prior` (always: it ignores it)."""
        return True

    def __repr__(self) -> str:
        return "RandomPolicy()"


class NoteRNNPolicy:
    """The Note RNN as a policy: sample each next token from its softmax at ``temperature``.

    With ``model=None`` it is the env's own reward RNN: :func:`evaluate` then samples from the
    env's ``prior_log_probs`` (no second LSTM), which is exactly the paper's untuned baseline, and
    :meth:`predict` loads the shipped checkpoint. With a model (or a checkpoint path), that model
    runs on the observations: at an episode start it reads the primer tokens from the observation
    (the last ``primer_context`` of them, from a zero state, as the env primes its reward RNN),
    then one ``last_token`` per step. Its recurrent state is ``(h, c)`` as numpy arrays.

    Args:
        model: a :class:`NoteRNN`, a ``.safetensors`` path, or ``None`` (the env's reward RNN).
        temperature: softmax temperature (1 = the model's own distribution).
        seed: seeds :meth:`predict`'s sampling.
        composition_length, primer_context: the env's, to find the primer in the observation.
    """

    def __init__(
        self,
        model: NoteRNN | str | os.PathLike | None = None,
        temperature: float = 1.0,
        seed: int | None = None,
        composition_length: int = DEFAULT_COMPOSITION_LENGTH,
        primer_context: int = DEFAULT_PRIMER_CONTEXT,
    ) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if model is not None and not isinstance(model, NoteRNN):
            model = NoteRNN.load(model)
        self.model = model
        self.temperature = float(temperature)
        self.rng = np.random.default_rng(seed)
        slices = ObservationLayout(composition_length, primer_context, 1).slices
        self._last_token = slices["last_token"]
        self._primer = slices["primer"]

    # --- fast path: sample from the env's prior.
    def samples_env_prior(self, reward_rnn: NoteRNN) -> bool:
        """Whether the env's ``prior_log_probs`` are this policy's distribution (up to
        temperature): no model of its own, or one with the reward RNN's weights."""
        if self.model is None or self.model is reward_rnn:
            return True
        mine, theirs = self.model.state_dict(), reward_rnn.state_dict()
        return mine.keys() == theirs.keys() and all(
            mine[name].shape == theirs[name].shape and torch.equal(mine[name], theirs[name])
            for name in mine
        )

    def log_probs_from_prior(
        self, prior_log_probs: np.ndarray, deterministic: bool = False
    ) -> np.ndarray:
        """The tempered prior; with ``deterministic``, a point mass on its most likely token."""
        if deterministic:
            best = np.eye(NUM_CLASSES, dtype=bool)[prior_log_probs.argmax(axis=1)]
            return np.where(best, 0.0, -np.inf)
        if self.temperature == 1.0:
            return prior_log_probs  # already a log-softmax
        return normalize_log_probs(prior_log_probs / self.temperature)

    def sample_from_prior(
        self, prior_log_probs: np.ndarray, rng: np.random.Generator, deterministic: bool = False
    ) -> np.ndarray:
        """Tokens sampled from the tempered prior (its argmax with ``deterministic``)."""
        if deterministic:
            return prior_log_probs.argmax(axis=1)
        return sample_tokens(prior_log_probs, rng, self.temperature)

    # --- SB3 protocol.
    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        log_probs, new_state = self._advance(observation, state, episode_start)
        actions = log_probs.argmax(axis=1) if deterministic else sample_tokens(log_probs, self.rng)
        return (actions if np.asarray(observation).ndim > 1 else actions[0]), new_state

    def action_log_probs(self, observation, state=None, episode_start=None) -> np.ndarray:
        """``log pi(. | s)``, ``[B, 38]``, for the same arguments as :meth:`predict`."""
        return self._advance(observation, state, episode_start)[0]

    def _advance(self, observation, state, episode_start):
        if self.model is None:
            self.model = NoteRNN.load()
        obs = np.atleast_2d(np.asarray(observation, dtype=np.float32))
        batch = obs.shape[0]
        starts = (
            np.ones(batch, bool)
            if state is None or episode_start is None
            else np.asarray(episode_start, bool)
        )
        if state is None:
            h, c = self.model.initial_state(batch)
        else:
            h, c = (torch.as_tensor(np.asarray(x, dtype=np.float32)).clone() for x in state)
        last = obs[:, self._last_token].argmax(axis=1)
        log_probs = torch.empty(batch, NUM_CLASSES)
        rows = np.flatnonzero(~starts)
        if len(rows):
            index = torch.from_numpy(rows)
            lp, (h_new, c_new) = self.model.step(
                torch.from_numpy(last[rows]), (h[:, index], c[:, index])
            )
            log_probs[index], h[:, index], c[:, index] = lp, h_new, c_new
        groups: dict[int, list[int]] = {}
        primers = {}
        for row in np.flatnonzero(starts):
            primer = self._read_primer(obs[row], last[row])
            primers[row] = primer
            groups.setdefault(len(primer), []).append(row)
        for group in groups.values():
            index = torch.tensor(group)
            tokens = torch.from_numpy(np.stack([primers[row] for row in group]))
            lp, (h_new, c_new) = self.model.prime(tokens)
            log_probs[index], h[:, index], c[:, index] = lp, h_new, c_new
        scaled = normalize_log_probs(log_probs.numpy().astype(np.float64) / self.temperature)
        return scaled, (h.numpy(), c.numpy())

    def _read_primer(self, obs_row: np.ndarray, last_token: int) -> np.ndarray:
        slots = obs_row[self._primer].reshape(-1, NUM_CLASSES)
        present = slots.max(axis=1) > 0.5
        primer = slots[present].argmax(axis=1)
        return primer.astype(np.int64) if len(primer) else np.array([last_token], np.int64)

    def __repr__(self) -> str:
        source = "env reward RNN" if self.model is None else "own model"
        return f"NoteRNNPolicy({source}, temperature={self.temperature})"


# --- Loader registry -------------------------------------------------------------------------


class MaskedPolicy:
    """A trained ``MaskablePPO`` whose ``predict`` applies the in-key mask of each observation.

    Args:
        model: the ``MaskablePPO`` model.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]:
        masks = in_key_action_mask(observation)
        return self.model.predict(
            observation,
            state=state,
            episode_start=episode_start,
            deterministic=deterministic,
            action_masks=masks,
        )

    def action_log_probs(self, observation, state=None, episode_start=None) -> np.ndarray:
        """``log pi(. | s) [B, 38]`` of the masked distribution (about -1e8 off the mask)."""
        obs = np.atleast_2d(np.asarray(observation, np.float32))
        policy = self.model.policy
        with torch.no_grad():
            obs_tensor = policy.obs_to_tensor(obs)[0]
            distribution = policy.get_distribution(obs_tensor, action_masks=in_key_action_mask(obs))
            logits = distribution.distribution.logits
        return torch.log_softmax(logits, -1).cpu().numpy().astype(np.float64)

    def set_random_seed(self, seed: int) -> None:
        self.model.set_random_seed(seed)

    def save(self, path) -> None:
        self.model.save(path)


SB3_ALGORITHMS = {
    "sb3-dqn": ("stable_baselines3", "DQN"),
    "sb3-ppo": ("stable_baselines3", "PPO"),
    "sb3-a2c": ("stable_baselines3", "A2C"),
    "sb3-qrdqn": ("sb3_contrib", "QRDQN"),
    "sb3-recurrentppo": ("sb3_contrib", "RecurrentPPO"),
    "sb3-maskableppo": ("sb3_contrib", "MaskablePPO"),
}
"""``--checkpoint`` prefix -> (module, class) of a Stable-Baselines3 algorithm."""


def load_sb3(path: str | os.PathLike, algorithm: str | None = None) -> Any:
    """A Stable-Baselines3 (or sb3-contrib) model from its ``.zip``, on the CPU; a
    ``MaskablePPO`` comes as a :class:`MaskedPolicy`, masked to the key as it was trained.

    Nothing in the zip is unpickled (:mod:`melody_env.io.sb3_zip`): every pickled entry of its
    ``data`` is rebuilt from plain text or the zip is refused.

    Args:
        path: the saved model.
        algorithm: a key of :data:`SB3_ALGORITHMS`; ``None`` reads it from the zip's policy
            class.

    Raises:
        ValueError: not an SB3 zip, a model of another algorithm than ``algorithm``, or an
            entry that cannot be loaded without unpickling.
        ImportError: the algorithm's package is not installed (names the extra).
    """
    from melody_env.io.sb3_zip import load_sb3_model

    detected = detect_sb3_algorithm(path, strict=algorithm is None)
    if algorithm is not None and detected is not None and detected != algorithm:
        wanted = SB3_ALGORITHMS.get(algorithm, ("", algorithm))[1]
        raise ValueError(
            f"{path} holds a {SB3_ALGORITHMS[detected][1]} model, not {wanted}; "
            f"load it as {detected}:{path}"
        )
    algorithm = algorithm or detected
    if algorithm not in SB3_ALGORITHMS:
        raise ValueError(
            f"unknown SB3 algorithm {algorithm!r}; choose one of {sorted(SB3_ALGORITHMS)}"
        )
    module_name, class_name = SB3_ALGORITHMS[algorithm]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(
            f"loading a {class_name} model needs {module_name}: pip install 'melody-rl[sb3]'"
        ) from error
    model = load_sb3_model(path, getattr(module, class_name))
    # Sampled unmasked, a MaskablePPO plays notes it never tried in training.
    return MaskedPolicy(model) if algorithm == "sb3-maskableppo" else model


def detect_sb3_algorithm(path: str | os.PathLike, strict: bool = True) -> str | None:
    """Guess the algorithm of an SB3 ``.zip`` from the module of its policy class (read as
    JSON; nothing unpickled). With ``strict=False``, ``None`` where it cannot tell.

    Raises:
        ValueError: not a readable SB3 zip; with ``strict``, also an algorithm it cannot tell.
    """
    from melody_env.io.sb3_zip import read_data

    data = read_data(path)
    policy_class = data.get("policy_class")
    module = str(policy_class.get("__module__", "") if isinstance(policy_class, dict) else "")
    if "dqn" in module and "qrdqn" not in module:
        return "sb3-dqn"
    for key, marker in (
        ("sb3-qrdqn", "qrdqn"),
        ("sb3-recurrentppo", "recurrent"),
        ("sb3-maskableppo", "maskable"),
    ):
        if marker in module:
            return key
    if "n_epochs" in data:
        return "sb3-ppo"
    if "n_steps" in data:
        return "sb3-a2c"
    if not strict:
        return None
    raise ValueError(
        f"cannot tell the SB3 algorithm of {path} (policy module {module!r}); "
        f"name it with a prefix, one of {sorted(SB3_ALGORITHMS)}, e.g. sb3-dqn:{path}"
    )


LOADERS: dict[str, Callable[[str], Any]] = {
    "random": lambda path: RandomPolicy(),
    "note-rnn": lambda path: NoteRNNPolicy(path or None),
    **{prefix: (lambda path, prefix=prefix: load_sb3(path, prefix)) for prefix in SB3_ALGORITHMS},
}
"""``--checkpoint`` prefix -> function of the path (may be empty) returning a policy."""


Loaders = Mapping[str, Callable[[str], Any]]
"""``--checkpoint`` prefix -> function of the path (may be empty) returning a policy."""


def parse_checkpoint(
    spec: str, loaders: Loaders = LOADERS, default_kind: str | None = None
) -> tuple[str, str]:
    """``"sb3-dqn:runs/a.zip"`` -> ``("sb3-dqn", "runs/a.zip")``; a bare path gets its kind from
    its suffix, else ``default_kind``.

    Args:
        spec: ``KIND:PATH``, ``KIND`` (``random``, ``note-rnn``) or a bare path.
        loaders: the kinds known (default: this module's :data:`LOADERS`).
        default_kind: the kind of a bare path without a known suffix; ``None``: refuse it.

    >>> parse_checkpoint("random"), parse_checkpoint("model.safetensors")
    (('random', ''), ('note-rnn', 'model.safetensors'))
    >>> parse_checkpoint("sb3-ppo:a.zip"), parse_checkpoint("run/x", {"mine": print}, "mine")
    (('sb3-ppo', 'a.zip'), ('mine', 'run/x'))
    """
    prefix, separator, rest = spec.partition(":")
    if separator and prefix.lower() in loaders:
        return prefix.lower(), rest
    if spec.lower() in loaders:
        return spec.lower(), ""
    suffix = Path(spec).suffix.lower()
    if suffix == ".safetensors":
        return "note-rnn", spec
    if suffix == ".zip":
        return detect_sb3_algorithm(spec) if Path(spec).is_file() else "sb3-dqn", spec
    if default_kind is None:
        raise ValueError(
            f"cannot tell what kind of policy {spec!r} is; name it KIND:PATH with KIND one of "
            f"{sorted(loaders)}"
        )
    return default_kind, spec


def load_policy(spec: str, loaders: Loaders = LOADERS, default_kind: str | None = None) -> Any:
    """A policy with ``predict`` from a ``--checkpoint`` argument (see the module docstring);
    ``loaders`` and ``default_kind`` as :func:`parse_checkpoint`'s."""
    kind, path = parse_checkpoint(spec, loaders, default_kind)
    if path and not Path(path).exists():
        raise FileNotFoundError(f"checkpoint not found: {path} (from {spec!r})")
    if kind not in ("random", "note-rnn") and not path:
        raise ValueError(f"{spec!r} needs a path, e.g. {kind}:runs/model")
    policy = loaders[kind](path)
    if not hasattr(policy, "predict"):
        raise TypeError(f"the {kind!r} loader gave {policy!r:.80}, which has no predict()")
    return policy


def policy_name(spec: str, loaders: Loaders = LOADERS, default_kind: str | None = None) -> str:
    """A short column name for a ``--checkpoint`` argument: ``random``, ``note_rnn``, or the
    checkpoint file's stem."""
    kind, path = parse_checkpoint(spec, loaders, default_kind)
    if not path:
        return kind.replace("-", "_")
    stem = Path(path).stem if Path(path).suffix else Path(path).name
    return stem or kind
