"""PPO from Ray RLlib (new API stack) on the melody env, with several env runners.

Needs the ``rllib`` extra, which pins ``gymnasium==1.2.2``; install it in a venv of its own::

    python3 -m venv .venv-rllib && . .venv-rllib/bin/activate
    pip install torch==2.13.0 -e ".[rllib,test]"
    python examples/rllib_ppo.py --iterations 20 --env-runners 2

Each iteration collects ``--batch`` env steps (64 whole compositions by default) from the env
runners and takes ``--epochs`` passes of minibatch SGD, with PPO's hyperparameters of
``melody-rl baseline --algo sb3-ppo`` (``agents/baselines/algorithms.py``). The env is
registered for RLlib with ``ray.tune.registry.register_env`` under the name ``melody``; its
``env_config`` is passed to ``gymnasium.make("melody_env/MelodyComposition-v0", **env_config)``.
"""

from __future__ import annotations

import argparse

ENV_NAME = "melody"
"""The env's name in RLlib's registry."""


def make_env(env_config: dict):
    """The registered env creator: one single melody env."""
    import gymnasium as gym

    import melody_env  # noqa: F401  (registers the Gymnasium id in this process)

    return gym.make("melody_env/MelodyComposition-v0", **dict(env_config))


def build_config(env_runners: int = 2, envs_per_runner: int = 8, batch: int = 2048, **env_config):
    """RLlib's ``PPOConfig`` for the melody env (new API stack, the default since Ray 2.40)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.tune.registry import register_env

    register_env(ENV_NAME, make_env)
    return (
        PPOConfig()
        .environment(ENV_NAME, env_config=env_config)
        .env_runners(num_env_runners=env_runners, num_envs_per_env_runner=envs_per_runner)
        .fault_tolerance(restart_failed_env_runners=False)  # fail fast, don't restart forever
        .training(
            gamma=0.9,
            lambda_=0.95,
            lr=3e-4,
            train_batch_size_per_learner=batch,
            minibatch_size=min(256, batch),
            num_epochs=4,
            clip_param=0.2,
            entropy_coeff=0.01,
            vf_loss_coeff=0.5,
            grad_clip=0.5,
        )
        .rl_module(
            model_config=DefaultModelConfig(fcnet_hiddens=[256, 256], fcnet_activation="tanh")
        )
    )


def train(
    iterations: int,
    env_runners: int = 2,
    batch: int = 2048,
    envs_per_runner: int = 8,
    **env_config,
) -> list[dict]:
    """Build PPO, train ``iterations`` times, print and return each iteration's metrics."""
    import ray

    ray.init(num_cpus=max(2, env_runners + 1), include_dashboard=False, ignore_reinit_error=True)
    algo = build_config(env_runners, envs_per_runner, batch, **env_config).build_algo()
    history = []
    try:
        for iteration in range(iterations):
            result = algo.train()
            runners = result.get("env_runners", {})
            metrics = {
                "iteration": iteration + 1,
                "env_steps": runners.get("num_env_steps_sampled_lifetime"),
                "episode_return_mean": runners.get("episode_return_mean"),
            }
            print(metrics, flush=True)
            history.append(metrics)
    finally:
        algo.stop()
    return history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--env-runners", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2048, help="env steps per iteration")
    parser.add_argument("--key", default="C major")
    args = parser.parse_args(argv)
    train(args.iterations, args.env_runners, args.batch, key=args.key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
