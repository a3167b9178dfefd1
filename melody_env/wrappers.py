"""Small, single-purpose wrappers of the melody env.

:class:`InKeyActionMask` gives the env the ``action_masks()`` method that sb3-contrib's
``MaskablePPO`` asks for: it allows the hold and the rest always and a note only if its pitch
class is in the episode's key. Request it at make-time by wrapping::

    env = InKeyActionMask(gym.make("melody_env/MelodyComposition-v0", key="D minor"))

or with ``make_masked(key="D minor")``, which does both steps. The mask is read from the
observation (its last 14 entries are the key's tonic and mode, see
:mod:`melody_env.envs.observation`), so it follows ``reset(options={"key": ...})`` and works on
a batch of observations too
(:func:`in_key_action_mask`), which is how the vector env and evaluation get their masks.

>>> import gymnasium as gym
>>> from melody_env.models import NoteRNN
>>> env = make_masked(key="C major", reward_rnn=NoteRNN(seed=0))
>>> obs, info = env.reset(seed=0)
>>> mask = env.action_masks()
>>> mask.shape, bool(mask[0] and mask[1]), int(mask.sum())  # hold, rest + 21 white keys
((38,), True, 23)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from melody_env.music.encoding import MIN_PITCH, NUM_CLASSES, NUM_SPECIAL_EVENTS
from melody_env.music.keys import MODES, Key

KEY_FEATURES = 12 + len(MODES)
"""The observation's last entries: one-hot tonic (12) and mode (2)."""
_PITCH_CLASSES = (MIN_PITCH + np.arange(NUM_CLASSES - NUM_SPECIAL_EVENTS)) % 12
_KEY_TABLE = np.ones((12, len(MODES), NUM_CLASSES), dtype=bool)
for _tonic in range(12):
    for _mode_index, _mode in enumerate(MODES):
        _KEY_TABLE[_tonic, _mode_index, NUM_SPECIAL_EVENTS:] = Key(_tonic, _mode).scale_mask[
            _PITCH_CLASSES
        ]


def key_action_mask(key: str | Key) -> np.ndarray:
    """``bool [38]``: True for hold, rest and the notes of ``key``.

    >>> key_action_mask("G major")[[0, 1, 2, 8, 9]].tolist()  # hold, rest, C3, F#3, G3
    [True, True, True, True, True]
    >>> bool(key_action_mask("G major")[7])  # F3 is not in G major
    False
    """
    key = Key.from_name(key)
    return _KEY_TABLE[key.tonic, MODES.index(key.mode)].copy()


def in_key_action_mask(observation: np.ndarray) -> np.ndarray:
    """The in-key mask of each observation: ``bool [..., 38]`` for observations ``[..., D]``.

    Raises:
        ValueError: an observation whose key entries are not one-hot.
    """
    obs = np.asarray(observation)
    if obs.ndim < 1 or obs.shape[-1] <= KEY_FEATURES or not np.issubdtype(obs.dtype, np.number):
        raise ValueError(
            f"observations must be numeric arrays [..., D] with D > {KEY_FEATURES}, got shape "
            f"{obs.shape} and dtype {obs.dtype}; is this a melody_env observation?"
        )
    tonic_part = obs[..., -KEY_FEATURES : -len(MODES)]
    mode_part = obs[..., -len(MODES) :]
    if not (np.all(tonic_part.sum(axis=-1) == 1) and np.all(mode_part.sum(axis=-1) == 1)):
        raise ValueError(
            "observation's last 14 entries are not a one-hot key (tonic, mode); is this a "
            "melody_env observation?"
        )
    return _KEY_TABLE[tonic_part.argmax(axis=-1), mode_part.argmax(axis=-1)]


class InKeyActionMask(gym.Wrapper):
    """Adds ``action_masks()``: hold and rest always allowed, notes only in the episode's key.

    The env's dynamics and reward are unchanged (a masked-out note stays a valid action with its
    usual ``key`` penalty); only an agent that reads the mask, such as ``MaskablePPO``, is kept
    in key.

    Args:
        env: a melody env (its observations end with the key's one-hot tonic and mode).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._mask: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._mask = in_key_action_mask(obs)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._mask = in_key_action_mask(obs)
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """``bool [38]`` for the current step (call :meth:`reset` first)."""
        if self._mask is None:
            raise RuntimeError("call reset() before action_masks()")
        return self._mask.copy()


def make_masked(env_id: str = "melody_env/MelodyComposition-v0", **kwargs: Any) -> gym.Env:
    """``InKeyActionMask(gymnasium.make(env_id, **kwargs))``."""
    import melody_env  # noqa: F401  (registers the id)

    return InKeyActionMask(gym.make(env_id, **kwargs))
