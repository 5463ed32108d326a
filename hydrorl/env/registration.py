"""The gymnasium id of HydroRL's environment, registered by ``import hydrorl``.

Only gymnasium itself is imported here (the environment's module is named by its
import path), so that ``import hydrorl`` then ``gymnasium.make("hydrorl/Cascade-v0")``
works in either import order at the cost of gymnasium's import, never torch's.
"""

from __future__ import annotations

import gymnasium

ENV_ID = "hydrorl/Cascade-v0"
ENTRY_POINT = "hydrorl.env.cascade_env:CascadeEnv"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point=ENTRY_POINT)
