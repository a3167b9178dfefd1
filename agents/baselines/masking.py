"""In-key action masks for MaskablePPO on the batched env, in training and in evaluation.

sb3-contrib asks a ``VecEnv`` for ``env_method("action_masks")``, one mask per env. The batched
:class:`~agents.sb3_vec_env.MelodySB3VecEnv` is one native env behind all indices, so
:class:`VecInKeyActionMask` answers that call from the last observations instead
(:func:`melody_env.wrappers.in_key_action_mask`; with single envs in a ``DummyVecEnv``,
:class:`melody_env.wrappers.InKeyActionMask` does the same per env).

:class:`~melody_env.evaluation.policies.MaskedPolicy` (re-exported here) gives a trained
``MaskablePPO`` the masks at prediction time, so the evaluation suite, which calls
``predict(obs, state, episode_start, deterministic)`` only, samples from the same masked
distribution the model was trained with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from melody_env.evaluation.policies import MaskedPolicy
from melody_env.wrappers import in_key_action_mask

__all__ = ["MaskedPolicy", "VecInKeyActionMask"]


class VecInKeyActionMask(VecEnvWrapper):
    """Answers ``env_method("action_masks")`` with each env's in-key mask.

    Args:
        venv: a vectorised melody env (its observations end with the key's one-hot).
    """

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self._obs: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        self._obs = self.venv.reset()
        return self._obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self._obs = obs
        return obs, rewards, dones, infos

    def action_masks(self) -> np.ndarray:
        """``bool [num_envs, 38]`` for the current observations."""
        if self._obs is None:
            raise RuntimeError("call reset() before action_masks()")
        return in_key_action_mask(self._obs)

    def has_attr(self, attr_name: str) -> bool:
        return attr_name == "action_masks" or self.venv.has_attr(attr_name)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[index] for index in self._get_indices(indices)]
        return self.venv.env_method(method_name, *method_args, indices=indices, **method_kwargs)

    def _get_indices(self, indices: VecEnvIndices):
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices
