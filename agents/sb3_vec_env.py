"""Stable-Baselines3 on the native vector env: :class:`MelodySB3VecEnv`.

SB3 does not speak Gymnasium's ``VectorEnv`` API but its own ``VecEnv``: ``reset()`` returns the
observations only, ``step_wait()`` returns ``(obs, rewards, dones, infos)`` with ``infos`` a list
of one dict per env, and a finished env is reset at once (its last observation goes to
``infos[i]["terminal_observation"]`` and the returned observation is the next episode's first).
The adapter turns :class:`~melody_env.MelodyCompositionVectorEnv` (one batched step for all
envs, ``NEXT_STEP`` autoreset) into that, so SB3 trains on the batched env instead of ``N``
single envs in a ``DummyVecEnv``:

>>> from melody_env.models import NoteRNN
>>> envs = MelodySB3VecEnv(num_envs=4, key="D minor", reward_rnn=NoteRNN(seed=0))
>>> envs.reset().shape
(4, 1620)
>>> obs, rewards, dones, infos = envs.step(np.array([16, 16, 18, 21]))
>>> rewards.dtype, dones.tolist(), sorted(infos[0])
(dtype('float32'), [False, False, False, False], ['log_prob', 'music_theory'])

and then, for instance, ``PPO("MlpPolicy", envs, n_steps=32).learn(10_000)``.

Stable-Baselines3 is the optional ``sb3`` extra (``pip install melody-rl[sb3]``); only this
module imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from stable_baselines3.common.vec_env import VecEnv
    from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "agents.sb3_vec_env needs Stable-Baselines3: pip install 'melody-rl[sb3]'"
    ) from error

from melody_env.envs.vector import MelodyCompositionVectorEnv


class MelodySB3VecEnv(VecEnv):
    """An SB3 ``VecEnv`` over one :class:`~melody_env.MelodyCompositionVectorEnv`.

    All compositions have the same length, so all envs are done on the same step; the adapter
    then resets the native env (no seed, constructor key and primer, each env's generator going
    on, as ``DummyVecEnv`` resets a single env) and returns the new first observations.

    ``infos[i]`` holds env ``i``'s ``music_theory`` and ``log_prob`` (and its ``reward_terms``
    dict with ``reward_terms_in_info=True``, at some cost per step for large ``N``); at the end
    of an episode also ``terminal_observation`` and ``TimeLimit.truncated``. ``reset_infos[i]``
    holds the reset info (``prior_log_probs``, ``key``, ``primer``). Seeds set with
    :meth:`seed` and options set with :meth:`set_options` apply to the next :meth:`reset`.

    Attributes and methods reached through :meth:`get_attr`, :meth:`set_attr` and
    :meth:`env_method` are those of the one native env (shared by all indices); ``env_method``
    calls it once and returns its result for each index, except ``"render"``, which returns each
    env's frame.

    Args:
        env: the native vector env; if ``None``, one is built from ``num_envs`` and
            ``env_kwargs`` (the single env's arguments).
        num_envs: number of envs when ``env`` is not given.
        reward_terms_in_info: add each env's per-term reward breakdown to its info dict.
        **env_kwargs: arguments of :class:`~melody_env.MelodyCompositionVectorEnv`.
    """

    def __init__(
        self,
        env: MelodyCompositionVectorEnv | None = None,
        *,
        num_envs: int | None = None,
        reward_terms_in_info: bool = False,
        **env_kwargs: Any,
    ) -> None:
        if env is None:
            env = MelodyCompositionVectorEnv(1 if num_envs is None else num_envs, **env_kwargs)
        elif num_envs is not None or env_kwargs:
            raise ValueError("pass either a built env or num_envs and env arguments, not both")
        native = getattr(env, "unwrapped", env)
        if not isinstance(native, MelodyCompositionVectorEnv) or native is not env:
            raise TypeError(
                f"MelodySB3VecEnv adapts an unwrapped MelodyCompositionVectorEnv, got {env!r}"
            )
        self.env = env
        self.reward_terms_in_info = reward_terms_in_info
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None

    # --- VecEnv API ----------------------------------------------------------------------------

    def reset(self) -> np.ndarray:
        seeds = None if all(seed is None for seed in self._seeds) else list(self._seeds)
        obs, info = self.env.reset(seed=seeds, options=self._vector_options())
        self.reset_infos = self._split_reset_info(info)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("call step_async(actions) before step_wait()")
        obs, rewards, terminated, truncated, info = self.env.step(self._actions)
        self._actions = None
        infos = self._split_step_info(info)
        dones = terminated | truncated
        if dones.any():
            if not dones.all():  # pragma: no cover - lockstep compositions end together
                raise RuntimeError("MelodySB3VecEnv expects all compositions to end together")
            for index, env_info in enumerate(infos):
                env_info["terminal_observation"] = obs[index]
                env_info["TimeLimit.truncated"] = bool(truncated[index] and not terminated[index])
            obs, reset_info = self.env.reset()
            self.reset_infos = self._split_reset_info(reset_info)
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.env.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self.render_mode != "rgb_array":
            return [None] * self.num_envs
        return list(self.env.render())

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.env, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if sorted(self._get_indices(indices)) != list(range(self.num_envs)):
            raise ValueError(
                f"cannot set {attr_name!r} for some envs only: the {self.num_envs} envs of "
                "MelodySB3VecEnv share one native env; pass indices=None"
            )
        setattr(self.env, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        indices = list(self._get_indices(indices))
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        if method_name == "render" and result is not None:
            return [result[index] for index in indices]
        return [result for _ in indices]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    # --- Internals -----------------------------------------------------------------------------

    def _vector_options(self) -> dict[str, Any] | None:
        """SB3's per-env option dicts as the native env's options (lists are per env)."""
        per_env = self._options
        names = sorted({name for options in per_env for name in options})
        if not names:
            return None
        defaults = {"key": self.env.key, "primer": self.env.primer}
        options = {}
        for name in names:
            values = [options_i.get(name, defaults.get(name)) for options_i in per_env]
            options[name] = values
        return options

    def _split_step_info(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        music_theory = info["music_theory"].tolist()
        log_prob = info["log_prob"].tolist()
        infos = [
            {"music_theory": value, "log_prob": lp}
            for value, lp in zip(music_theory, log_prob, strict=True)
        ]
        if self.reward_terms_in_info:
            names = list(self.env.reward_function.weights)
            columns = [info["reward_terms"][name].tolist() for name in names]
            for env_info, row in zip(infos, zip(*columns, strict=True), strict=True):
                env_info["reward_terms"] = dict(zip(names, row, strict=True))
        return infos

    def _split_reset_info(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "prior_log_probs": info["prior_log_probs"][index],
                "key": info["key"][index],
                "primer": np.asarray(info["primer"][index]),
            }
            for index in range(self.num_envs)
        ]
