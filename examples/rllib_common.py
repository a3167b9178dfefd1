"""What the Ray RLlib examples share: the env id, the command line and the training loop.

``rllib_ppo.py`` and ``rllib_dqn_lstm.py`` import it from their own folder (run them as scripts,
``python examples/<name>.py``). Ray pins ``gymnasium==1.2.2``; install it in a venv of its own::

    python3 -m venv .venv-rllib && . .venv-rllib/bin/activate
    pip install torch==2.13.0 -e ".[rllib,test]"
"""

from __future__ import annotations

import argparse

ENV_ID = "melody_env:melody_env/MelodyComposition-v0"
"""The env's gymnasium id; the ``melody_env:`` prefix makes gymnasium import the package (which
registers the id) in each env-runner process first."""

ENV_NAME = "melody_env_float32"
"""The name the examples give RLlib's env registry for :func:`make_env` (see :func:`register`)."""


def make_env(env_config: dict):
    """The env an env runner makes from ``env_config`` (e.g. ``{"key": "G major"}``).

    RLlib's default models (new API stack) have an encoder for float ``Box`` observations but
    none for the env's ``MultiBinary`` (int8) one-hots: ``DtypeObservation`` gives them the same
    values as a ``Box(0, 1, (D,), float32)``.
    """
    import gymnasium as gym
    import numpy as np

    return gym.wrappers.DtypeObservation(gym.make(ENV_ID, **dict(env_config)), np.float32)


def register() -> str:
    """Register :func:`make_env` as :data:`ENV_NAME` with RLlib; return the name.

    This module lives in ``examples/``, which the env runners cannot import, so its functions
    are pickled by value rather than by reference when the registry ships them to the runners.
    """
    import sys

    from ray import cloudpickle
    from ray.tune.registry import register_env

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    register_env(ENV_NAME, make_env)
    return ENV_NAME


def arg_parser(description: str, iterations: int) -> argparse.ArgumentParser:
    """The examples' common options: ``--iterations``, ``--env-runners`` and ``--key``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--iterations", type=int, default=iterations)
    parser.add_argument("--env-runners", type=int, default=2)
    parser.add_argument("--key", default="C major", help="the compositions' key")
    return parser


def train(config, iterations: int) -> list[dict]:
    """Start Ray, build ``config``'s algorithm, train it ``iterations`` times, print the metrics.

    Returns a dict per iteration: ``iteration``, ``env_steps`` (sampled so far),
    ``episode_return_mean`` (of the recent episodes, NaN before the first one ends) and
    ``learner`` (the default module's learner metrics; empty before learning starts).
    """
    import ray

    ray.init(
        num_cpus=max(2, config.num_env_runners + 1),
        include_dashboard=False,
        ignore_reinit_error=True,
    )
    algo = config.build_algo()
    history = []
    try:
        for iteration in range(1, iterations + 1):
            result = algo.train()
            runners = result.get("env_runners", {})
            learner = result.get("learners", {}).get("default_policy", {})
            metrics = {
                "iteration": iteration,
                "env_steps": runners.get("num_env_steps_sampled_lifetime", 0),
                "episode_return_mean": runners.get("episode_return_mean", float("nan")),
                "learner": learner,
            }
            loss = learner.get("qf_loss", learner.get("total_loss"))
            print(
                f"iteration {iteration}: env steps {metrics['env_steps']:.0f}, "
                f"episode return mean {metrics['episode_return_mean']:.2f}"
                + ("" if loss is None else f", loss {float(loss):.4f}"),
                flush=True,
            )
            history.append(metrics)
    finally:
        algo.stop()
    return history
