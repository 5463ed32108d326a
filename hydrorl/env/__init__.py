"""Gymnasium and Stable-Baselines3 adapters over the batched physics.

``import hydrorl`` registers ``hydrorl/Cascade-v0`` (see ``registration``)::

    import gymnasium, hydrorl
    env = gymnasium.make("hydrorl/Cascade-v0")                 # the embedded demo
    env = gymnasium.make("hydrorl/Cascade-v0", problem=wb.problem("Demo forecast"))

:class:`CascadeVecEnv` is an SB3 ``VecEnv``; it is imported on first use, so that
the gymnasium environment alone does not import torch and Stable-Baselines3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hydrorl.env.cascade_env import CascadeEnv

if TYPE_CHECKING:
    from hydrorl.env.vec_env import CascadeVecEnv

from hydrorl.env.registration import ENV_ID

__all__ = ["ENV_ID", "CascadeEnv", "CascadeVecEnv"]


def __getattr__(name: str) -> Any:
    if name == "CascadeVecEnv":
        from hydrorl.env.vec_env import CascadeVecEnv

        return CascadeVecEnv
    raise AttributeError(f"module 'hydrorl.env' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
