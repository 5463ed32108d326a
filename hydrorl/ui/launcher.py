"""Start and stop training runs: project, forecast, algorithm, budget and start volumes."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from hydrorl.demo import count
from hydrorl.errors import HydroRLError, NotFoundError
from hydrorl.project import ALGORITHMS, TrainingSettings
from hydrorl.protocol import WorkbenchVerbs
from hydrorl.ui.agent_table import UNKNOWN, agent_table
from hydrorl.ui.text import alert, html_text, text_pane


class RunLauncher(pn.viewable.Viewer):
    """Choose what to train and press Start: the processes start in the background at once."""

    project = param.Selector(objects=[], doc="Project (fixes the hydro system)")
    forecast = param.Selector(objects=[], doc="Forecast of the project's system")
    algorithm = param.Selector(default=TrainingSettings.algorithm, objects=list(ALGORITHMS))
    agents = param.Integer(default=TrainingSettings.agents, bounds=(1, 32))
    timesteps = param.Integer(default=100_000, bounds=(1, None))
    run_id = param.Integer(default=None, allow_None=True, doc="The run started or selected last")
    message = param.String(default="")
    failed = param.Boolean(default=False, doc="The message says what went wrong")

    def __init__(self, workbench: WorkbenchVerbs, **params: object) -> None:
        self.workbench = workbench
        self.volume_sliders: dict[str, pn.widgets.FloatSlider] = {}
        self._sliders = pn.Column()
        self._agents = pn.pane.DataFrame(
            agent_table(pd.DataFrame()), index=False, na_rep=UNKNOWN, sizing_mode="stretch_width"
        )
        super().__init__(**params)
        self.start_button = pn.widgets.Button(name="Start", button_type="primary")
        self.stop_button = pn.widgets.Button(name="Stop run", button_type="danger")
        self.agent_choice = pn.widgets.IntInput(name="Agent", value=0, start=0, width=80)
        self.stop_agent_button = pn.widgets.Button(name="Stop agent", button_type="warning")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.stop_agent_button.on_click(lambda _: self.stop(self.agent_choice.value))
        self.resume_button = pn.widgets.Button(name="Resume run")
        self.resume_button.on_click(lambda _: self.resume())
        self.evaluate_button = pn.widgets.Button(name="Evaluate best agent", button_type="success")
        self.evaluate_button.on_click(lambda _: self.evaluate())
        self.run_select = pn.widgets.Select(name="Run", options={}, width=340)
        self.run_select.param.watch(lambda e: setattr(self, "run_id", e.new), "value")
        self.reload()
        self.reload_runs()
        if self.run_id is None and self.run_select.options:
            self.run_id = list(self.run_select.options.values())[-1]  # the newest, after a reload

    def reload_runs(self) -> None:
        """The training runs to choose from, newest last; keeps the selection."""
        runs = self.workbench.runs()
        if not runs.empty:
            runs = runs[runs["kind"] == "train"]
        self.run_select.options = {
            f"run {r.id} · {r.project} · {r.forecast}": int(r.id) for r in runs.itertuples()
        }
        self._select_run()

    @param.depends("run_id", watch=True)
    def _select_run(self) -> None:
        if self.run_id in self.run_select.options.values():
            self.run_select.value = self.run_id

    def reload(self) -> None:
        """Read projects and forecasts again (after an upload, say)."""
        names = list(self.workbench.projects()["name"])
        self.param.project.objects = names
        if names and self.project not in names:
            self.project = names[0]
        else:
            self._on_project()

    @param.depends("project", watch=True)
    def _on_project(self) -> None:
        if self.project is None:
            return
        info = self.workbench.project(self.project)
        forecasts = list(self.workbench.forecasts(info.system)["name"])
        self.param.forecast.objects = forecasts
        self.forecast = forecasts[0] if forecasts else None
        s = info.settings
        self.algorithm, self.agents, self.timesteps = s.algorithm, s.agents, s.timesteps
        self.volume_sliders = {
            r.name: pn.widgets.FloatSlider(
                name=f"{r.name} start volume (Mm³)",
                start=r.min_volume_mm3,
                end=r.max_volume_mm3,
                value=(r.min_volume_mm3 + r.max_volume_mm3) / 2,
                step=(r.max_volume_mm3 - r.min_volume_mm3) / 100,
            )
            for r in self.workbench.system(info.system).reservoirs
        }
        self._sliders[:] = list(self.volume_sliders.values())

    def start(self) -> int | None:
        """Start a run with the chosen settings; errors are shown, not raised."""
        try:
            run = self.workbench.start_training(
                self.project,
                self.forecast,
                algorithm=self.algorithm,
                agents=self.agents,
                timesteps=self.timesteps,
                start_volumes={n: w.value for n, w in self.volume_sliders.items()},
            )
        except HydroRLError as e:
            self._say(f"Not started: {e}", error=True)
            return None
        self.run_id = run.id
        self.reload_runs()
        self._say(f"Run {run.id} started: {count(self.agents, 'agent')} in the background.")
        self.refresh()
        return run.id

    def stop(self, agent: int | None = None) -> None:
        if self.run_id is None:
            self._say("No run to stop.", error=True)
            return
        try:
            self.workbench.stop(self.run_id, agent)
        except HydroRLError as e:
            self._say(f"Not stopped: {e}", error=True)
            return
        what = f"agent {agent} of run {self.run_id}" if agent is not None else f"run {self.run_id}"
        self._say(f"Stop requested for {what}.")

    def resume(self) -> None:
        """Go on with a stopped or failed run from its agents' last checkpoints."""
        if self.run_id is None:
            self._say("No run to resume.", error=True)
            return
        try:
            self.workbench.resume(self.run_id)
        except HydroRLError as e:
            self._say(f"Not resumed: {e}", error=True)
            return
        self._say(f"Run {self.run_id} resumed from its checkpoints.")
        self.refresh()

    def evaluate(self) -> int | None:
        """Evaluate the run's best agent on every scenario of its forecast, in the background."""
        if self.run_id is None:
            self._say("No run to evaluate.", error=True)
            return None
        try:
            evaluation = self.workbench.evaluate(self.run_id)
        except HydroRLError as e:
            self._say(f"Not evaluated: {e}", error=True)
            return None
        self._say(
            f"Evaluation {evaluation.id} of run {self.run_id} started: its episodes appear in "
            "the Episodes tab as they finish."
        )
        return evaluation.id

    def _say(self, text: str, error: bool = False) -> None:
        self.failed = error
        self.message = text

    def refresh(self) -> None:
        if self.run_id is None:
            return
        try:
            self.workbench.run(self.run_id)
        except NotFoundError:  # deleted in another page or session
            self._run_gone()
            return
        self._agents.object = agent_table(self.workbench.agents(self.run_id))
        self.param.trigger("message")

    def _run_gone(self) -> None:
        """The run shown was deleted elsewhere: show the newest one left (or none), say so."""
        gone = self.run_id
        self.reload_runs()
        runs = list(self.run_select.options.values())
        self.run_id = runs[-1] if runs else None
        self._agents.object = agent_table(pd.DataFrame())
        self._say(f"Run {gone} was deleted (in another page or session).")

    @param.depends("message", "run_id")
    def _message(self) -> pn.Column:
        # Messages quote names and errors, the status line a run's reason: all shown as text.
        said = text_pane(html_text(self.message))
        if self.failed and self.message:
            said = alert(self.message, "danger")
        status = ""
        if self.run_id is None:
            status = (
                "No run yet: choose the settings on the left and press <strong>Start</strong>. "
                "The agents learn in background processes (closing this page does not stop "
                "them); their curves appear below within a minute, the validation value first."
            )
        if self.run_id is not None:
            try:
                info = self.workbench.run(self.run_id)
            except NotFoundError:
                status = f"Run {self.run_id} no longer exists."
            else:
                reason = html_text(info.status_reason or "")
                status = f"Run {info.id}: <strong>{html_text(info.status)}</strong> {reason}"
        return pn.Column(said, text_pane(status), sizing_mode="stretch_width")

    def start_refresh(self) -> None:
        """Show the agents' progress every two seconds (one loop per launcher)."""
        if getattr(self, "_callback", None) is None:
            self._callback = pn.state.add_periodic_callback(self.refresh, period=2000)

    def stop_refresh(self) -> None:
        if getattr(self, "_callback", None) is not None:
            self._callback.stop()
            self._callback = None

    def __panel__(self) -> pn.viewable.Viewable:
        self.start_refresh()
        settings = pn.Param(
            self.param,
            parameters=["project", "forecast", "algorithm", "agents", "timesteps"],
            show_name=False,
        )
        # The run and its agents beside the settings, or below them where the page (a
        # notebook's column) has no room for both: no row wider than the page.
        return pn.FlexBox(
            pn.Column(
                settings,
                self._sliders,
                pn.Row(self.start_button, self.stop_button, self.resume_button),
                pn.Row(self.agent_choice, self.stop_agent_button),
                self.evaluate_button,
                width=360,
            ),
            pn.Column(
                self.run_select,
                self._message,
                self._agents,
                sizing_mode="stretch_width",
                styles={"flex": "1 1 340px"},  # the rest of the row, at least the run's width
            ),
        )
