"""Gymnasium and Stable-Baselines3 adapters over the batched physics.

Importing this module registers ``hydrorl/Cascade-v0``::

    import gymnasium, hydrorl
    env = gymnasium.make("hydrorl/Cascade-v0")                 # the embedded demo
    env = gymnasium.make("hydrorl/Cascade-v0", problem=wb.problem("Demo forecast"))
"""

import gymnasium

from hydrorl.env.cascade_env import CascadeEnv
from hydrorl.env.vec_env import CascadeVecEnv

ENV_ID = "hydrorl/Cascade-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="hydrorl.env.cascade_env:CascadeEnv")

__all__ = ["ENV_ID", "CascadeEnv", "CascadeVecEnv"]
