"""``RLTuner``: the agents with Stable-Baselines3's shape, on any melody env a user makes.

>>> import gymnasium as gym
>>> from agents import RLTuner
>>> from melody_env.models import NoteRNN
>>> env = gym.make_vec(
...     "melody_env/MelodyComposition-v0", num_envs=4, key="G major", reward_rnn=NoteRNN(seed=0)
... )
>>> model = RLTuner("q", env, seed=0, learning_starts=64, batch_size=4).learn(256)
>>> obs, _ = env.reset(seed=0)
>>> actions, state = model.predict(obs, None, [True] * 4, deterministic=True)
>>> actions.shape, model.num_timesteps
((4,), 256)

``algorithm`` is one of :data:`ALGORITHMS`: the RL Tuner's four recurrent DQNs
(:mod:`agents.rl_tuner`: ``q``, ``psi``, ``g``, ``pure_rl``) or ``rloo``
(:class:`agents.rloo.RLOO`, which ``RLTuner("rloo", env, ...)`` returns).

The env is the task: its key (``"any"``: the agent reads each composition's key from the
observation), its reward terms and weights (the agent learns from the env's reward, whatever it
is), its reward RNN (the Q-network starts as a copy of it, and the prior of Psi/G-learning's
targets is the env's ``info["prior_log_probs"]``: the Note RNN runs once per step, in the env).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np

from agents.rl_tuner import checkpoint as ckpt
from agents.rl_tuner.config import ALGORITHMS as DQN_ALGORITHMS
from agents.rl_tuner.config import TrainConfig, make_config, reward_mode_of
from agents.rl_tuner.trainer import Trainer
from melody_env.envs.env_config import EnvConfig
from melody_env.envs.melody_composition import MelodyCompositionEnv
from melody_env.envs.vector import MelodyCompositionVectorEnv

ALGORITHMS = (*DQN_ALGORITHMS, "rloo")
"""What ``RLTuner(algorithm, ...)`` accepts."""

API_DEFAULTS = {
    "eval_every": 0,
    "checkpoint_every": 0,
    "summary_compositions": 0,
    "num_samples": 0,
    "progress_bar": False,
}
"""Run-folder settings of :class:`~agents.rl_tuner.config.TrainConfig` that the API switches off
unless given (``melody-rl train`` keeps the config's): ``learn`` evaluates, checkpoints and
summarises nothing by itself, as SB3's does."""

ENV_FIELDS = ("env", "num_envs")
"""Config fields the env decides: set them on the env, not as hyperparameters."""


def _melody_env(env: Any) -> MelodyCompositionEnv | MelodyCompositionVectorEnv | None:
    """The melody env under ``env`` (one env of it for a ``SyncVectorEnv``), else ``None``."""
    unwrapped = getattr(env, "unwrapped", None)
    if isinstance(unwrapped, (MelodyCompositionEnv, MelodyCompositionVectorEnv)):
        return unwrapped
    if isinstance(unwrapped, gym.vector.SyncVectorEnv):
        inner = [getattr(one, "unwrapped", None) for one in unwrapped.envs]
        if inner and all(isinstance(one, MelodyCompositionEnv) for one in inner):
            return inner[0]
    return None


def as_vector_env(env: Any, algorithm: str, num_envs: int = 64) -> gym.vector.VectorEnv:
    """``env`` as a vector env of melody envs.

    Args:
        env: an env id (made with ``gymnasium.make_vec``, ``num_envs`` envs, the algorithm's
            reward mode), a :class:`~melody_env.MelodyCompositionEnv` (wrapped or not; wrapped
            into a one-env ``SyncVectorEnv``), or a Gymnasium ``VectorEnv`` of them (the native
            :class:`~melody_env.MelodyCompositionVectorEnv` or a ``SyncVectorEnv``).

    Raises:
        TypeError: anything else (one line naming what was given and what is allowed).
    """
    if isinstance(env, str):
        env = gym.make_vec(env, num_envs=num_envs, reward_mode=reward_mode_of(algorithm))
    melody = _melody_env(env)
    if melody is None:
        raise TypeError(
            "env must be an env id, a MelodyCompositionEnv (wrapped or not) or a Gymnasium "
            f"VectorEnv of them (native or SyncVectorEnv), got {type(env).__name__}"
        )
    if not isinstance(env, gym.vector.VectorEnv):
        single = env
        env = gym.vector.SyncVectorEnv([lambda: single])
    weights = melody.reward_function.weights
    if (algorithm in ("g", "pure_rl")) == ("log_prob" in weights) and algorithm != "rloo":
        warnings.warn(
            f"the env's reward {'adds' if 'log_prob' in weights else 'lacks'} log p, while "
            f"{algorithm!r} is meant for reward_mode={reward_mode_of(algorithm)!r}; the agent "
            "learns the env's reward as it is",
            stacklevel=3,
        )
    return env


def env_config_of(envs: gym.vector.VectorEnv) -> EnvConfig:
    """The :class:`melody_env.EnvConfig` of ``envs`` as a checkpoint stores it: without the
    reward RNN (the checkpoint holds the prior's weights) and without extra reward terms
    (callables; pass the env again to :meth:`RLTuner.load` to keep them)."""
    config = _melody_env(envs).config
    extra = set(config.reward_terms or {})
    weights = {k: v for k, v in (config.reward_weights or {}).items() if k not in extra}
    return config.replace(reward_rnn=None, reward_terms=None, reward_weights=weights or None)


def _silent(*_args: Any) -> None:
    pass


class RLTuner:
    """A recurrent DQN of the RL Tuner (or RLOO) on a melody env, with SB3's API.

    Args:
        algorithm: one of :data:`ALGORITHMS` (``"rloo"`` returns an :class:`agents.rloo.RLOO`).
        env: see :func:`as_vector_env`.
        seed: seeds exploration, replay sampling, the primers (each round of compositions is
            reset with seeds drawn from it) and ``predict``'s sampling; ``None``: a random one.
        tensorboard_log: a folder for TensorBoard scalars (``charts/``, ``losses/``,
            ``rewards/``; see :mod:`agents.rl_tuner.trainer`), or ``None``.
        verbose: 1 prints progress messages (evaluations, resumes).
        preset: the :func:`~agents.rl_tuner.config.make_config` preset (``fast`` or ``paper``).
        **hyperparameters: fields of :class:`~agents.rl_tuner.config.TrainConfig` (``gamma``,
            ``learning_rate``, ``batch_size``, ``exploration``, ...); ``num_envs`` only with an
            env id. :data:`API_DEFAULTS` apply unless given.

    Raises:
        ValueError: an unknown algorithm or hyperparameter, or an invalid value.
        TypeError: ``env`` is not a melody env (see :func:`as_vector_env`).
    """

    def __new__(cls, algorithm: str, *args: Any, **kwargs: Any):
        if algorithm == "rloo" and cls is RLTuner:
            from agents.rloo import RLOO

            return RLOO(*args, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        algorithm: str,
        env: Any,
        *,
        seed: int | None = None,
        tensorboard_log: str | os.PathLike | None = None,
        verbose: int = 0,
        preset: str = "fast",
        **hyperparameters: Any,
    ) -> None:
        if algorithm not in DQN_ALGORITHMS:
            raise ValueError(
                f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}"
            )
        given = isinstance(env, str)
        num_envs = hyperparameters.pop("num_envs", None) if given else None
        misplaced = sorted(set(hyperparameters) & set(ENV_FIELDS))
        if misplaced:
            raise ValueError(
                f"{', '.join(misplaced)} belong to the env: make the env with them "
                "(gymnasium.make_vec(..., num_envs=N, reward_rnn=...)) instead"
            )
        envs = as_vector_env(env, algorithm, num_envs or TrainConfig.num_envs)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        config = make_config(
            preset,
            algorithm,
            **(
                API_DEFAULTS
                | hyperparameters
                | {"seed": seed, "num_envs": envs.num_envs, "env": env_config_of(envs)}
            ),
        )
        self._start(config, envs, None, tensorboard_log, verbose)

    @classmethod
    def from_config(
        cls,
        config: TrainConfig,
        run_dir: str | os.PathLike | None = None,
        *,
        resume: bool = False,
        verbose: int = 1,
    ) -> RLTuner:
        """The model a :class:`~agents.rl_tuner.config.TrainConfig` describes, on
        ``config.num_envs`` envs built from ``config.env`` and the Note RNN of
        ``config.env.reward_rnn`` (what ``melody-rl train`` runs).

        With a ``run_dir``, :meth:`learn` checkpoints there every ``checkpoint_every`` steps and
        stops gracefully on SIGINT/SIGTERM (a checkpoint, then
        :class:`~agents.run_control.Stopped`); TensorBoard goes to ``run_dir/tensorboard``;
        ``resume`` continues the folder's latest checkpoint (``config``'s ``total_steps`` and
        ``progress_bar`` replace the stored ones).
        """
        from agents.rl_tuner.trainer import _RunFolder

        model = cls.__new__(cls, config.algo)
        tensorboard_log = _RunFolder if run_dir is not None else None
        model._start(config, None, None, tensorboard_log, verbose, run_dir, resume)
        return model

    def finish_run(self, total_seconds: float = 0.0) -> dict[str, Any]:
        """Close a run of :meth:`from_config`: its final checkpoint (unless one is at this
        step), the summary of ``summary_compositions`` compositions through the evaluation
        suite (``summary.json``, ``summary.md``) and ``num_samples`` MIDI samples in
        ``run_dir/samples``. Returns the summary."""
        trainer = self._trainer
        if not trainer._saved_at_current_step():
            trainer.save()
        return trainer.finish(total_seconds)

    def _start(
        self,
        config: TrainConfig,
        envs: gym.vector.VectorEnv | None,
        checkpoint: ckpt.Checkpoint | None,
        tensorboard_log: str | os.PathLike | None,
        verbose: int,
        run_dir: str | os.PathLike | None = None,
        resume: bool = False,
    ) -> None:
        self.verbose = verbose
        self.tensorboard_log = tensorboard_log
        self._trainer = Trainer(
            config,
            run_dir,
            resume=resume,
            log=print if verbose else _silent,
            envs=envs,
            checkpoint=checkpoint,
            tensorboard_log=tensorboard_log,
        )
        self.logger = _Logger(self._trainer)

    # --- SB3's API

    @property
    def algorithm(self) -> str:
        return self.config.algo

    @property
    def config(self) -> TrainConfig:
        """Every setting of the run (stored in every checkpoint)."""
        return self._trainer.config

    @property
    def num_timesteps(self) -> int:
        """Training transitions collected (one token placed in one composition each)."""
        return self._trainer.progress.global_step

    @property
    def agent(self):
        """The :class:`~agents.rl_tuner.agent.RLTunerAgent`: its networks and ``predict``."""
        return self._trainer.agent

    def get_env(self) -> gym.vector.VectorEnv:
        """The vector env the model trains on."""
        return self._trainer.envs

    def learn(
        self,
        total_timesteps: int,
        callback: Any = None,
        progress_bar: bool = False,
        reset_num_timesteps: bool = True,
    ) -> RLTuner:
        """Collect ``total_timesteps`` more training transitions, learning as they come.

        Compositions are written in rounds of ``num_envs``, so training ends at the first round
        end at or after the budget.

        Args:
            total_timesteps: transitions to collect in this call.
            callback: ``None``; a callable ``callback(locals, globals) -> bool`` called after
                every vector step (SB3's functional callback; ``False`` stops training); an
                object with SB3's ``BaseCallback`` hooks (a ``BaseCallback`` itself works:
                ``init_callback(model)``, ``on_training_start(locals, globals)``,
                ``on_rollout_start()``, ``on_step() -> bool``, ``on_rollout_end()`` after each
                round of compositions, ``on_training_end()``; hooks it lacks are skipped); or a
                list of those. A stop takes effect at the end of the round (at most a
                composition's length of vector steps later), so the replay and any checkpoint
                hold whole compositions.
            progress_bar: a tqdm bar with the steps per second and ETA.
            reset_num_timesteps: start the step count (and with it epsilon's and the learning
                rate's schedules) from 0, as SB3 does; ``False`` continues it (resuming).

        Returns:
            The model.
        """
        if (
            not isinstance(total_timesteps, (int, np.integer))
            or isinstance(total_timesteps, bool)
            or total_timesteps < 0
        ):
            raise ValueError(
                f"total_timesteps must be a non-negative integer, got {total_timesteps!r}"
            )
        trainer = self._trainer
        if reset_num_timesteps:
            trainer.progress = replace(
                trainer.progress,
                global_step=0,
                train_credit=0,
                next_eval_step=0,
                next_checkpoint_step=self.config.checkpoint_every,
            )
        total = trainer.progress.global_step + int(total_timesteps)
        trainer.config = trainer.agent.config = replace(self.config, total_steps=total)
        trainer.learn(as_callback(callback, self), progress_bar=progress_bar)
        return self

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """SB3's recurrent ``predict``: see :meth:`agents.rl_tuner.agent.RLTunerAgent.predict`."""
        return self.agent.predict(observation, state, episode_start, deterministic)

    def save(self, path: str | os.PathLike) -> None:
        """Write a checkpoint into the folder ``path`` (``path/checkpoints/step_N``, the layout
        of a ``melody-rl train`` run folder): networks, optimiser, replay, generators and
        counters, so that ``load(path).learn(n, reset_num_timesteps=False)`` continues exactly."""
        self._trainer.save(path)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        env: Any = None,
        *,
        tensorboard_log: str | os.PathLike | None = None,
        verbose: int = 0,
    ) -> Any:
        """The model saved in ``path`` (a folder of :meth:`save` or a ``melody-rl train`` run, or
        one of its checkpoint folders), on ``env`` or, without one, on envs rebuilt from the
        stored config. An RLOO checkpoint loads as :class:`agents.rloo.RLOO`.

        Raises:
            FileNotFoundError: no checkpoint there.
            ValueError: a checkpoint that is corrupt or not ours, or an ``env`` whose compositions
                the stored agent cannot replay (another length or primer context).
        """
        from agents.rloo.checkpoint import is_rloo_checkpoint

        if is_rloo_checkpoint(path):
            from agents.rloo import RLOO

            return RLOO.load(path, env=env)
        loaded = ckpt.load_checkpoint(path)
        config, envs = loaded.config, None
        if env is not None:
            envs = as_vector_env(env, config.algo)
            described = env_config_of(envs)
            for name in ("composition_length", "primer_context"):
                if getattr(described, name) != getattr(config.env, name):
                    raise ValueError(
                        f"the env's {name} is {getattr(described, name)}, the checkpoint's "
                        f"{getattr(config.env, name)}: its replay cannot be continued on it"
                    )
            config = replace(config, env=described, num_envs=envs.num_envs)
        model = cls.__new__(cls, config.algo)
        model._start(config, envs, loaded, tensorboard_log, verbose)
        return model


def train_run(
    config: TrainConfig, run_dir: str | os.PathLike, resume: bool = False, verbose: int = 1
) -> dict[str, Any]:
    """``melody-rl train`` for the RL Tuner: train (or resume) the run of ``config`` in
    ``run_dir`` to ``config.total_steps``, then write its checkpoint, summary and samples.

    The run folder is locked for the whole run (:class:`~agents.run_control.RunLock`: a second
    run into it is refused). SIGINT and SIGTERM stop it gracefully: the current round finishes,
    a checkpoint is written and :class:`~agents.run_control.Stopped` is raised.

    Raises:
        ValueError: ``run_dir`` cannot hold a run (empty, a file, not writable).
        FileExistsError: ``run_dir`` holds a run and ``resume`` is false.
        FileNotFoundError: ``resume`` and no checkpoint in ``run_dir``.
        agents.run_control.RunLocked: another live run holds ``run_dir``.
        agents.run_control.Stopped: stopped by a signal after checkpointing.
    """
    import time

    from agents.run_control import RunLock, check_output_folder

    run_dir = check_output_folder(run_dir)
    with RunLock(run_dir, "train"):
        started = time.perf_counter()
        model = RLTuner.from_config(config, run_dir, resume=resume, verbose=verbose)
        remaining = max(config.total_steps - model.num_timesteps, 0)
        model.learn(remaining, progress_bar=model.config.progress_bar, reset_num_timesteps=False)
        return model.finish_run(time.perf_counter() - started)


class _Logger:
    """The part of SB3's logger callbacks use: ``record`` a scalar, ``dump`` them (to
    TensorBoard, at the model's step)."""

    def __init__(self, trainer: Trainer) -> None:
        self._trainer = trainer

    def record(self, key: str, value: Any, exclude: Any = None) -> None:
        if isinstance(value, (int, float, np.number)):
            self._trainer.writer.add_scalar(key, float(value), self._trainer.progress.global_step)

    def dump(self, step: int = 0) -> None:
        self._trainer.writer.flush()


class _Hooks:
    """A callback of :meth:`RLTuner.learn` with every hook (the missing ones do nothing)."""

    def __init__(self, callbacks: list[Any], model: RLTuner) -> None:
        self.callbacks = callbacks
        self.model = model
        for callback in callbacks:
            if hasattr(callback, "init_callback"):
                callback.init_callback(model)

    def _call(self, hook: str, *args: Any) -> list[Any]:
        return [getattr(c, hook)(*args) for c in self.callbacks if hasattr(c, hook)]

    def on_training_start(self, locals_: dict, globals_: dict) -> None:
        self._call("on_training_start", {"self": self.model, **locals_}, globals_)

    def on_rollout_start(self) -> None:
        self._call("on_rollout_start")

    def on_step(self) -> bool:
        return all(result is not False for result in self._call("on_step"))

    def on_rollout_end(self) -> None:
        self._call("on_rollout_end")

    def on_training_end(self) -> None:
        self._call("on_training_end")


class _Function:
    """SB3's functional callback: ``function(locals, globals) -> bool`` after every step."""

    def __init__(self, function: Any, model: RLTuner) -> None:
        self.function = function
        self.model = model
        self.locals: dict = {}
        self.globals: dict = {}

    def on_training_start(self, locals_: dict, globals_: dict) -> None:
        self.locals, self.globals = locals_, globals_

    def on_step(self) -> bool:
        self.locals["num_timesteps"] = self.model.num_timesteps
        return self.function(self.locals, self.globals)


def as_callback(callback: Any, model: RLTuner) -> _Hooks:
    """:meth:`RLTuner.learn`'s ``callback`` as one object with every hook.

    Raises:
        TypeError: neither ``None``, a callable, an object with ``on_step``, nor a list of them.
    """
    items = callback if isinstance(callback, (list, tuple)) else [callback]
    callbacks = []
    for item in items:
        if item is None:
            continue
        if hasattr(item, "on_step"):
            callbacks.append(item)
        elif callable(item):
            callbacks.append(_Function(item, model))
        else:
            raise TypeError(
                "callback must be None, a callable (locals, globals) -> bool, an object with "
                f"SB3's BaseCallback hooks, or a list of them; got {type(item).__name__}"
            )
    return _Hooks(callbacks, model)
