"""Projects and their training settings."""

from __future__ import annotations

import pytest

import hydrorl
from hydrorl import TrainingSettings


def test_a_project_stores_its_settings(wb: hydrorl.Workbench, system: object) -> None:
    info = wb.create_project("Twin", "baseline", description="first try")
    assert info.settings == TrainingSettings()
    assert info.settings.agents == 2 and info.settings.algorithm == "A2C"
    tuned = wb.create_project(
        "Twin",
        "sac",
        {"algorithm": "SAC", "hyperparameters": {"learning_rate": 3e-4}},
        timesteps=5000,
    )
    assert tuned.settings.algorithm == "SAC" and tuned.settings.timesteps == 5000
    assert wb.project("sac").settings.hyperparameters == {"learning_rate": 3e-4}
    listed = wb.projects()
    assert listed[["name", "algorithm", "timesteps", "agents", "runs"]].values.tolist() == [
        ["baseline", "A2C", 100_000, 2, 0],
        ["sac", "SAC", 5000, 2, 0],
    ]
    wb.delete_project("baseline")
    assert wb.projects()["name"].tolist() == ["sac"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"algorithm": "DQN"}, "unknown algorithm 'DQN'; choose one of PPO, SAC, TD3, A2C"),
        ({"agents": 0}, "agents = 0 must be an integer >= 1"),
        ({"timesteps": 2.5}, "timesteps = 2.5 must be an integer"),
        ({"learning_rate": 1e-3}, "unknown setting\\(s\\) 'learning_rate'"),
    ],
)
def test_bad_settings_are_refused(
    wb: hydrorl.Workbench, system: object, settings: dict, message: str
) -> None:
    with pytest.raises(hydrorl.ValidationError, match=message):
        wb.create_project("Twin", "bad", settings)
    assert wb.projects().empty


def test_project_names_are_unique_per_system(wb: hydrorl.Workbench, system: object) -> None:
    wb.create_project("Twin", "p")
    with pytest.raises(hydrorl.AlreadyExistsError):
        wb.create_project("Twin", "p")
    with pytest.raises(hydrorl.NotFoundError, match="no project 'q'; known projects: 'p'"):
        wb.project("q")


def test_runs_stored_before_a_field_existed_keep_what_they_ran_with() -> None:
    old = {"algorithm": "PPO", "timesteps": 1000}  # a run from before shaping and the rest
    settings = TrainingSettings.from_run(old)
    assert (settings.shaping, settings.water_value_feature, settings.spill_guard) == (
        "none",
        False,
        False,
    )
    new = TrainingSettings().resolved().to_dict()  # what runs store now: every field
    assert TrainingSettings.from_run(new) == TrainingSettings().resolved()


def test_the_imitation_warm_start_is_for_actor_critic_algorithms_only() -> None:
    unguided = {"guide": "none", "imitation_scenarios": 8}
    assert TrainingSettings(**unguided).resolved().imitation_scenarios == 8
    # A guided agent starts as the planner: nothing to imitate (stored as it ran: without).
    assert TrainingSettings(imitation_scenarios=8).resolved().imitation_scenarios == 0
    for algorithm in ("SAC", "TD3"):  # stored as it ran: without
        settings = TrainingSettings(algorithm=algorithm, **unguided).resolved()
        assert settings.imitation_scenarios == 0
    with pytest.raises(hydrorl.ValidationError, match="imitation_scenarios"):
        TrainingSettings(imitation_scenarios=-1).validate()
    old = TrainingSettings.from_run({"algorithm": "A2C"})  # a run stored before imitation
    assert (old.imitation_scenarios, old.imitation_rounds, old.context_features) == (0, 0, False)
    assert old.guide == "none"  # nor were its agents guided
    with pytest.raises(hydrorl.ValidationError, match="imitation_rounds"):
        TrainingSettings(imitation_rounds=1.5).validate()  # type: ignore[arg-type]
    with pytest.raises(hydrorl.ValidationError, match="imitation_lookahead_days"):
        TrainingSettings(imitation_lookahead_days=0).validate()


def test_an_imitating_policy_is_larger_and_learns_slower_unless_told_otherwise() -> None:
    imitating = TrainingSettings(algorithm="A2C", guide="none").resolved().hyperparameters
    assert imitating["policy_kwargs"] == {"net_arch": [256, 256]}
    assert imitating["learning_rate"] == 1e-4 and imitating["n_steps"] == 16
    alone = TrainingSettings(algorithm="A2C", guide="none", imitation_scenarios=0).resolved()
    assert "learning_rate" not in alone.hyperparameters
    assert "policy_kwargs" not in alone.hyperparameters
    mine = TrainingSettings(guide="none", hyperparameters={"learning_rate": 3e-4}).resolved()
    assert mine.hyperparameters["learning_rate"] == 3e-4
    mine.hyperparameters["policy_kwargs"]["net_arch"].append(8)  # SB3 writes into it: a copy
    again = TrainingSettings(guide="none").resolved().hyperparameters
    assert again["policy_kwargs"]["net_arch"] == [256, 256]


def test_a_guided_agent_corrects_the_planner_in_small_careful_steps() -> None:
    guided = TrainingSettings().resolved()  # the default
    assert guided.guide == "planner" and guided.imitation_scenarios == 0
    assert guided.hyperparameters["learning_rate"] == 3e-5
    assert guided.hyperparameters["policy_kwargs"] == {"log_std_init": -2.0}
    assert "learning_rate" not in TrainingSettings(algorithm="SAC").resolved().hyperparameters
    for bad, message in (
        ({"guide": "oracle"}, "unknown guide 'oracle'; choose one of 'none', 'planner'"),
        ({"residual_scale": 0}, "residual_scale = 0 must be a number > 0"),
    ):
        with pytest.raises(hydrorl.ValidationError, match=message):
            TrainingSettings(**bad).validate()


def test_names_too_long_for_any_backend_are_refused_alike(wb: hydrorl.Workbench) -> None:
    """On PostgreSQL a 201-character name was a DataError with the SQL; on SQLite it was
    stored.  Both refuse it now, naming the field, and nothing is written."""
    from tests.conftest import two_reservoir_system

    long = "x" * 201
    spec = two_reservoir_system().to_dict()
    with pytest.raises(hydrorl.SystemValidationError, match="system name is 201 characters"):
        wb.create_system({**spec, "name": long})
    reservoirs = [{**spec["reservoirs"][0], "name": long}, spec["reservoirs"][1]]
    with pytest.raises(hydrorl.SystemValidationError, match="reservoir name is 201 characters"):
        wb.create_system({**spec, "reservoirs": reservoirs})
    assert wb.systems().empty
    wb.create_system(spec)
    with pytest.raises(hydrorl.ValidationError, match="project name is 201 characters"):
        wb.create_project("Twin", long)
    assert wb.projects().empty
    wb.create_project("Twin", "x" * 200)  # the limit itself is fine everywhere
