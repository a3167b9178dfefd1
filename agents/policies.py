"""``--checkpoint`` arguments as policies, with the agents' own checkpoints added.

The env package's loader (:func:`melody_env.evaluation.policies.load_policy`) knows ``random``,
``note-rnn[:PATH]`` and the Stable-Baselines3 kinds (``sb3-dqn:PATH.zip``, ...). This module adds
``agent:PATH``, a run folder or checkpoint folder of ``melody-rl train`` (the RL Tuner's Q, Psi, G
or pure-RL agent, or RLOO's policy, told by the checkpoint's ``format``), which is also the kind
of a bare path without a ``.safetensors`` or ``.zip`` suffix. The env package imports nothing
from here: the agents hand it policies.

>>> parse_checkpoint("runs/seed0"), parse_checkpoint("sb3-ppo:a.zip")
(('agent', 'runs/seed0'), ('sb3-ppo', 'a.zip'))
"""

from __future__ import annotations

import os
from typing import Any

from melody_env.evaluation import policies as env_policies

AGENT_KIND = "agent"
"""The ``--checkpoint`` prefix of the agents' run and checkpoint folders."""


def load_agent(path: str | os.PathLike) -> Any:
    """The trained policy of a ``melody-rl train`` run folder or checkpoint folder (an RL Tuner
    agent or an RLOO policy; weights only, no optimiser)."""
    from agents.rl_tuner.checkpoint import load_agent as load_run  # both formats

    return load_run(path)


LOADERS: dict[str, Any] = {**env_policies.LOADERS, AGENT_KIND: load_agent}
"""The env package's loaders and ``agent``."""


def parse_checkpoint(spec: str) -> tuple[str, str]:
    """``(kind, path)`` of a ``--checkpoint`` argument; a bare path without a known suffix is an
    ``agent`` run."""
    return env_policies.parse_checkpoint(spec, LOADERS, default_kind=AGENT_KIND)


def load_policy(spec: str) -> Any:
    """A policy with ``predict`` from a ``--checkpoint`` argument (any kind of
    :data:`LOADERS`)."""
    return env_policies.load_policy(spec, LOADERS, default_kind=AGENT_KIND)


def policy_name(spec: str) -> str:
    """A short column name for a ``--checkpoint`` argument (the file or folder's name)."""
    return env_policies.policy_name(spec, LOADERS, default_kind=AGENT_KIND)
