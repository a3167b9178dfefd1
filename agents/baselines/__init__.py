"""Other RL algorithms on the melody env: Stable-Baselines3 baselines and the benchmark.

- :mod:`~agents.baselines.algorithms`: the SB3 algorithms and their defaults for this env.
- :mod:`~agents.baselines.config`: :class:`BaselineConfig`, one run.
- :mod:`~agents.baselines.train`: :func:`train_baseline` (``melody-rl baseline``).
- :mod:`~agents.baselines.masking`, :mod:`~agents.baselines.callbacks`,
  :mod:`~agents.baselines.summary`: in-key masks for MaskablePPO, learning curves, summaries.
- :mod:`~agents.baselines.benchmark`: algorithms x seeds at one budget (``melody-rl benchmark``).

Stable-Baselines3 and sb3-contrib are the ``sb3`` extra; only the modules that need them import
them.
"""

from agents.baselines.algorithms import ALGORITHMS, AlgorithmSpec
from agents.baselines.config import BaselineConfig

__all__ = ["ALGORITHMS", "AlgorithmSpec", "BaselineConfig"]
