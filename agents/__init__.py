"""melody-rl's agents: ``RLTuner(algorithm, env).learn(n)`` with Stable-Baselines3's shape.

The RL Tuner's recurrent DQNs live in :mod:`agents.rl_tuner`, RLOO in :mod:`agents.rloo`, the
Stable-Baselines3 baselines in :mod:`agents.baselines` and the ``melody-rl`` commands in
:mod:`agents.commands`.
"""


def __getattr__(name: str):
    # Lazy: ``import agents.cli`` (the console script) should not import torch first.
    if name == "RLTuner":
        from agents.tuner import RLTuner

        return RLTuner
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


__all__ = ["RLTuner"]
