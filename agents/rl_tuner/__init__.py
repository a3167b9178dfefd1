"""The RL Tuner agent: a recurrent DQN that tunes the Note RNN with RL (Jaques et al. 2017).

Use it through :class:`agents.RLTuner` (``RLTuner("q", env).learn(n)``). Modules, in reading
order: :mod:`~agents.rl_tuner.dqn` (the algorithm top to bottom: acting, exploration, learning,
the TD loss), and beside it :mod:`~.config` (presets), :mod:`~.networks` (the three Note RNN
copies), :mod:`~.targets` (the four algorithms' TD targets), :mod:`~.replay` (whole-composition
replay), :mod:`~.agent` (acting and ``predict``), :mod:`~.rollout` (acting in a vector env),
:mod:`~.trainer` (rounds, evaluation, logging, checkpoints), :mod:`~.checkpoint`,
:mod:`~.summary` (statistics in the evaluation suite's names).
"""

from agents.rl_tuner.agent import RLTunerAgent
from agents.rl_tuner.config import ALGORITHMS, PRESETS, EnvConfig, TrainConfig, make_config
from agents.rl_tuner.trainer import Trainer, train

__all__ = [
    "ALGORITHMS",
    "PRESETS",
    "EnvConfig",
    "RLTunerAgent",
    "TrainConfig",
    "Trainer",
    "make_config",
    "train",
]
