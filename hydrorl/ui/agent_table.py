"""The agents table of the monitor: each agent's phase, progress, time left and best score.

Plain computation on the frame :meth:`hydrorl.Workbench.agents` returns, no Panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: What the agents table shows where a value is not known (yet): no ETA, no validation.
UNKNOWN = "—"
AGENT_COLUMNS = [
    "agent",
    "status",
    "phase",
    "progress (%)",
    "ETA",
    "best validation (% of bound)",
    "reason",
]


def eta_text(seconds: float | None) -> str:
    """``seconds`` left as read at a glance: ``45 s``, ``3 min 20 s``, ``2 h 05 min``; ``—``
    where unknown (NaN: the agent is not learning or its rate is not measured yet)."""
    if seconds is None or not np.isfinite(seconds) or seconds < 0:
        return UNKNOWN
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def agent_table(agents: pd.DataFrame) -> pd.DataFrame:
    """The agents as the monitor lists them, from :meth:`Workbench.agents`: what each does
    (its phase), how far it is, the time left from its measured rate, its best validation.

    The ETA is the workbench's (the rate over the last minute of learning, so start-up and
    imitation do not count), shown as text; unknown values are left NaN for the pane to show
    as :data:`UNKNOWN`.
    """
    if agents.empty:
        return pd.DataFrame(columns=AGENT_COLUMNS)
    return pd.DataFrame(
        {
            "agent": agents["index"],
            "status": agents["status"],
            "phase": agents["phase"],
            "progress (%)": (100 * pd.to_numeric(agents["progress"]).astype(float)).round(1),
            "ETA": [eta_text(float(s)) for s in pd.to_numeric(agents["eta_s"])],
            "best validation (% of bound)": (
                100 * pd.to_numeric(agents["best_validation"]).astype(float)
            ).round(1),
            "reason": agents["status_reason"].fillna(""),
        }
    )
