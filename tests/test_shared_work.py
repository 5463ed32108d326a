"""A run's agents share their start-up work: each piece computed once, by real processes, and
a piece whose agent was killed is computed by another; a fresh guided agent's first
validation is its planner's value, not played twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from hydrorl.training.shared import Piece, SharedWork

# An agent's share of the work: pieces a, b, c; each computation logs "<piece> <pid>" and, for
# the pieces named in BLOCK, waits until the file RELEASE exists.
AGENT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from hydrorl.training.shared import Piece, SharedWork

    folder, log, start = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    block, release = set(sys.argv[4].split(",")), Path(sys.argv[5])

    def piece(name):
        def compute():
            with open(log, "a") as f:
                f.write(f"{name} {os.getpid()}\\n")
            while name in block and not release.exists():
                time.sleep(0.01)
            return name.upper()
        return Piece(name, f"piece {name}", compute)

    def status(text):
        with open(log, "a") as f:
            f.write(f"status {os.getpid()} {text}\\n")

    found = SharedWork(folder, status, start=start).get([piece(n) for n in "abc"])
    with open(log, "a") as f:
        f.write(f"done {os.getpid()} {sorted(found.items())}\\n")
    """
)


def _agent(tmp_path: Path, start: int, block: str = "") -> subprocess.Popen[bytes]:
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    args = [tmp_path / "work", tmp_path / "log", str(start), block, tmp_path / "release"]
    return subprocess.Popen([sys.executable, str(script), *map(str, args)])


def _lines(tmp_path: Path) -> list[str]:
    log = tmp_path / "log"
    return log.read_text().splitlines() if log.exists() else []


def _until(condition, what: str, limit_s: float = 120.0) -> None:  # noqa: ANN001
    """Wait for ``condition`` (a failure only if it never holds: no timing is asserted)."""
    end = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def test_two_agents_compute_each_piece_once_and_read_the_others(tmp_path: Path) -> None:
    # Agent 0 holds piece a until released: agent 1 computes b and c meanwhile, then waits.
    first = _agent(tmp_path, 0, block="a")
    _until(lambda: any(line.startswith("a ") for line in _lines(tmp_path)), "agent 0 takes a")
    second = _agent(tmp_path, 1)
    _until(
        lambda: any("waiting for another agent: piece a" in line for line in _lines(tmp_path)),
        "agent 1 waits for a",
    )
    (tmp_path / "release").touch()
    assert first.wait(120) == 0 and second.wait(120) == 0
    lines = _lines(tmp_path)
    computed = [line.split() for line in lines if line[:2] in ("a ", "b ", "c ")]
    assert sorted(name for name, _ in computed) == ["a", "b", "c"]  # each once
    by = dict(computed)
    assert by["a"] == str(first.pid) and by["b"] == by["c"] == str(second.pid)
    done = [line for line in lines if line.startswith("done")]
    assert len(done) == 2 and all("('a', 'A'), ('b', 'B'), ('c', 'C')" in line for line in done)


def test_a_piece_whose_agent_was_killed_is_computed_by_another(tmp_path: Path) -> None:
    killed = _agent(tmp_path, 0, block="a,b,c")  # takes a and never finishes it
    _until(lambda: any(line.startswith("a ") for line in _lines(tmp_path)), "agent 0 takes a")
    other = _agent(tmp_path, 0)
    _until(lambda: any(line.startswith("status") for line in _lines(tmp_path)), "the other waits")
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(60)
    assert other.wait(120) == 0
    computed = [line.split() for line in _lines(tmp_path) if line[:2] in ("a ", "b ", "c ")]
    # b and c at once, then a when its agent is gone
    assert [name for name, pid in computed if pid == str(other.pid)] == ["b", "c", "a"]
    assert not list((tmp_path / "work").glob("*.partial"))


def test_a_failed_piece_leaves_nothing_and_is_computed_again(tmp_path: Path) -> None:
    def fail() -> None:
        raise RuntimeError("stopped")

    work = SharedWork(tmp_path, lambda text: None)
    with pytest.raises(RuntimeError):
        work.get([Piece("x", "x", fail)])
    assert not list(tmp_path.glob("x.pickle*"))
    assert work.get([Piece("x", "x", lambda: 42)]) == {"x": 42}
    assert work.get([Piece("x", "x", fail)]) == {"x": 42}  # read, not computed again


def test_waiting_obeys_a_stop(tmp_path: Path) -> None:
    """A waiting agent is stopped like a working one: its status callback raises."""
    import fcntl

    lock = open(tmp_path / "x.lock", "a")  # another agent holds x  # noqa: SIM115
    fcntl.flock(lock, fcntl.LOCK_EX)
    told: list[str] = []

    def status(text: str) -> None:
        told.append(text)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        SharedWork(tmp_path, status).get([Piece("x", "the thing", lambda: 1)])
    assert told == ["waiting for another agent: the thing"]
    lock.close()


def test_a_fresh_guided_agents_first_validation_is_its_planners_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first point is not played again: played, it gives the planner's value to 1e-9."""
    from hydrorl.cases import small_case
    from hydrorl.project import TrainingSettings
    from hydrorl.training.algorithm import build_model, plays_its_guide
    from hydrorl.training.recipe import MemorySink, Recipe

    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))
    train = small_case(0).problem("training")
    settings = TrainingSettings(validation_days=60, n_envs=2)
    assert settings.guided  # the default recipe
    sink = MemorySink()
    recipe = Recipe(settings, train, None, 0, sink)
    recipe.prepare_validation()
    validation = recipe.validation
    assert validation is not None and validation.planner_eur is not None
    model = build_model(settings, recipe.environment(), 0)
    assert plays_its_guide(model)
    played = validation.score(model)
    assert played == pytest.approx(validation.planner_eur, rel=1e-9)
    recipe.validate(model, fresh=True)
    first = sink.curves()["validation/value_eur"]
    assert first[0, 1] == validation.planner_eur
    with __import__("torch").no_grad():
        next(model.policy.action_net.parameters()).add_(1e-3)
    assert not plays_its_guide(model)  # once it learns, it is played
    assert not np.isclose(validation.score(model), played, rtol=1e-12, atol=0)


def test_the_first_points_are_shown_before_the_learning_libraries_are_imported() -> None:
    """What the user sees first (the reference lines, a fresh guided agent's first validation
    point) needs no torch or SB3, whose import takes seconds on a busy machine: an agent
    writes it first (checked in a fresh interpreter)."""
    code = textwrap.dedent(
        """
        import sys
        from hydrorl.cases import small_case
        from hydrorl.project import TrainingSettings
        from hydrorl.training.recipe import MemorySink, Recipe

        train = small_case(0).problem("training")
        sink = MemorySink()
        recipe = Recipe(TrainingSettings(validation_days=60, n_envs=2), train, None, 0, sink)
        recipe.prepare_validation()
        recipe.record_fresh()
        print(sorted({name for name, _, _ in sink.points}))
        print(sorted({"torch", "stable_baselines3"} & set(sys.modules)))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    names, heavy = done.stdout.splitlines()[-2:]
    assert "validation/share_of_bound" in names and "reference/planner_share_of_bound" in names
    assert heavy == "[]"


def test_a_first_point_recorded_early_is_not_recorded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hydrorl.cases import small_case
    from hydrorl.project import TrainingSettings
    from hydrorl.training.algorithm import build_model
    from hydrorl.training.recipe import MemorySink, Recipe

    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))
    train = small_case(0).problem("training")
    settings = TrainingSettings(validation_days=60, n_envs=2)
    sink = MemorySink()
    recipe = Recipe(settings, train, None, 0, sink)
    recipe.prepare_validation()
    recipe.record_fresh()
    assert sink.best_policy is None  # no model yet: kept once it is built
    model = build_model(settings, recipe.environment(), 0)
    recipe.validate(model, fresh=True)
    values = sink.curves()["validation/value_eur"]
    assert values.shape == (1, 2) and values[0, 0] == 0
    assert recipe.validation is not None and values[0, 1] == recipe.validation.planner_eur
    assert sink.best_policy is not None and sink.best_share == recipe.validation.share(values[0, 1])
