"""Importable helpers for tests whose code runs inside HydroRL's worker processes."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback


class Exploding(BaseCallback):
    """A user callback that fails after a few steps, as user code sometimes does."""

    def _on_step(self) -> bool:
        if self.num_timesteps >= 64:
            raise RuntimeError("boom from a user callback")
        return True
