"""Browse the episodes of an evaluation run: a table, then one scenario's trajectories."""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh options used below)
import pandas as pd
import panel as pn
import param

from hydrorl.workbench import Workbench


def episode_table(episodes: pd.DataFrame) -> pd.DataFrame:
    """The episodes as users read them: MEUR and shares in %."""
    if episodes.empty:
        return episodes
    return pd.DataFrame(
        {
            "scenario": episodes["scenario"],
            "agent": episodes["agent"],
            "value (MEUR)": (episodes["total_eur"] / 1e6).round(2),
            "bound (MEUR)": (episodes["bound_eur"] / 1e6).round(2),
            "benchmark (MEUR)": (episodes["benchmark_eur"] / 1e6).round(2),
            "planner (MEUR)": (episodes["planner_eur"] / 1e6).round(2),
            "% of bound": (100 * episodes["share_of_bound"]).round(1),
            "vs benchmark (%)": (100 * episodes["vs_benchmark"]).round(1),
            "vs best classical (%)": (100 * episodes["vs_best_classical"]).round(1),
        }
    )


def episode_plots(series: pd.DataFrame) -> hv.Layout:
    """Volumes (agent, bound, benchmark), discharge and spill, price and reward, daily means."""
    daily = series.resample("D").mean()
    width = {"responsive": True, "height": 220}
    layers = []
    for column in daily.columns:
        # "volume_mm3:<reservoir>" (the agent) or "<who>:volume_mm3:<reservoir>": a
        # reservoir's name may hold colons of its own.
        if column.startswith("volume_mm3:"):
            who, reservoir = "agent", column.removeprefix("volume_mm3:")
        else:
            who, _, reservoir = column.partition(":volume_mm3:")
        if reservoir:
            layers.append(
                hv.Curve(
                    (daily.index, daily[column]),
                    "time",
                    "volume (Mm³)",
                    label=f"{who}: {reservoir}",
                )
            )
    volumes = hv.Overlay(layers).opts(title="Volumes", legend_position="right", **width)
    flows = hv.Overlay(
        [
            hv.Curve((daily.index, daily[c]), "time", "flow (m³/s)", label=c.replace("_m3s", ""))
            for c in daily.columns
            if c.startswith(("discharge_m3s:", "spill_m3s:"))
        ]
    ).opts(title="Discharge and spill (agent)", legend_position="right", **width)
    price = hv.Curve((daily.index, daily["price_eur_mwh"]), "time", "price (EUR/MWh)").opts(
        title="Price", **width
    )
    reward = hv.Curve(
        (daily.index, series["revenue_eur"].resample("D").sum()), "time", "revenue (EUR/day)"
    ).opts(title="Revenue", **width)
    return (volumes + flows + price + reward).cols(1)


class EpisodeBrowser(pn.viewable.Viewer):
    """Pick an evaluation run and a scenario; compare the agent with the bound and the benchmark."""

    run_id = param.Selector(objects=[], doc="Evaluation run")
    scenario = param.Selector(objects=[], doc="Scenario")

    def __init__(self, workbench: Workbench, **params: object) -> None:
        self.workbench = workbench
        self.episodes = pd.DataFrame()
        self._table = pn.pane.DataFrame(pd.DataFrame(), index=False, sizing_mode="stretch_width")
        self._plots = pn.pane.HoloViews(sizing_mode="stretch_width")
        super().__init__(**params)
        self.reload()

    def reload(self) -> None:
        runs = self.workbench.runs()
        done = runs[(runs["kind"] == "evaluate") & (runs["status"] == "completed")]
        ids = [int(i) for i in done["id"]]
        self.param.run_id.objects = ids
        if ids and self.run_id not in ids:
            self.run_id = ids[-1]

    @param.depends("run_id", watch=True, on_init=True)
    def _on_run(self) -> None:
        if self.run_id is None:
            return
        self.episodes = self.workbench.episodes(self.run_id)
        self._table.object = episode_table(self.episodes)
        names = list(self.episodes["scenario"])
        self.param.scenario.objects = names
        self.scenario = names[0] if names else None

    @param.depends("scenario", watch=True)
    def _on_scenario(self) -> None:
        if self.scenario is None or self.episodes.empty:
            return
        row = self.episodes[self.episodes["scenario"] == self.scenario].iloc[0]
        self._plots.object = episode_plots(self.workbench.episode_series(int(row["id"])))

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(
                pn.widgets.Select.from_param(self.param.run_id, name="Evaluation run"),
                pn.widgets.Select.from_param(self.param.scenario),
            ),
            self._table,
            self._plots,
            sizing_mode="stretch_width",
        )
