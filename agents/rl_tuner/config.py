"""Configuration of the RL Tuner agent: one dataclass per concern, presets as data.

Every count of "steps" is in **env transitions**: one token placed in one training composition
(``N`` vector envs place ``N`` per vector step), as the original counted single-env steps. The
reset steps of Gymnasium's next-step autoreset and evaluation compositions are not counted.

>>> config = make_config("fast", "g")
>>> config.algo, config.reward_mode, config.gamma, make_config("paper", "g").gamma
('g', 'music_theory_only', 0.9, 0.5)
>>> make_config("paper", "q").batch_size, make_config("paper", "q").transitions_per_composition
(32, 1)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from agents.overrides import check_stored_env
from melody_env.envs.env_config import EnvConfig

ALGORITHMS = ("q", "psi", "g", "pure_rl")
"""``q``: Q-learning on ``s * r_MT + log p``; ``psi``: Psi-learning (soft/log-sum-exp backup) on
the same reward; ``g``: G-learning on ``s * r_MT`` with the prior in the backup; ``pure_rl``: the
paper's "RL only" baseline, Q-learning on ``s * r_MT`` alone."""
PRESETS = ("fast", "paper")
"""Names of the presets of :func:`make_config`."""
EXPLORATION_MODES = ("egreedy", "boltzmann")
LOSSES = ("huber", "mse")

MAX_COUNT = 10**12
"""Upper bound of step counts (``total_steps``, ``eval_every``, ...): far beyond any run."""
UPPER_BOUNDS = {
    "num_envs": 65_536,
    "eval_num_envs": 65_536,
    "batch_size": 65_536,
    "eval_compositions": 10_000_000,
    "summary_compositions": 10_000_000,
    "num_samples": 100_000,
    "torch_threads": 1024,
    "replay_capacity": 100_000_000,
}
"""Largest value of each size: checked before anything is allocated from it (a replay of
10^8 transitions already takes gigabytes)."""


def check_integer(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    """``value`` must be an ``int`` (not a bool) in ``[minimum, maximum]``; else ValueError."""
    maximum = UPPER_BOUNDS.get(name, MAX_COUNT) if maximum is None else maximum
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum:,}], got {value!r}")


def check_real(name: str, value: Any) -> float:
    """``value`` must be a finite real number (not a bool or a string); else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def reward_mode_of(algo: str) -> str:
    """The env's reward mode for ``algo``: G-learning and RL-only see music theory alone (the
    original forced it too); ``q`` and ``psi`` add ``log p`` of the reward RNN.

    >>> reward_mode_of("g"), reward_mode_of("q")
    ('music_theory_only', 'music_theory_all')
    """
    return "music_theory_only" if algo in ("g", "pure_rl") else "music_theory_all"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run; stored in every checkpoint."""

    algo: str = "q"
    """One of :data:`ALGORITHMS`."""
    preset: str = "fast"
    """The preset the other fields came from (informational)."""
    seed: int = 0
    """Seeds exploration, replay sampling, primers (each round of compositions is reset with
    seeds derived from it) and evaluation."""
    total_steps: int = 200_000
    """Training transitions to collect."""
    num_envs: int = 64
    """Compositions composed at once through ``gymnasium.make_vec`` (the paper: 1)."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """The task: the env's arguments (:class:`melody_env.EnvConfig`; its ``reward_mode`` is
    :func:`reward_mode_of` the algorithm in the presets)."""

    gamma: float = 0.9
    """Discount (the paper: 0.5; the original code's default 0.95). See :func:`fast_config`."""
    learning_rate: float = 3e-3
    """Adam step size (the paper: TF's default 1e-3)."""
    final_learning_rate: float | None = None
    """If set, the step size falls linearly from ``learning_rate`` at step 0 to this value at
    ``total_steps``; ``None`` keeps it constant (the paper)."""
    batch_size: int = 32
    """Compositions per gradient step (whole compositions are replayed)."""
    transitions_per_composition: int | None = None
    """Steps of each sampled composition that enter the loss; ``None`` = all of them. The paper's
    batch of 32 transitions is 32 compositions with 1 random step each (uniform over
    transitions, since all compositions have the same length)."""
    train_frequency: int = 32
    """Transitions collected per gradient step (the paper: 5)."""
    learning_starts: int = 2048
    """Transitions collected before the first gradient step (the paper: 32)."""
    target_network_update_rate: float = 0.05
    """``eta`` of the soft target update ``theta- <- (1 - eta) theta- + eta theta`` after each
    gradient step (the paper: 0.01)."""
    replay_capacity: int = 100_000
    """Replay size in transitions; it holds ``replay_capacity // composition_length`` whole
    compositions (the paper: 100,000 transitions = 3,125 compositions)."""
    loss: str = "huber"
    """TD loss: ``"huber"`` (smooth L1, delta 1) or ``"mse"`` (the original)."""
    max_grad_norm: float = 5.0
    """Global gradient-norm clip (the original clipped each tensor to norm 5 separately)."""
    double_dqn: bool = True
    """Double DQN: the online network picks ``argmax a'``, the target network evaluates it. Only
    for ``q`` and ``pure_rl``; the log-sum-exp backups of ``psi`` and ``g`` have no argmax, so
    it is ignored there."""

    exploration: str = "boltzmann"
    """``"egreedy"`` (the paper) or ``"boltzmann"`` (sample from softmax(scores / temperature))."""
    start_epsilon: float = 1.0
    """Epsilon at the first training transition."""
    end_epsilon: float = 0.1
    """Epsilon after ``exploration_steps`` (the paper: 0.1)."""
    exploration_steps: int = 100_000
    """Training transitions over which epsilon falls linearly (the paper: 500,000 of 1M);
    epsilon-greedy only."""
    temperature: float = 1.0
    """Softmax temperature of Boltzmann exploration and of sampled evaluation."""

    eval_every: int = 50_000
    """Evaluate every this many transitions (and at step 0); 0 switches it off."""
    eval_compositions: int = 256
    """Compositions per periodic evaluation."""
    eval_num_envs: int = 128
    """Vector envs used to compose the evaluation and summary compositions."""
    checkpoint_every: int = 50_000
    """Checkpoint every this many transitions (at the end of a round of compositions); 0 = only
    at the end."""
    summary_compositions: int = 1000
    """Compositions sampled for ``summary.json`` at the end."""
    num_samples: int = 16
    """MIDI samples written to ``samples/`` at the end."""
    torch_threads: int = 1
    """Torch intra-op threads for the gradient steps (acting always uses one)."""
    progress_bar: bool = True
    """Show a tqdm progress bar."""

    def __post_init__(self) -> None:
        choices = {
            "algo": ALGORITHMS,
            "preset": PRESETS,
            "exploration": EXPLORATION_MODES,
            "loss": LOSSES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}"
                )
        positive = (
            "num_envs",
            "batch_size",
            "train_frequency",
            "eval_compositions",
            "eval_num_envs",
            "torch_threads",
        )
        non_negative = (
            "total_steps",
            "learning_starts",
            "exploration_steps",
            "eval_every",
            "checkpoint_every",
            "summary_compositions",
            "num_samples",
        )
        for name in positive + non_negative:
            check_integer(name, getattr(self, name), 1 if name in positive else 0)
        check_integer("seed", self.seed, 0, 2**63 - 1)
        check_integer("replay_capacity", self.replay_capacity, 1)
        check_stored_env(self.env, "checkpoints")
        for name in (
            "gamma",
            "target_network_update_rate",
            "start_epsilon",
            "end_epsilon",
            "learning_rate",
            "max_grad_norm",
            "temperature",
        ):
            check_real(name, getattr(self, name))
        if self.final_learning_rate is not None:
            check_real("final_learning_rate", self.final_learning_rate)
        if self.transitions_per_composition is not None:
            check_integer("transitions_per_composition", self.transitions_per_composition, 1)
        for name in ("double_dqn", "progress_bar"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.replay_capacity < self.env.composition_length:
            raise ValueError(
                f"replay_capacity ({self.replay_capacity} transitions) must hold at least one "
                f"composition of {self.env.composition_length} steps"
            )
        tpc = self.transitions_per_composition
        if tpc is not None and not 1 <= tpc <= self.env.composition_length:
            raise ValueError(
                f"transitions_per_composition must be None or in [1, "
                f"{self.env.composition_length}], got {tpc!r}"
            )
        for name in ("gamma", "target_network_update_rate", "start_epsilon", "end_epsilon"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if self.final_learning_rate is not None and not self.final_learning_rate > 0:
            raise ValueError(
                f"final_learning_rate must be None or > 0, got {self.final_learning_rate!r}"
            )
        for name in ("learning_rate", "max_grad_norm", "temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    @property
    def reward_mode(self) -> str:
        """The env's reward mode (the presets': :func:`reward_mode_of` the algorithm)."""
        return self.env.reward_mode

    @property
    def replay_compositions(self) -> int:
        """Replay capacity in whole compositions."""
        return self.replay_capacity // self.env.composition_length

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the env's by :meth:`melody_env.EnvConfig.to_dict`)."""
        data = asdict(replace(self, env=EnvConfig()))
        data["env"] = self.env.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict` output (:func:`agents.overrides.config_from_dict`:
        unknown fields are refused).

        Configs stored before the env's reward mode was part of ``env`` (it followed the
        algorithm) get the algorithm's; a top-level ``reward_rnn`` (before it was ``env``'s)
        moves into ``env``.
        """
        from agents.overrides import config_from_dict, nest_fields

        data = nest_fields(data, "env", ["reward_rnn"])
        if isinstance(data, dict):  # anything else: config_from_dict says what is wrong
            env = data.get("env", {})
            if isinstance(env, dict) and "reward_mode" not in env:
                algo = data.get("algo", cls.algo)
                data = {**data, "env": {**env, "reward_mode": reward_mode_of(algo)}}
        return config_from_dict(cls, data)


def paper_config(algo: str = "q") -> TrainConfig:
    """The paper's setting (Jaques et al. 2017 and the original code, spec §3.3), done right:
    one composition at a time, 1M steps with 500k of epsilon-greedy exploration, gamma 0.5,
    c = 0.5, Adam 1e-3, a batch of 32 transitions (32 compositions x 1 random step) every 5
    steps, eta 0.01, 100k-transition replay, MSE loss, no Double DQN."""
    return TrainConfig(
        algo=algo,
        preset="paper",
        env=EnvConfig(reward_mode=reward_mode_of(algo)),
        total_steps=1_000_000,
        num_envs=1,
        gamma=0.5,
        learning_rate=1e-3,
        batch_size=32,
        transitions_per_composition=1,
        train_frequency=5,
        learning_starts=32,
        target_network_update_rate=0.01,
        replay_capacity=100_000,
        loss="mse",
        max_grad_norm=5.0,
        double_dqn=False,
        exploration="egreedy",
        start_epsilon=1.0,
        end_epsilon=0.1,
        exploration_steps=500_000,
        eval_every=100_000,
        eval_compositions=100,
        eval_num_envs=100,
        checkpoint_every=50_000,
    )


def fast_config(algo: str = "q") -> TrainConfig:
    """The default (``TrainConfig``'s defaults): the paper's quality in minutes on 2 CPU cores.

    64 compositions at once; a gradient step every 32 transitions on 32 whole compositions (all
    their steps in the loss: 1,024 transitions); Adam 3e-3; eta 0.05; Huber loss; Double DQN;
    Boltzmann exploration at temperature 1 (the policy that is evaluated, so no epsilon
    schedule and no off-policy gap: epsilon-greedy first learnt to hold notes too long, then
    unlearnt it); 200k steps (6,200 gradient steps).

    gamma is 0.9, not the paper's 0.5: the music-theory optimum needs planning over the
    8-step motif window (with 0.5 the agent holds its opening tonic for six steps, worth
    +1.5 each, and loses the motif reward of steps 7-12, 0.5^7 away; measured: 26-67% of notes
    in motif over 8 runs, against 77% with 0.9). ``--set gamma=0.5`` restores the paper's objective.
    """
    return TrainConfig(algo=algo, preset="fast", env=EnvConfig(reward_mode=reward_mode_of(algo)))


_PRESET_BUILDERS = {"fast": fast_config, "paper": paper_config}


def make_config(preset: str = "fast", algo: str = "q", **overrides: Any) -> TrainConfig:
    """A preset for ``algo`` with some fields replaced.

    Raises:
        ValueError: an unknown preset, algorithm or field, or an invalid value.
    """
    if preset not in _PRESET_BUILDERS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algo {algo!r}; choose one of {', '.join(ALGORITHMS)}")
    config = _PRESET_BUILDERS[preset](algo)
    env_overrides = overrides.pop("env", None)
    if isinstance(env_overrides, dict):
        overrides["env"] = config.env.replace(**env_overrides)
    elif env_overrides is not None:
        overrides["env"] = env_overrides
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}; known: {sorted(known)}")
    return dataclasses.replace(config, **overrides)
