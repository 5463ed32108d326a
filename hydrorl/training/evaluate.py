"""The process of an evaluation run: play the chosen agent on every scenario, store the episodes.

Beside the agent it solves the perfect-foresight bound and plays the SDP
benchmark and the forecast planner on the same scenarios from the same start volumes,
so that every episode carries the agent against the bound and the classical policies
(and the bound's and benchmark's trajectories to compare).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl.db import Database, bulk, models
from hydrorl.db.models import Status
from hydrorl.db.problems import load_problem
from hydrorl.jobs.heartbeat import Heartbeat
from hydrorl.jobs.ownership import claim, fail_with_traceback, finish
from hydrorl.project import TrainingSettings
from hydrorl.training.agent import evaluation_options, start_volumes

UNITS = {
    "volume_mm3": "Mm3",
    "discharge_m3s": "m3/s",
    "generation_mwh": "MWh",
    "spill_m3s": "m3/s",
    "price_eur_mwh": "EUR/MWh",
    "inflow_m3s": "m3/s",
    "revenue_eur": "EUR",
    "reward_eur": "EUR",
}


def evaluate_run(url: str, run_id: int) -> int:
    db = Database(url)
    if not claim(db, models.ProjectRun, run_id):
        return 3
    try:
        with Heartbeat(db, models.ProjectRun, run_id):
            _evaluate(db, run_id)
        finish(db, models.ProjectRun, run_id, Status.COMPLETED)
        return 0
    except BaseException as e:
        fail_with_traceback(db, models.ProjectRun, run_id, e)
        return 1
    finally:
        db.dispose()


def _evaluate(db: Database, run_id: int) -> None:
    import torch

    from hydrorl.baselines import WaterValuePolicy, perfect_foresight, water_values
    from hydrorl.baselines.foresight import limited_foresight
    from hydrorl.env.spec import ObservationSpec
    from hydrorl.evaluation import evaluate_agent, evaluate_policy
    from hydrorl.training.algorithm import load_model
    from hydrorl.training.imitation import teacher, teacher_forecast

    torch.set_num_threads(1)
    with db.read() as session:
        run = session.get(models.ProjectRun, run_id)
        assert run is not None and run.source_run_id is not None
        source = session.get(models.ProjectRun, run.source_run_id)
        assert source is not None
        settings = TrainingSettings.from_run(
            {k: v for k, v in run.settings.items() if k not in ("agent_id", "agent_index")}
        )
        agent = session.get(models.Agent, run.settings["agent_id"])
        assert agent is not None
        checkpoint = agent.best_checkpoint_path or agent.checkpoint_path
        training = load_problem(session, source.forecast)
        problem = load_problem(session, run.forecast).with_reference(training)
        volumes = start_volumes(session, run)
        links = [link.id for link in run.forecast.series_links]
        agent_id, agent_index = agent.id, agent.index
    if not checkpoint or not Path(checkpoint).exists():
        raise FileNotFoundError(f"the checkpoint of agent {agent_id} is missing: {checkpoint}")
    tell = _teller(db, run_id)
    n = len(links)
    model = load_model(settings, checkpoint)
    playing = f"playing agent {agent_index} on {n} scenarios"
    if ObservationSpec.carried_by(model) is not None:  # what the agent observed, saved with it
        played = evaluate_agent(
            model, problem, volumes, progress=lambda done: tell(f"{playing}: {done:.0%}")
        )
    else:  # saved before agents carried their spec: as its settings say
        played = evaluate_policy(
            model, problem, volumes, **evaluation_options(settings, problem, training)
        )
    tell("the SDP benchmark on the same scenarios", at_once=True)
    values = water_values(training)
    benchmark = evaluate_policy(WaterValuePolicy(problem, values), problem, volumes)
    # The recipe's planner (its default lookahead, whatever the run's), fitted on the training.
    lookahead = TrainingSettings.imitation_lookahead_days
    planner = teacher(problem, values, lookahead, teacher_forecast(training, lookahead))
    c = problem.cascade
    for s, link_id in enumerate(links):
        told = f"the bound, the forecast planner and the episodes: scenario {s + 1} of {n}"
        tell(told)
        bound = perfect_foresight(problem, s, volumes)
        planned = limited_foresight(
            problem,
            s,
            values,
            planner.lookahead_steps,
            planner.every_steps,
            volumes,
            planner.forecast,
            _with_share(tell, told),
        )
        totals = played.totals.iloc[s]
        series = _series(played, s)
        series["bound:volume_mm3"] = {
            n: bound.volume_mm3[1:, r] for r, n in enumerate(c.reservoir_names)
        }
        series["bound:discharge_m3s"] = {
            n: bound.discharge_m3s[:, k] for k, n in enumerate(c.station_names)
        }
        series["benchmark:volume_mm3"] = {
            n: benchmark.volume_mm3[s, 1:, r] for r, n in enumerate(c.reservoir_names)
        }
        series["benchmark:discharge_m3s"] = {
            n: benchmark.discharge_m3s[s, :, k] for k, n in enumerate(c.station_names)
        }

        def write(
            session: Session,
            s: int = s,
            link_id: int = link_id,
            totals=totals,  # noqa: ANN001
            series=series,
            bound=bound,
            planned=planned,
        ) -> None:
            episode = models.EvaluationEpisode(
                run_id=run_id,
                agent_id=agent_id,
                series_link_id=link_id,
                total_reward=float(totals["total_eur"]),
                revenue_eur=float(totals["revenue_eur"]),
                spill_mm3=float(totals["spill_mm3"]),
                end_volume_mm3=float(totals["end_volume_mm3"]),
                end_water_value_eur=float(totals["end_value_eur"]),
                bound_revenue_eur=bound.total_eur,
                benchmark_revenue_eur=float(benchmark.totals["total_eur"].iloc[s]),
                planner_eur=planned.total_eur,
            )
            session.add(episode)
            session.flush()
            _write_series(session, episode.id, series)

        db.run_write(write)


def _teller(db: Database, run_id: int, seconds: float = 2.0) -> Callable[..., None]:
    """Show what the evaluation does as its run's status reason, at most every ``seconds``."""
    last = [-np.inf]

    def tell(text: str, at_once: bool = False) -> None:
        now = time.monotonic()
        if not at_once and now - last[0] < seconds:
            return
        last[0] = now
        db.run_write(
            lambda s: s.execute(
                sa.update(models.ProjectRun)
                .where(models.ProjectRun.id == run_id, models.ProjectRun.status == Status.RUNNING)
                .values(status_reason=text)
            )
        )

    return tell


def _with_share(tell: Callable[..., None], text: str) -> Callable[[float], None]:
    return lambda done: tell(f"{text}, {done:.0%}")


def _series(played, s: int) -> dict[str, dict[str, np.ndarray]]:  # noqa: ANN001
    p = played.problem
    c = p.cascade
    return {
        "volume_mm3": {n: played.volume_mm3[s, 1:, r] for r, n in enumerate(c.reservoir_names)},
        "discharge_m3s": {n: played.discharge_m3s[s, :, k] for k, n in enumerate(c.station_names)},
        "generation_mwh": {
            n: played.generation_mwh[s, :, k] for k, n in enumerate(c.station_names)
        },
        "spill_m3s": {n: played.spill_m3s[s, :, r] for r, n in enumerate(c.reservoir_names)},
        "price_eur_mwh": {"": p.price_eur_mwh[s]},
        "inflow_m3s": {"": p.inflow_m3s[s]},
        "revenue_eur": {"": played.revenue_eur[s]},
        "reward_eur": {"": played.reward_eur[s]},
    }


def _write_series(session: Session, episode_id: int, series: dict) -> None:  # noqa: ANN001
    rows = []
    for quantity, parts in series.items():
        for part, values in parts.items():
            name = f"{quantity}:{part}" if part else quantity
            unit = UNITS.get(quantity.split(":")[-1], "")
            rows.append((models.ReportData(episode_id=episode_id, name=name, unit=unit), values))
    session.add_all([r for r, _ in rows])
    session.flush()
    n = len(rows[0][1])
    bulk.insert_columns(
        session,
        models.ReportValue.__table__,  # type: ignore[arg-type]
        ("data_id", "step_index", "value"),
        (
            np.repeat([r.id for r, _ in rows], n),
            np.tile(np.arange(n), len(rows)),
            np.concatenate([np.asarray(v, dtype=float) for _, v in rows]),
        ),
    )
