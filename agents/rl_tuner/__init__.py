"""The RL Tuner agent: a recurrent DQN that tunes the Note RNN with RL (Jaques et al. 2017).

Modules, in reading order: :mod:`~agents.rl_tuner.config` (presets), :mod:`~.networks` (the
three Note RNN copies), :mod:`~.targets` (the four algorithms' TD targets), :mod:`~.replay`
(whole-composition replay), :mod:`~.agent` (acting and ``predict``), :mod:`~.exploration`,
:mod:`~.rollout` (acting in a vector env), :mod:`~.learner` (a gradient step),
:mod:`~.trainer` (the loop), :mod:`~.checkpoint`, :mod:`~.summary` (music-theory statistics).
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
