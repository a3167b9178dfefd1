"""RLOO: REINFORCE leave-one-out with an exact per-step KL to the frozen Note RNN.

- :mod:`agents.rloo.config`: :class:`~agents.rloo.config.RLOOConfig`, every setting with its
  reason, stored in every checkpoint;
- :mod:`agents.rloo.policy`: :class:`~agents.rloo.policy.RLOOPolicy`, the Note RNN copy that is
  trained (SB3's ``predict`` and ``action_log_probs``);
- :mod:`agents.rloo.rloo`: the algorithm, top to bottom (rollout, returns, leave-one-out
  advantages, loss, the run loop, the summary);
- :mod:`agents.rloo.checkpoint`: safetensors + JSON checkpoints, bit-exact resume;
- :mod:`agents.rloo.command`: ``melody-rl train --algo rloo`` (the default algorithm).
"""
