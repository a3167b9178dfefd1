"""Configuration of one baseline run (an SB3 algorithm on the melody env).

>>> config = BaselineConfig(algo="sb3-ppo", total_steps=4096, hyperparams={"gamma": 0.8})
>>> config.algorithm_kwargs()["gamma"], config.algorithm_kwargs()["n_steps"]
(0.8, 32)
>>> BaselineConfig.from_dict({"key": "G major", "reward_scaler": 1.0}).env.key  # older summaries
'G major'
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from agents.baselines.algorithms import ALGORITHMS, get_algorithm
from agents.overrides import check_stored_env, config_from_dict, nest_fields
from melody_env.envs.env_config import EnvConfig

FORMER_ENV_FIELDS = ("key", "reward_scaler", "reward_rnn")
"""The env fields a :class:`BaselineConfig` held at its top level before
:attr:`BaselineConfig.env`; :meth:`BaselineConfig.from_dict` moves them into ``env``."""


@dataclass(frozen=True)
class BaselineConfig:
    """Everything that defines one baseline run; stored in its ``summary.json``."""

    algo: str = "sb3-ppo"
    """One of :data:`agents.baselines.algorithms.ALGORITHMS`."""
    total_steps: int = 200_000
    """Training env transitions (one token placed in one composition), as ``melody-rl train``
    counts them. On-policy methods collect whole rollouts, so they may end a little past it."""
    seed: int = 0
    """Seeds the model, the env's primers and the evaluation."""
    num_envs: int = 64
    """Compositions composed at once by the batched env."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """The task of training and evaluation: the env's arguments (:class:`melody_env.EnvConfig`:
    by default C major, the paper's ``s * r_MT + log p`` with ``reward_scaler = s = 1 / c = 2``,
    the shipped Note RNN; ``env.reward_rnn`` a ``.safetensors`` path or ``None``)."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """Overrides of the algorithm's defaults (SB3 keyword arguments)."""
    eval_compositions: int = 1000
    """Compositions sampled by the evaluation suite for the summary (0: no evaluation)."""
    note_rnn_column: bool = True
    """Add the untuned Note RNN, evaluated on the same primers, to ``summary.md``."""
    num_samples: int = 8
    """MIDI samples written to ``samples/``."""
    torch_threads: int = 1
    """Torch intra-op threads."""
    progress_bar: bool = False
    """Show a progress bar of the training steps with an ETA (tqdm, on stderr;
    ``melody-rl baseline`` shows it unless ``--no-progress``)."""

    def __post_init__(self) -> None:
        get_algorithm(self.algo)
        check_stored_env(self.env, "summary.json")
        for name, minimum in (
            ("total_steps", 1),
            ("num_envs", 1),
            ("eval_compositions", 0),
            ("num_samples", 0),
            ("torch_threads", 1),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if not self.env.reward_scaler > 0:
            raise ValueError(f"env.reward_scaler must be > 0, got {self.env.reward_scaler!r}")

    def algorithm_kwargs(self) -> dict[str, Any]:
        """The algorithm's defaults with :attr:`hyperparams` applied (``policy_kwargs`` merged).

        A deep copy: SB3 constructors edit ``policy_kwargs`` in place (A2C adds its optimizer),
        which must not leak into the shared defaults.
        """
        kwargs = copy.deepcopy(ALGORITHMS[self.algo].hyperparams)
        overrides = copy.deepcopy(self.hyperparams)
        if isinstance(overrides.get("policy_kwargs"), dict):
            overrides["policy_kwargs"] = {
                **kwargs.get("policy_kwargs", {}),
                **overrides["policy_kwargs"],
            }
        kwargs.update(overrides)
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the env's by :meth:`melody_env.EnvConfig.to_dict`)."""
        data = asdict(replace(self, env=EnvConfig()))
        data["env"] = self.env.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> BaselineConfig:
        """Rebuild from :meth:`to_dict` (:func:`agents.overrides.config_from_dict`); a config
        stored before :attr:`env` (its :data:`FORMER_ENV_FIELDS` at the top level) loads with
        them in ``env``."""
        return config_from_dict(cls, nest_fields(data, "env", FORMER_ENV_FIELDS), source=source)
