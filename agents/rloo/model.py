"""``RLOO``: the algorithm of :mod:`agents.rloo.rloo` as a library class, in Stable-Baselines3's
shape (``RLOO(env).learn(n)``, ``predict``, ``save``, ``load``), on any melody env a user makes.

The env is an env id, one :class:`~melody_env.MelodyCompositionEnv` (wrapped or not) or a
Gymnasium ``VectorEnv`` of them (the native one of ``gym.make_vec``, or a ``SyncVectorEnv``):

- **Reward.** The env's own: its key, reward mode, terms and weights (the KL to the prior is the
  agent's, in its objective, not the env's). An env id builds the env the config describes:
  ``config.env`` (a :class:`melody_env.EnvConfig`; by default the paper's nine rules times
  ``reward_scaler``, ``reward_mode="music_theory_only"``), as ``melody-rl train`` does.
- **Prior.** The env's reward RNN (``env.unwrapped.reward_rnn``): the policy starts as a copy of
  it, and the exact KL at every step is computed from the 38 log-probs it returns in
  ``info["prior_log_probs"]``; no second Note RNN runs. A frozen copy is kept as the policy's
  ``prior`` (checkpoints store it).
- **Groups.** Training round ``i`` draws ``num_primers`` primer seeds from ``(seed, i)``; each
  seed resets ``k = samples_per_primer`` consecutive rows, so they share their primer. A vector
  env of ``N`` rows writes ``N / k`` primers at a time (``N`` must be a multiple of ``k``), in
  ``num_primers * k / N`` rollouts per iteration; ``num_primers`` is rounded up to a multiple of
  ``N / k``. A single env is **wrapped**: a ``SyncVectorEnv`` of ``num_primers * k`` deep copies
  of it (the reward RNN shared, wrappers kept), which :meth:`RLOO.get_env` returns.
- **Budget.** One iteration is ``num_primers * k`` compositions of ``composition_length``
  steps; ``learn(total_timesteps)`` runs ``ceil(total_timesteps / (num_primers * k * L))``
  iterations: env steps are rounded **up** to whole iterations (the default: 8,192 steps per
  iteration).
- **Keys.** The policy (a Note RNN) reads tokens transposed into C major / A minor as the env's
  reward RNN does. With one key for every row it reads them in that key; with ``key="any"``
  (each reset draws a key from the row's generator, so the ``k`` rows of a primer, reset with
  one seed, share it) it is told each row's key from the observation. Rows made with different
  fixed keys (a ``SyncVectorEnv`` of mixed envs) are refused.

>>> import gymnasium as gym
>>> from melody_env import ENV_ID
>>> from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig
>>> envs = gym.make_vec(ENV_ID, num_envs=4, key="G major", composition_length=8,
...                     reward_rnn=NoteRNN(NoteRNNConfig(hidden_size=8), seed=0))
>>> model = RLOO(envs, seed=0, num_primers=2, samples_per_primer=2).learn(64)
>>> model.num_timesteps, model.config.env.key
(64, 'G major')
>>> obs, info = envs.reset(seed=0)
>>> action, state = model.predict(obs, deterministic=True)
>>> action.shape
(4,)
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.rl_tuner.networks import freeze
from agents.rl_tuner.trainer import load_note_rnn
from agents.rloo import checkpoint as ckpt
from agents.rloo import rloo
from agents.rloo.config import RLOOConfig
from agents.rloo.envs import as_vector_env, env_facts, fit_config, make_envs, same_weights
from agents.rloo.policy import RLOOPolicy
from melody_env import ENV_ID


class RLOO:
    """REINFORCE leave-one-out with an exact per-step KL to the env's reward RNN.

    Args:
        env: an env id (built from the config, see the module docstring), one
            ``MelodyCompositionEnv`` (wrapped or not; wrapped in ``num_primers * k`` copies), or
            a native or synchronous ``VectorEnv`` of them with a multiple of
            ``samples_per_primer`` rows.
        seed: seeds the primers and samples of every round and :meth:`predict`'s sampling;
            ``None`` draws one (stored in :attr:`config`).
        tensorboard_log: a folder for TensorBoard event files (written directly into it, with
            TRL's names, see :mod:`agents.rloo.rloo`); ``None``: none.
        verbose: 1 prints a line per iteration.
        **hyperparameters: fields of :class:`~agents.rloo.config.RLOOConfig`, and ``key``,
            ``composition_length``, ``steps_per_bar``, ``primer_context``, ``reward_scaler`` and
            ``reward_rnn`` (a path), which set ``config.env``'s (:meth:`from_config` takes a
            whole config). With an env object, the first five are the env's (passing another
            value is an error).

    Raises:
        ValueError: an unknown or invalid hyperparameter, or an env RLOO cannot use (one line).

    Attributes:
        config: the run's :class:`~agents.rloo.config.RLOOConfig` (stored in checkpoints).
        policy: the trained :class:`~agents.rloo.policy.RLOOPolicy` (its ``prior`` frozen).
        progress: counters (:class:`~agents.rloo.checkpoint.Progress`): iterations taken since
            the counters were last reset, ``global_step`` (= :attr:`num_timesteps`) and
            training seconds.
        writer: the TensorBoard ``SummaryWriter`` once :meth:`learn` has run with
            ``tensorboard_log`` (``None`` otherwise).
    """

    def __init__(
        self,
        env: str | gym.Env | gym.vector.VectorEnv,
        *,
        seed: int | None = None,
        tensorboard_log: str | os.PathLike | None = None,
        verbose: int = 0,
        **hyperparameters: Any,
    ) -> None:
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        config = _config({**hyperparameters, "seed": seed})
        self._start(env, config, tensorboard_log, verbose)

    @classmethod
    def from_config(
        cls,
        config: RLOOConfig,
        env: str | gym.Env | gym.vector.VectorEnv = ENV_ID,
        *,
        tensorboard_log: str | os.PathLike | None = None,
        verbose: int = 0,
    ) -> RLOO:
        """The model of a whole :class:`~agents.rloo.config.RLOOConfig`, by default on the
        melody env its ``env`` describes (what ``melody-rl train`` runs); ``env`` and the other
        arguments as for :class:`RLOO`."""
        model = cls.__new__(cls)
        model._start(env, config, tensorboard_log, verbose)
        return model

    def _start(self, env, config: RLOOConfig, tensorboard_log, verbose) -> None:
        if isinstance(env, str):
            reward_rnn = freeze(load_note_rnn(config.env.reward_rnn))
            envs = make_envs(env, config, reward_rnn)
            facts = env_facts(envs)
        else:
            envs, facts = as_vector_env(env, config)
            config = fit_config(config, facts, check=True)
        self._setup(config, envs, facts.reward_rnn, tensorboard_log, verbose)
        self._facts = facts

    def _setup(self, config, envs, note_rnn, tensorboard_log, verbose) -> None:
        self.config = config
        self.env = envs
        self.tensorboard_log = tensorboard_log
        self.verbose = verbose
        self.policy = RLOOPolicy.from_config(config, note_rnn)
        self.optimizer = rloo.make_optimizer(self.policy, config)
        self.progress = ckpt.Progress()
        self.writer = None

    # --- SB3's API

    @property
    def num_timesteps(self) -> int:
        """Env steps taken (tokens placed in training compositions) since the last reset."""
        return self.progress.global_step

    def get_env(self) -> gym.vector.VectorEnv | None:
        """The vector env RLOO steps (a single env comes back wrapped, see the module)."""
        return self.env

    def set_env(self, env: str | gym.Env | gym.vector.VectorEnv) -> None:
        """Train on ``env`` from now on (its key and layout must be the config's).

        Raises:
            ValueError: ``env`` differs from the config in its key or layout, or RLOO cannot
                use it.
        """
        if isinstance(env, str):
            envs = make_envs(env, self.config, self.policy.prior)
            facts = env_facts(envs)
        else:
            envs, facts = as_vector_env(env, self.config)
        values = facts.config_values()
        for name in ("key", "composition_length", "steps_per_bar", "primer_context"):
            if values[name] != getattr(self.config.env, name):
                raise ValueError(
                    f"the env's {name} {values[name]!r} differs from the model's "
                    f"{getattr(self.config.env, name)!r}"
                )
        if not same_weights(facts.reward_rnn, self.policy.prior):
            warnings.warn(
                "the env's reward RNN differs from the model's prior: the KL is measured "
                "against the env's",
                stacklevel=2,
            )
        self.config = fit_config(self.config, facts)
        self.env, self._facts = envs, facts

    def learn(
        self,
        total_timesteps: int,
        callback=None,
        progress_bar: bool = False,
        reset_num_timesteps: bool = True,
    ) -> RLOO:
        """Train for ``total_timesteps`` env steps, rounded up to whole iterations.

        Args:
            total_timesteps: env steps (tokens placed) to add; ``ceil(total_timesteps /
                (num_primers * k * composition_length))`` iterations run.
            callback: ``None``, a callable or a list of callables ``f(locals_, globals_) ->
                bool`` (SB3's function-callback convention), called after every iteration with
                ``locals_`` holding ``self``, ``iteration`` (the round just taken), ``steps``
                (its env steps), ``logged`` (its TensorBoard scalars) and ``batch`` (its
                :class:`~agents.rloo.rloo.Rollout`); ``False`` stops training there.
            progress_bar: show a tqdm bar over the env steps.
            reset_num_timesteps: start the counters at 0 (the rounds' primers and samples, a
                function of ``(seed, round)``, then repeat those of a fresh run); ``False``
                continues them, so that ``learn(a)`` then ``learn(b, reset_num_timesteps=False)``
                equals ``learn(a + b)`` bit for bit (with a constant learning rate).

        Returns:
            ``self``.

        Raises:
            ValueError: no env (a model loaded without one: pass ``env`` to :meth:`load` or
                call :meth:`set_env`).
        """
        if self.env is None:
            raise ValueError("this model has no env: pass env= to RLOO.load or call set_env")
        if reset_num_timesteps:
            self.progress = ckpt.Progress()
        per_iteration = self.config.batch_compositions * self.config.env.composition_length
        target = self.progress.global_step + max(int(total_timesteps), 0)
        # The schedule's horizon (and the checkpoint's record) is this call's end.
        self.config = replace(self.config, total_steps=max(target, 1))
        end = math.ceil(target / per_iteration)
        callbacks = (
            [] if callback is None else callback if isinstance(callback, list) else [callback]
        )
        threads = torch.get_num_threads()
        torch.set_num_threads(self.config.torch_threads)
        bar = self._progress_bar(end * per_iteration) if progress_bar else None
        if self.tensorboard_log is not None and self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(
                str(self.tensorboard_log), purge_step=self.num_timesteps or None
            )
        try:
            while self.progress.iteration < end:
                if not self._iterate(callbacks, bar):
                    break
        finally:
            torch.set_num_threads(threads)
            if bar is not None:
                bar.close()
            if self.writer is not None:
                self.writer.flush()
        return self

    def _iterate(self, callbacks, bar) -> bool:
        """One iteration, logged; returns whether to go on (the callbacks' verdict)."""
        started = time.perf_counter()
        iteration = self.progress.iteration
        batch, logged = rloo.iteration_step(
            self.policy,
            self.optimizer,
            self.env,
            self.config,
            iteration,
            self._facts.rule_scales(),
        )
        steps = batch.actions.size
        self.progress.iteration += 1
        self.progress.global_step += steps
        seconds = time.perf_counter() - started
        self.progress.train_seconds += seconds
        logged["charts/SPS"] = steps / max(seconds, 1e-9)
        if self.writer is not None:
            for name, value in logged.items():
                self.writer.add_scalar(name, value, self.progress.global_step)
        if bar is not None:
            bar.update(steps)
            bar.set_postfix(
                r_MT=f"{logged['objective/music_theory']:.2f}",
                kl=f"{logged['objective/kl_per_step']:.3f}",
            )
        if self.verbose:
            print(
                f"rloo iteration {self.progress.iteration}/{self.config.iterations}: r_MT/step "
                f"{logged['objective/music_theory']:.3f}, KL/step "
                f"{logged['objective/kl_per_step']:.4f}, {logged['charts/SPS']:,.0f} steps/s"
            )
        local = {"self": self, "iteration": iteration, "steps": steps, "logged": logged}
        local["batch"] = batch
        return all([callback(local, globals()) is not False for callback in callbacks])

    def _progress_bar(self, total: int):
        from tqdm import tqdm

        initial = min(self.progress.global_step, total)
        return tqdm(total=total, initial=initial, unit="step", desc="rloo")

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """SB3's recurrent ``predict``: see :meth:`agents.rloo.policy.RLOOPolicy.predict`."""
        return self.policy.predict(observation, state, episode_start, deterministic)

    def action_log_probs(self, observation, state=None, episode_start=None) -> np.ndarray:
        """``log pi(. | s) [n, 38]`` for :meth:`predict`'s arguments (no state change)."""
        return self.policy.action_log_probs(observation, state, episode_start)

    def set_random_seed(self, seed: int) -> None:
        """Reseed :meth:`predict`'s sampling (the evaluation calls it with its seed)."""
        self.policy.set_random_seed(seed)

    def save(self, path: str | os.PathLike) -> os.PathLike:
        """Write a checkpoint into the folder ``path`` (``path/checkpoints/step_N/``, with
        ``latest.json``; the layout of ``melody-rl train``'s runs): the policy, its prior,
        Adam's state, the config and the counters. Returns the checkpoint folder."""
        return ckpt.save_checkpoint(path, self.config, self.policy, self.optimizer, self.progress)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        env: str | gym.Env | gym.vector.VectorEnv | None = None,
        *,
        tensorboard_log: str | os.PathLike | None = None,
        verbose: int = 0,
    ) -> RLOO:
        """The model saved at ``path`` (a run folder, its ``checkpoints`` or a step folder),
        with Adam's state and counters, ready to predict or continue learning.

        Args:
            path: where :meth:`save` (or ``melody-rl train``) wrote it.
            env: ``None`` (predict only, until :meth:`set_env`), an env id (the env the config
                describes, scored by the checkpoint's prior) or an env with the config's key and
                layout.

        Raises:
            FileNotFoundError: no checkpoint at ``path``.
            ValueError: a damaged checkpoint, or an env that does not fit.
        """
        loaded = ckpt.load_checkpoint(path)
        model = cls.__new__(cls)
        model._setup(loaded.config, None, loaded.network("prior"), tensorboard_log, verbose)
        model.progress = ckpt.restore(loaded, model.policy, model.optimizer)
        model.loaded_from = loaded.directory
        if env is not None:
            model.set_env(env)
        return model

    def __repr__(self) -> str:
        return (
            f"RLOO(key={self.config.env.key!r}, num_envs="
            f"{None if self.env is None else self.env.num_envs}, "
            f"num_timesteps={self.num_timesteps})"
        )


def _config(values: dict[str, Any]) -> RLOOConfig:
    """An :class:`RLOOConfig` from keyword values (:meth:`RLOOConfig.from_dict`), with one-line
    errors (unknown names listed with the known ones)."""
    try:
        return RLOOConfig.from_dict(values)
    except TypeError as error:  # e.g. a list where a number belongs
        raise ValueError(f"invalid RLOO hyperparameters: {error}") from error
