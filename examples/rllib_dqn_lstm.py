"""DQN with an LSTM from Ray RLlib (new API stack) on the melody env, with several env runners.

Needs the ``rllib`` extra in a venv of its own (see ``examples/rllib_common.py``)::

    python examples/rllib_dqn_lstm.py --iterations 50 --env-runners 2

This is the recurrent Q-learning of the RL Tuner paper, done by RLlib: gamma 0.5, epsilon 1.0 ->
0.05 over ``exploration_steps``. ``DefaultModelConfig(use_lstm=True)`` gives DQN's default
RLModule an LSTM encoder. DQN then replays sequences of ``max_seq_len`` steps (32: one whole
composition) from an ``EpisodeReplayBuffer``, each with the LSTM state stored at its start.

Each env runner steps one env and returns 32 steps (one composition) per sampling round; each
round is followed by one update on 32 replayed sequences. (DQN's default rollout fragment is
``n_step`` = 1 step: a remote call and an update per env step, about 2 minutes per iteration on
2 shared cores.) An iteration samples at least ``steps_per_iteration`` env steps.

One env per env runner: in Ray 2.60, ``DefaultDQNTorchRLModule._forward_exploration`` mixes
its ``(B,)`` random actions with ``(B, 1)`` greedy actions of a recurrent module and so returns
``(B, B)`` actions. For B > 1 envs, RLlib's ``RemoveSingleTsTimeRankFromBatch`` then fails with
``cannot select an axis to squeeze out``. Scale out with env runners instead.
"""

from __future__ import annotations

from rllib_common import arg_parser, register, train


def build_config(
    env_runners: int = 2,
    exploration_steps: int = 50_000,
    learning_starts: int = 1024,
    steps_per_iteration: int = 1000,
    seq_len: int = 32,
    **env_config,
):
    """RLlib's ``DQNConfig`` with an LSTM RLModule for the melody env."""
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return (
        DQNConfig()
        .environment(register(), env_config=env_config)
        .env_runners(
            num_env_runners=env_runners,
            num_envs_per_env_runner=1,  # > 1 fails in Ray 2.60 (see the module docstring)
            rollout_fragment_length=seq_len,
        )
        .fault_tolerance(restart_failed_env_runners=False)  # fail fast, don't restart forever
        .reporting(min_sample_timesteps_per_iteration=steps_per_iteration)
        .training(
            gamma=0.5,
            lr=5e-4,
            train_batch_size_per_learner=32,  # sequences of up to seq_len steps
            replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": 50_000},
            num_steps_sampled_before_learning_starts=learning_starts,
            target_network_update_freq=500,
            double_q=True,
            dueling=False,
            n_step=1,  # sequences need 1-step targets
            epsilon=[(0, 1.0), (exploration_steps, 0.05)],
        )
        .rl_module(
            model_config=DefaultModelConfig(
                use_lstm=True,
                lstm_cell_size=128,
                max_seq_len=seq_len,
                fcnet_hiddens=[256],
                fcnet_activation="relu",
            )
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = arg_parser(__doc__.split("\n\n")[0], iterations=50).parse_args(argv)
    train(build_config(args.env_runners, key=args.key), args.iterations)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
