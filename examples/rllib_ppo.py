"""PPO from Ray RLlib (new API stack) on the melody env, with several env runners.

Needs the ``rllib`` extra in a venv of its own (see ``examples/rllib_common.py``)::

    python examples/rllib_ppo.py --iterations 20 --env-runners 2

Each iteration collects ``--batch`` env steps (64 whole compositions by default) from the env
runners, each stepping ``envs_per_runner`` envs, and takes 4 passes of minibatch SGD, with PPO's
hyperparameters of ``melody-rl baseline --algo sb3-ppo`` (``agents/baselines/algorithms.py``).
"""

from __future__ import annotations

from rllib_common import arg_parser, register, train


def build_config(env_runners: int = 2, envs_per_runner: int = 8, batch: int = 2048, **env_config):
    """RLlib's ``PPOConfig`` for the melody env (new API stack, the default since Ray 2.40)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return (
        PPOConfig()
        .environment(register(), env_config=env_config)
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


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0], iterations=20)
    parser.add_argument("--batch", type=int, default=2048, help="env steps per iteration")
    args = parser.parse_args(argv)
    train(build_config(args.env_runners, batch=args.batch, key=args.key), args.iterations)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
