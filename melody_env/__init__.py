"""melody-rl's environment package: music theory, rewards, the Note RNN and the Gymnasium env.

Importing it registers ``melody_env/MelodyComposition-v0`` (``gymnasium.make_vec`` gives the native
:class:`MelodyCompositionVectorEnv` by default).
"""

from gymnasium.envs.registration import register, registry

from melody_env.envs.env_config import EnvConfig
from melody_env.envs.melody_composition import MelodyCompositionEnv
from melody_env.envs.vector import MelodyCompositionVectorEnv
from melody_env.music.keys import KEY_NAMES, Key

__all__ = [
    "ENV_ID",
    "KEY_NAMES",
    "EnvConfig",
    "Key",
    "MelodyCompositionEnv",
    "MelodyCompositionVectorEnv",
]
__version__ = "0.1.0"

ENV_ID = "melody_env/MelodyComposition-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="melody_env.envs.melody_composition:MelodyCompositionEnv",
        vector_entry_point="melody_env.envs.vector:MelodyCompositionVectorEnv",
    )
