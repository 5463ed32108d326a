"""The runs table: every run with what it ran with and how well, to sort, filter and compare.

As in W&B's or MLflow's runs view: one row per run (project, forecast, algorithm, key
settings, hyper-parameters, start, duration, status, best validation and evaluation as a
share of the bound), header filters and sorting in the page, several runs selected at once to
compare their curves (marked when they learnt on different forecasts) and their settings side
by side, and a run, forecast or project renamed or deleted after an in-page confirmation.

The frames shown are plain computation on :meth:`hydrorl.Workbench.runs` (:func:`runs_view`,
:func:`settings_table`); the component only shows them and calls the workbench.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from hydrorl.errors import HydroRLError
from hydrorl.protocol import WorkbenchVerbs
from hydrorl.ui.agent_table import UNKNOWN
from hydrorl.ui.curves import forecast_warning
from hydrorl.ui.text import alert, html_text, text_block

#: The table's columns, in order; numbers stay numbers so that they sort as numbers.
COLUMNS = [
    "run",
    "name",
    "project",
    "forecast",
    "kind",
    "algorithm",
    "status",
    "validation %",
    "evaluation %",
    "timesteps",
    "agents",
    "started (UTC)",
    "duration (min)",
    "hyper-parameters",
    "reason",
]
_NUMBERS = {
    "validation %": "0.0",
    "evaluation %": "0.0",
    "timesteps": "0,0",
    "duration (min)": "0,0.0",
}
#: Long cells are cut to these widths (px); the whole text is in the settings below the table.
_WIDTHS = {"name": 160, "hyper-parameters": 260, "reason": 220}
_KINDS = {"train": "training", "evaluate": "evaluation"}


def hyperparameter_text(hyperparameters: Mapping[str, Any]) -> str:
    """``batch_size=64, learning_rate=0.0003``: a run's hyper-parameters in one cell, by name."""
    return ", ".join(f"{k}={_value_text(v)}" for k, v in sorted(hyperparameters.items()))


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def runs_view(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs as the table lists them (:data:`COLUMNS`), from :meth:`Workbench.runs`:
    ``validation %`` is a training run's best agent on its held-aside scenarios, ``evaluation
    %`` an evaluation's mean over its scenarios, both as a share of the perfect-foresight
    bound of the same scenarios."""
    if runs.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    started = pd.to_datetime(runs["started_at"])
    return pd.DataFrame(
        {
            "run": runs["id"].astype(int),
            "name": [n if isinstance(n, str) else "" for n in runs["name"]],
            "project": runs["project"].astype(str),
            "forecast": runs["forecast"].astype(str),
            "kind": [_KINDS.get(k, k) for k in runs["kind"]],
            "algorithm": [a if isinstance(a, str) else "" for a in runs["algorithm"]],
            "status": runs["status"].astype(str),
            "validation %": (100 * runs["best_validation"].astype(float)).round(1),
            "evaluation %": (100 * runs["share_of_bound"].astype(float)).round(1),
            "timesteps": pd.to_numeric(runs["timesteps"]).astype(float),
            "agents": runs["agents"].astype(int),
            "started (UTC)": [t.strftime("%Y-%m-%d %H:%M") if pd.notna(t) else "" for t in started],
            "duration (min)": (pd.to_numeric(runs["duration_s"]).astype(float) / 60).round(1),
            "hyper-parameters": [hyperparameter_text(h) for h in runs["hyperparameters"]],
            "reason": runs["status_reason"].fillna("").astype(str),
        }
    ).reset_index(drop=True)


def _flat(settings: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Settings with nested mappings (hyper-parameters) spelled ``hyperparameters.n_steps``."""
    flat: dict[str, str] = {}
    for key_, value in settings.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flat(value, f"{prefix}{key_}."))
        elif isinstance(value, list | tuple):
            flat[prefix + key_] = ", ".join(map(_value_text, value))
        else:
            flat[prefix + key_] = _value_text(value)
    return flat


def run_label(run_id: int, name: Any) -> str:
    """``run 3 'baseline'`` or ``run 3``."""
    return f"run {run_id} '{name}'" if isinstance(name, str) and name else f"run {run_id}"


def settings_table(runs: pd.DataFrame, run_ids: Sequence[int]) -> pd.DataFrame:
    """The settings of the chosen runs side by side, one row per setting (hyper-parameters
    spelled out), those that differ between the runs first (marked in ``differs``); one
    column per run.

    A setting a run does not have (an older run, another algorithm's hyper-parameter) is
    :data:`~hydrorl.ui.agent_table.UNKNOWN` there.
    """
    chosen = runs.set_index("id").loc[[i for i in run_ids if i in set(runs["id"])]]
    if chosen.empty:
        return pd.DataFrame(columns=["setting"])
    columns = {  # (by id only: Tabulator shows its titles as HTML, and names are anyone's)
        f"run {int(i)}": _flat({k: v for k, v in row["settings"].items() if k not in ("agent_id",)})
        for i, row in chosen.iterrows()
    }
    keys = sorted({k for flat in columns.values() for k in flat})
    table = pd.DataFrame(
        {label: [flat.get(k, UNKNOWN) for k in keys] for label, flat in columns.items()},
        index=keys,
    )
    differs = table.nunique(axis=1) > 1
    if len(columns) == 1:
        return table.rename_axis("setting").reset_index()
    table = table.assign(differs=np.where(differs, "≠", ""))
    order = np.lexsort((np.arange(len(table)), ~differs.to_numpy()))
    table = table.iloc[order].rename_axis("setting").reset_index()
    return table[["setting", "differs", *columns]]


class RunsTable(pn.viewable.Viewer):
    """Every run in one sortable, filterable table; select runs to compare, rename or delete.

    ``Compare`` puts the ids of the selected training runs in :attr:`compared` (the first is
    the run watched, the others are drawn beside it) and, with ``embed_monitor``, opens them
    in a :class:`~hydrorl.ui.monitor.TrainingMonitor` below the table; runs that learnt on
    different forecasts are marked, here and in the monitor.  Rename and Delete ask first, in
    the page; so do the renames and deletes of forecasts and projects below the table (a
    deleted forecast or project takes its runs with it, which the question says).  Whatever
    was renamed or deleted bumps :attr:`changes`, for the pages showing those objects.

    While shown (:meth:`start`) it reads the runs again every ``period_ms``; a hidden page
    calls :meth:`stop`.
    """

    selection = param.List(default=[], item_type=int, doc="Ids of the runs selected")
    compared = param.List(default=[], item_type=int, doc="Runs opened to compare (first: watched)")
    message = param.String(default="", doc="What the last action did, or why it did not")
    failed = param.Boolean(default=False, doc="The message says what went wrong")
    question = param.String(default="", doc="What the pending confirmation asks")
    note = param.String(default="", doc="What a comparison of the selection would not show")
    changes = param.Integer(default=0, doc="Bumped after every rename or delete")
    period_ms = param.Integer(default=2000, bounds=(200, None))

    def __init__(
        self, workbench: WorkbenchVerbs, *, embed_monitor: bool = True, **params: object
    ) -> None:
        self.workbench = workbench
        self.runs = pd.DataFrame()
        self.embed_monitor = embed_monitor
        self.monitor: Any = None
        self._pending: Callable[[], str] | None = None
        self._callback: pn.io.PeriodicCallback | None = None
        self._syncing = False
        super().__init__(**params)
        self.table = pn.widgets.Tabulator(
            runs_view(pd.DataFrame()),
            selectable="checkbox",
            show_index=False,
            disabled=True,
            pagination="local",
            page_size=15,
            header_filters=self._header_filters(),
            formatters={
                c: NumberFormatter(format=f, nan_format=UNKNOWN) for c, f in _NUMBERS.items()
            },
            layout="fit_data_table",
            widths=dict(_WIDTHS),
            frozen_columns=["run"],
            sizing_mode="stretch_width",
        )
        self.table.param.watch(self._on_table_selection, "selection")
        self.compare_button = pn.widgets.Button(
            label="Compare", color="primary", disabled=True, width=120
        )
        self.name_input = pn.widgets.TextInput(
            label="New name", placeholder="a name for the run", width=220
        )
        self.rename_button = pn.widgets.Button(label="Rename", disabled=True, width=110)
        self.delete_button = pn.widgets.Button(
            label="Delete", color="danger", disabled=True, width=110
        )
        self.confirm_button = pn.widgets.Button(label="Yes, go ahead", color="danger")
        self.cancel_button = pn.widgets.Button(label="Cancel", color="light")
        self.compare_button.on_click(lambda _: self.compare())
        self.rename_button.on_click(lambda _: self.ask_rename(self.name_input.value))
        self.delete_button.on_click(lambda _: self.ask_delete())
        self.confirm_button.on_click(lambda _: self.confirm())
        self.cancel_button.on_click(lambda _: self.cancel())
        # Forecasts and projects: pick one, rename or delete it.
        self.object_select = pn.widgets.Select(label="Forecast or project", options={}, width=320)
        self.object_name_input = pn.widgets.TextInput(
            label="New name", placeholder="a new name", width=220
        )
        self.rename_object_button = pn.widgets.Button(label="Rename", width=110)
        self.delete_object_button = pn.widgets.Button(label="Delete", color="danger", width=110)
        self.rename_object_button.on_click(
            lambda _: self.ask_rename_object(self.object_name_input.value)
        )
        self.delete_object_button.on_click(lambda _: self.ask_delete_object())
        self._question_pane = pn.pane.Alert(
            "", alert_type="warning", visible=False, sizing_mode="stretch_width"
        )
        self._confirm_row = pn.Row(self.confirm_button, self.cancel_button, visible=False)
        self._message_pane = pn.Column(sizing_mode="stretch_width")
        self._note_pane = pn.pane.Alert(
            "", alert_type="warning", visible=False, sizing_mode="stretch_width"
        )
        self._settings_pane = pn.widgets.Tabulator(
            pd.DataFrame({"setting": [], "differs": []}),
            show_index=False,
            disabled=True,
            selectable=False,
            header_filters={"setting": {"type": "input", "func": "like", "placeholder": "find"}},
            layout="fit_data_table",
            max_height=420,
            sizing_mode="stretch_width",
        )
        self._settings_title = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._monitor_area = pn.Column(sizing_mode="stretch_width")
        self.reload()

    @staticmethod
    def _header_filters() -> dict[str, dict[str, Any]]:
        text = {"type": "input", "func": "like", "placeholder": "filter"}
        at_least = {"type": "number", "func": ">=", "placeholder": "at least"}
        filters = {c: text for c in COLUMNS}
        for column in ("run", "agents", *_NUMBERS):
            filters[column] = at_least
        return filters

    # ------------------------------------------------------------------ reading

    def reload(self) -> None:
        """Read the runs (and the forecasts and projects) again; keep the selection."""
        self.runs = self.workbench.runs()
        view = runs_view(self.runs)
        current = self.table.value
        if list(current.columns) == list(view.columns) and current.equals(view):
            pass
        elif (
            len(current) == len(view)
            and (current["run"].to_numpy() == view["run"].to_numpy()).all()
        ):
            self._patch(current, view)  # the same runs: only the cells that changed go out
        else:
            self._syncing = True
            try:
                self.table.value = view
                ids = view["run"].tolist()
                self.table.selection = [ids.index(i) for i in self.selection if i in ids]
            finally:
                self._syncing = False
        present = set(view["run"].tolist())
        kept = [i for i in self.selection if i in present]
        if kept != self.selection:
            self.selection = kept
        else:
            self._show_selection()  # (the name being typed is left alone)
        self._reload_objects()

    def _patch(self, current: pd.DataFrame, view: pd.DataFrame) -> None:
        patch: dict[str, list[tuple[int, Any]]] = {}
        for column in view.columns:
            old, new = current[column], view[column]
            changed = ~((old == new) | (old.isna() & new.isna()))
            if changed.any():
                patch[column] = [(int(i), new[i]) for i in np.flatnonzero(changed.to_numpy())]
        if patch:
            self.table.patch(patch, as_index=False)

    def _reload_objects(self) -> None:
        options: dict[str, str] = {}
        for row in self.workbench.projects().itertuples():
            options[f"project · {row.name} ({row.system}, {row.runs} runs)"] = f"project:{row.id}"
        for row in self.workbench.forecasts().itertuples():
            options[f"forecast · {row.name} ({row.system})"] = f"forecast:{row.id}"
        if options != self.object_select.options:
            value = self.object_select.value
            self.object_select.options = options
            if value in options.values():
                self.object_select.value = value

    def refresh(self) -> None:
        """The periodic read while shown: errors from the database are shown, not raised."""
        try:
            self.reload()
        except HydroRLError as e:
            self._say(f"Could not read the runs: {e}", error=True)

    def start(self) -> None:
        """Read the runs again every ``period_ms`` while shown."""
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.refresh, period=self.period_ms)
        if self.monitor is not None:
            self.monitor.start()

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        if self.monitor is not None:
            self.monitor.stop()

    # ------------------------------------------------------------------ selection

    def _on_table_selection(self, event: param.parameterized.Event) -> None:
        if self._syncing:
            return
        ids = self.table.value["run"].tolist()
        self.selection = [int(ids[i]) for i in event.new if i < len(ids)]

    def select(self, run_ids: Sequence[int]) -> None:
        """Select runs by id, as ticking their rows does."""
        ids = self.table.value["run"].tolist()
        self.table.selection = [ids.index(i) for i in run_ids if i in ids]

    @param.depends("selection", watch=True)
    def _on_selection(self) -> None:
        chosen = self._chosen()
        if len(chosen) == 1:  # its name, to edit
            name = chosen.iloc[0]["name"]
            self.name_input.value = name if isinstance(name, str) else ""
        self._show_selection()

    def _show_selection(self) -> None:
        """Buttons, warning and settings for the runs selected (as they are now)."""
        chosen = self._chosen()
        training = chosen[chosen["kind"] == "train"] if len(chosen) else chosen
        self.compare_button.disabled = len(training) < 2 or len(training) != len(chosen)
        self.rename_button.disabled = len(chosen) != 1
        self.delete_button.disabled = len(chosen) == 0
        self._update_note(chosen)
        ids = [int(i) for i in chosen["id"]] if len(chosen) else []
        table = settings_table(self.runs, ids) if ids else pd.DataFrame(columns=["setting"])
        if not table.equals(self._settings_pane.value):  # (a refresh keeps its scroll)
            self._settings_pane.value = table
        self._settings_pane.visible = bool(ids)
        if not ids and self.runs.empty:
            self._settings_title.object = (
                "No runs yet: start one in the **Train** tab (or with `wb.start_training`); "
                "it appears here at once."
            )
        elif not ids:
            self._settings_title.object = "Select runs to see their settings and hyper-parameters."
        elif len(ids) == 1:
            self._settings_title.object = "**Settings and hyper-parameters** of " + html_text(
                run_label(ids[0], chosen.iloc[0]["name"])
            )
        else:
            self._settings_title.object = (
                "**Settings and hyper-parameters side by side** (≠: they differ; those first)"
            )

    def _chosen(self) -> pd.DataFrame:
        if self.runs.empty or not self.selection:
            return self.runs.iloc[0:0]
        return self.runs[self.runs["id"].isin(self.selection)]

    def _update_note(self, chosen: pd.DataFrame) -> None:
        """Say what a comparison of the selection would not show: other forecasts, runs with
        no curves (evaluations)."""
        lines = []
        training = chosen[chosen["kind"] == "train"] if len(chosen) else chosen
        if len(training) >= 2:
            forecasts = {int(r.id): str(r.forecast) for r in training.itertuples()}
            ids = list(forecasts)
            warning = forecast_warning(ids[0], ids[1:], forecasts)
            if warning:
                lines.append(warning)
        evaluations = (
            [int(i) for i in chosen["id"][chosen["kind"] == "evaluate"]] if len(chosen) else []
        )
        if evaluations and len(chosen) > 1:
            which = ", ".join(f"run {i}" for i in evaluations)
            lines.append(
                f"{which}: evaluation, with no learning curves; select training runs to compare."
            )
        self.note = "\n".join(lines)
        self._note_pane.object = text_block(html_text(self.note))
        self._note_pane.visible = bool(lines)

    # ------------------------------------------------------------------ compare

    def compare(self) -> list[int]:
        """Open the selected training runs' curves together; return their ids (the first is
        watched, the others are drawn as their mean beside it)."""
        chosen = self._chosen()
        training = [int(i) for i in chosen["id"][chosen["kind"] == "train"]] if len(chosen) else []
        if len(training) < 2:
            self._say("Select two or more training runs to compare.", error=True)
            return []
        if self.embed_monitor:
            self._show_monitor(training)
        self.compared = training
        forecasts = set(chosen["forecast"])
        across = (
            f" (on {len(forecasts)} forecasts: marked in the plot)" if len(forecasts) > 1 else ""
        )
        self._say(f"Comparing {', '.join(f'run {i}' for i in training)}{across}.")
        return training

    def _show_monitor(self, run_ids: list[int]) -> None:
        from hydrorl.ui.monitor import TrainingMonitor

        if self.monitor is None:
            self.monitor = TrainingMonitor(self.workbench, run_id=run_ids[0])
            self._monitor_area[:] = [self.monitor]
        else:
            self.monitor.run_id = run_ids[0]
        self.monitor.reload_runs()
        self.monitor.compare = run_ids[1:]
        if self._callback is not None:
            self.monitor.start()

    # ------------------------------------------------------------------ rename and delete

    def ask_rename(self, name: str) -> None:
        """Ask to rename the one selected run to ``name`` (blank: take its name away)."""
        chosen = self._chosen()
        if len(chosen) != 1:
            self._say("Select one run to rename.", error=True)
            return
        row = chosen.iloc[0]
        run_id, old = int(row["id"]), run_label(int(row["id"]), row["name"])
        new = name.strip()
        question = f"Rename {old} to '{new}'?" if new else f"Take the name of {old} away?"

        def rename() -> str:
            info = self.workbench.rename_run(run_id, new or None)
            return f"Renamed {old}: now {info.label}." if new else f"{old} has no name now."

        self._ask(question, rename)

    def ask_delete(self) -> None:
        """Ask to delete the selected runs, saying what goes with them."""
        chosen = self._chosen()
        if chosen.empty:
            self._say("Select the runs to delete.", error=True)
            return
        ids = [int(i) for i in chosen["id"]]
        evaluations = sorted(
            int(i)
            for i in self.runs["id"][self.runs["source_run_id"].isin(ids)]
            if int(i) not in ids
        )
        names = ", ".join(run_label(int(r.id), r.name) for r in chosen.itertuples())
        also = ""
        if evaluations:
            also = f" With them go their evaluations: {', '.join(f'run {i}' for i in evaluations)}."
        question = (
            f"Delete {names}? Their agents, curves, episodes and checkpoints are deleted for "
            f"good.{also}"
        )

        def delete() -> str:
            gone: list[int] = []
            for run_id in ids:
                if run_id not in gone:
                    gone += self.workbench.delete_run(run_id)
            return f"Deleted {', '.join(f'run {i}' for i in sorted(gone))}."

        self._ask(question, delete)

    def ask_rename_object(self, name: str) -> None:
        """Ask to rename the forecast or project chosen below the table."""
        picked = self._picked()
        if picked is None:
            return
        kind, ident, label = picked
        new = name.strip()
        if not new:
            self._say(f"Give the {kind} a new name.", error=True)
            return

        def rename() -> str:
            if kind == "forecast":
                self.workbench.rename_forecast(ident, new)
            else:
                self.workbench.rename_project(ident, new)
            return f"Renamed {kind} '{label}' to '{new}'."

        self._ask(f"Rename {kind} '{label}' to '{new}'?", rename)

    def ask_delete_object(self) -> None:
        """Ask to delete the forecast or project chosen below the table, with its runs."""
        picked = self._picked()
        if picked is None:
            return
        kind, ident, label = picked
        runs = self._runs_of(kind, ident)
        with_runs = ""
        if runs:
            listed = ", ".join(f"run {i}" for i in runs[:8]) + (" ..." if len(runs) > 8 else "")
            with_runs = f" Its {len(runs)} run(s) go with it: {listed}, with their checkpoints."

        def delete() -> str:
            if kind == "forecast":
                gone = self.workbench.delete_forecast(ident, cascade=True)
            else:
                gone = self.workbench.delete_project(ident, cascade=True)
            runs_text = f" and {len(gone)} run(s)" if gone else ""
            return f"Deleted {kind} '{label}'{runs_text}."

        self._ask(f"Delete {kind} '{label}' for good?{with_runs}", delete)

    def _runs_of(self, kind: str, ident: int) -> list[int]:
        """The runs that go with a forecast or a project (as the workbench deletes them): its
        runs, and the evaluations of them."""
        if self.runs.empty:
            return []
        info = (
            self.workbench.forecast(ident) if kind == "forecast" else self.workbench.project(ident)
        )
        own = self.runs[(self.runs[kind] == info.name) & (self.runs["system"] == info.system)]
        found = self.runs["id"].isin(own["id"]) | self.runs["source_run_id"].isin(own["id"])
        return [int(i) for i in self.runs["id"][found]]

    def _picked(self) -> tuple[str, int, str] | None:
        value = self.object_select.value
        if not value:
            self._say("Choose a forecast or a project first.", error=True)
            return None
        kind, ident = str(value).split(":")
        label = next((k for k, v in self.object_select.options.items() if v == value), value)
        name = label.split(" · ", 1)[1].rsplit(" (", 1)[0]
        return kind, int(ident), name

    def _ask(self, question: str, action: Callable[[], str]) -> None:
        """Show ``question`` with Yes / Cancel in the page; Yes runs ``action``."""
        self._pending = action
        self._say("")  # (the last action's message would read as this one's answer)
        self.question = question
        self._question_pane.object = text_block(html_text(question))
        self._question_pane.visible = True
        self._confirm_row.visible = True

    def confirm(self) -> bool:
        """Do what the pending question asked; whether it was done (errors are shown)."""
        action, self._pending = self._pending, None
        self._hide_question()
        if action is None:
            return False
        try:
            said = action()
        except HydroRLError as e:
            self._say(f"Not done: {e}", error=True)
            self.reload()
            return False
        self.changes += 1
        self.reload()
        self._say(said)
        return True

    def cancel(self) -> None:
        """Drop the pending question; nothing is changed."""
        self._pending = None
        self._hide_question()
        self._say("Cancelled: nothing was changed.")

    def _hide_question(self) -> None:
        self.question = ""
        self._question_pane.visible = False
        self._confirm_row.visible = False

    def _say(self, text: str, error: bool = False) -> None:
        self.failed = error
        self.message = text
        self._message_pane[:] = (
            [alert(text, "danger" if error else "success", sizing_mode="stretch_width")]
            if text
            else []
        )

    def __panel__(self) -> pn.viewable.Viewable:
        self.start()
        objects = pn.Card(
            pn.FlexBox(
                self.object_select,
                self.object_name_input,
                pn.Column(pn.Spacer(height=18), self.rename_object_button),
                pn.Column(pn.Spacer(height=18), self.delete_object_button),
            ),
            title="Forecasts and projects: rename or delete",
            collapsed=True,
            sizing_mode="stretch_width",
        )
        return pn.Column(
            pn.pane.Markdown(
                "Tick runs to compare them, see their settings or rename or delete them; "
                "click a header to sort, type under it to filter. *validation %*: a training "
                "run's best agent on its held-aside scenarios, *evaluation %*: an "
                "evaluation's mean over its scenarios, both as % of the perfect-foresight bound.",
                sizing_mode="stretch_width",
            ),
            self.table,
            self._note_pane,
            pn.FlexBox(
                pn.Column(pn.Spacer(height=18), self.compare_button),
                self.name_input,
                pn.Column(pn.Spacer(height=18), self.rename_button),
                pn.Column(pn.Spacer(height=18), self.delete_button),
            ),
            self._question_pane,
            self._confirm_row,
            self._message_pane,
            self._settings_title,
            self._settings_pane,
            objects,
            self._monitor_area,
            sizing_mode="stretch_width",
        )
