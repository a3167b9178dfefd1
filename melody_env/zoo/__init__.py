"""Hyperparameters of the melody env for RL Baselines3 Zoo (``rl_zoo3``).

The zoo reads an algorithm's hyperparameters from ``rl_zoo3/hyperparams/ALGO.yml`` inside its
own installed package, which cannot list an env of another package. So we ship one YAML per
algorithm here and point the zoo at it with ``--conf-file``; ``python -m melody_env.zoo ALGO``
prints its path::

    python -m rl_zoo3.train --gym-packages melody_env --env melody_env/MelodyComposition-v0 \\
        --algo ppo --conf-file "$(python -m melody_env.zoo ppo)"

(``--gym-packages melody_env`` imports the package, which registers the env id.) The values are
those of ``melody-rl baseline`` (``agents/baselines/algorithms.py``), with ``n_steps`` /
``train_freq`` rescaled for the zoo's 8 single envs in a ``DummyVecEnv``.

>>> sorted(ALGORITHMS)
['a2c', 'dqn', 'ppo', 'ppo_lstm', 'qrdqn']
>>> conf_file("ppo").name
'ppo.yml'
"""

from __future__ import annotations

from pathlib import Path

HYPERPARAMS_DIR = Path(__file__).parent / "hyperparams"
"""Where the YAML files are (package data)."""
ALGORITHMS = ("a2c", "dqn", "ppo", "ppo_lstm", "qrdqn")
"""The zoo's ``--algo`` names we ship hyperparameters for."""


def conf_file(algo: str) -> Path:
    """The ``--conf-file`` of the zoo's ``algo`` (``"ppo"``, ``"dqn"``, ...).

    Raises:
        ValueError: no hyperparameters shipped for ``algo``.
    """
    if algo not in ALGORITHMS:
        raise ValueError(f"no zoo hyperparameters for {algo!r}; shipped: {', '.join(ALGORITHMS)}")
    return HYPERPARAMS_DIR / f"{algo}.yml"
