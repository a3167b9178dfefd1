"""RLOO: REINFORCE leave-one-out with an exact per-step KL to the frozen Note RNN.

- :mod:`agents.rloo.model`: :class:`~agents.rloo.model.RLOO`, the library class with
  Stable-Baselines3's shape (``RLOO(env, seed=0).learn(n)``, ``predict``, ``save``, ``load``),
  on any melody env a user makes (exported here);
- :mod:`agents.rloo.envs`: the envs it accepts (an id, one env, a native or sync vector env)
  and what it reads from them;
- :mod:`agents.rloo.config`: :class:`~agents.rloo.config.RLOOConfig`, every setting with its
  reason, stored in every checkpoint;
- :mod:`agents.rloo.policy`: :class:`~agents.rloo.policy.RLOOPolicy`, the Note RNN copy that is
  trained (SB3's ``predict`` and ``action_log_probs``);
- :mod:`agents.rloo.rloo`: the algorithm, top to bottom (rollout, returns, leave-one-out
  advantages, loss, one iteration);
- :mod:`agents.rloo.checkpoint`: safetensors + JSON checkpoints, bit-exact resume;
- :mod:`agents.rloo.run`: a run in a folder (lock, graceful stop, checkpoints, summary);
- :mod:`agents.rloo.command`: ``melody-rl train --algo rloo`` (the default algorithm).
"""

from __future__ import annotations

from typing import Any

__all__ = ["RLOO"]


def __getattr__(name: str) -> Any:
    # Lazy: ``melody-rl``'s argument parsing imports the config without torch or the env.
    if name == "RLOO":
        from agents.rloo.model import RLOO

        return RLOO
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
