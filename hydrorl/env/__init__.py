"""Gymnasium and Stable-Baselines3 adapters over the batched physics.

Importing this module registers ``hydrorl/Cascade-v0`` (so does ``import
hydrorl`` when gymnasium is imported before it)::

    import gymnasium, hydrorl
    env = gymnasium.make("hydrorl/Cascade-v0")                 # the embedded demo
    env = gymnasium.make("hydrorl/Cascade-v0", problem=wb.problem("Demo forecast"))

:class:`CascadeVecEnv` is an SB3 ``VecEnv``; it is imported on first use, so that
the gymnasium environment alone does not import torch and Stable-Baselines3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium

from hydrorl.env.cascade_env import CascadeEnv

if TYPE_CHECKING:
    from hydrorl.env.vec_env import CascadeVecEnv

ENV_ID = "hydrorl/Cascade-v0"
ENTRY_POINT = "hydrorl.env.cascade_env:CascadeEnv"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point=ENTRY_POINT)

__all__ = ["ENV_ID", "CascadeEnv", "CascadeVecEnv"]


def __getattr__(name: str) -> Any:
    if name == "CascadeVecEnv":
        from hydrorl.env.vec_env import CascadeVecEnv

        return CascadeVecEnv
    raise AttributeError(f"module 'hydrorl.env' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
