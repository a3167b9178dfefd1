"""The Stable-Baselines3 algorithms we benchmark, and their default hyperparameters on the env.

The task shapes every default: an episode is one composition of 32 steps that always ends
(no truncation), the reward of a step is ``2 * r_MT + log p`` (about -4 to +20, with a -100
penalty for an excessively repeated note), the observation is a 1,620-wide one-hot vector and
there are 38 actions. So:

- ``gamma`` is short: 0.5 for the value-based methods, the paper's setting (and the RL Tuner
  agent's); 0.9 for the policy-gradient methods, whose GAE needs a longer horizon to credit the
  end-of-composition rewards (tonic, unique extremes) to the notes before them.
- ``num_envs = 64`` compositions are composed at once by the batched env
  (:class:`agents.sb3_vec_env.MelodySB3VecEnv`), so ``n_steps = 32`` gives on-policy methods a
  rollout of 64 whole compositions (2,048 transitions) per update.
- Networks are two hidden layers of 256 (the LSTM of RecurrentPPO has 128 units and no critic
  LSTM: the observation already holds the whole composition so far, and the full-size recurrent
  model runs at a few dozen steps per second on a CPU).
- Exploration of DQN and QR-DQN falls linearly from 1.0 to 0.05 over the first half of the run
  (the paper: 1.0 to 0.1 over half). Their "sampled" evaluation is epsilon-greedy at 0.05.

Every value can be overridden with ``melody-rl baseline --set NAME=VALUE``. The same defaults are
shipped for RL Baselines3 Zoo in ``melody_env/zoo/hyperparams/*.yml``; a test keeps both equal.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

_NET = {"net_arch": [256, 256]}


@dataclass(frozen=True)
class AlgorithmSpec:
    """One algorithm: where its class lives, its policy and its defaults."""

    module: str
    """Module holding the class (``stable_baselines3`` or ``sb3_contrib``)."""
    class_name: str
    """The SB3 class, e.g. ``"PPO"``."""
    policy: str
    """The policy name passed to the class."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the class (SB3 names), the defaults for this env."""
    zoo_name: str | None = None
    """The algorithm's name in RL Baselines3 Zoo's ``--algo`` (``None``: not in the zoo)."""
    masked: bool = False
    """Trains with the in-key action mask (:mod:`melody_env.wrappers`)."""

    def load_class(self) -> type:
        """The algorithm class (imports Stable-Baselines3 or sb3-contrib)."""
        try:
            module = importlib.import_module(self.module)
        except ImportError as error:  # pragma: no cover - depends on the installed extras
            raise ImportError(
                f"{self.class_name} needs {self.module}: pip install 'melody-rl[sb3]'"
            ) from error
        return getattr(module, self.class_name)


_DQN_COMMON: dict[str, Any] = {
    "learning_rate": 5e-4,
    "buffer_size": 50_000,  # the paper: 100k; the benchmark's 50k x 2 x 1,620 int8 is 162 MB
    "learning_starts": 2048,  # 32 compositions of 64 envs
    "batch_size": 128,
    "gamma": 0.5,  # the paper
    "train_freq": 1,  # per vector step, i.e. every 64 transitions ...
    "gradient_steps": 4,  # ... 4 gradient steps: 8 sampled transitions per new one
    "tau": 0.05,  # soft target update (the RL Tuner agent's eta) ...
    "target_update_interval": 64,  # ... every vector step
    "exploration_fraction": 0.5,
    "exploration_initial_eps": 1.0,
    "exploration_final_eps": 0.05,
    "max_grad_norm": 5.0,  # the paper's clip
}
_PPO_COMMON: dict[str, Any] = {
    "learning_rate": 3e-4,
    "n_steps": 32,  # one whole composition per env per rollout
    "batch_size": 256,
    "n_epochs": 4,
    "gamma": 0.9,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.01,  # 38 actions: keep sampling a little spread out
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
}

ALGORITHMS: dict[str, AlgorithmSpec] = {
    "sb3-dqn": AlgorithmSpec(
        "stable_baselines3", "DQN", "MlpPolicy", {**_DQN_COMMON, "policy_kwargs": _NET}, "dqn"
    ),
    "sb3-qrdqn": AlgorithmSpec(
        "sb3_contrib",
        "QRDQN",
        "MlpPolicy",
        {**_DQN_COMMON, "policy_kwargs": {**_NET, "n_quantiles": 25}},
        "qrdqn",
    ),
    "sb3-ppo": AlgorithmSpec(
        "stable_baselines3", "PPO", "MlpPolicy", {**_PPO_COMMON, "policy_kwargs": _NET}, "ppo"
    ),
    "sb3-a2c": AlgorithmSpec(
        "stable_baselines3",
        "A2C",
        "MlpPolicy",
        {
            "learning_rate": 7e-4,
            "n_steps": 8,  # 512 transitions per update with 64 envs
            "gamma": 0.9,
            "gae_lambda": 0.95,
            "ent_coef": 0.01,
            "vf_coef": 0.5,
            "max_grad_norm": 0.5,
            "policy_kwargs": _NET,
        },
        "a2c",
    ),
    "sb3-recurrentppo": AlgorithmSpec(
        "sb3_contrib",
        "RecurrentPPO",
        "MlpLstmPolicy",
        {
            **_PPO_COMMON,
            "batch_size": 512,
            "policy_kwargs": {
                "net_arch": [128],
                "lstm_hidden_size": 128,
                "enable_critic_lstm": False,
                "shared_lstm": False,
            },
        },
        "ppo_lstm",
    ),
    "sb3-maskableppo": AlgorithmSpec(
        "sb3_contrib",
        "MaskablePPO",
        "MlpPolicy",
        {**_PPO_COMMON, "policy_kwargs": _NET},
        None,
        masked=True,
    ),
}
"""``--algo`` name -> :class:`AlgorithmSpec` (names as the evaluation suite's loader prefixes)."""


def get_algorithm(name: str) -> AlgorithmSpec:
    """The spec of ``name``, or a ``ValueError`` listing the known names."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]
