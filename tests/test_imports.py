"""``import hydrorl`` stays light: the package root hands its names on lazily (PEP 562).

Each check runs in a fresh interpreter, so that what this test process has
imported already cannot hide an import.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

#: What the root, the CLI's ``--help`` and the physics must not import (the root imports
#: gymnasium only to register the environment's id, whatever the import order).
HEAVY = ("torch", "stable_baselines3", "scipy", "numba", "panel", "bokeh")
#: What needs a database or a DataFrame; the root imports neither.
DATA = ("pandas", "sqlalchemy")


def imported_by(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())


def test_import_hydrorl_imports_no_heavy_package() -> None:
    loaded = imported_by("import hydrorl")
    assert loaded.isdisjoint(HEAVY + DATA), loaded & set(HEAVY + DATA)


def test_physics_imports_numpy_only() -> None:
    loaded = imported_by("import hydrorl.physics, hydrorl.physics.episode")
    assert loaded.isdisjoint(HEAVY + DATA), loaded & set(HEAVY + DATA)


def test_the_environment_id_is_registered_whatever_the_import_order() -> None:
    for code in ("import hydrorl, gymnasium", "import gymnasium, hydrorl"):
        loaded = imported_by(f"{code}\ngymnasium.make('hydrorl/Cascade-v0').reset(seed=0)")
        assert loaded.isdisjoint({"torch", "stable_baselines3"})


def test_the_workbench_and_the_gymnasium_env_need_no_torch() -> None:
    # What `hydrorl info` and a notebook that only looks at data import.
    loaded = imported_by("import hydrorl; hydrorl.connect, hydrorl.Workbench")
    assert loaded.isdisjoint(HEAVY), loaded & set(HEAVY)
    loaded = imported_by("import hydrorl; hydrorl.CascadeEnv")
    assert "gymnasium" in loaded and loaded.isdisjoint({"torch", "stable_baselines3"})


def test_cli_help_exits_0_without_importing_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hydrorl", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: hydrorl" in done.stdout
    # -X importtime writes "import time: self | cumulative | module" per import to stderr.
    modules = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "hydrorl" in modules  # the probe does see our imports
    assert modules.isdisjoint(HEAVY + DATA), modules & set(HEAVY + DATA)


def test_every_public_name_resolves() -> None:
    code = (
        "import hydrorl\n"
        "missing = [n for n in hydrorl.__all__ if getattr(hydrorl, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert set(hydrorl.__all__) <= set(dir(hydrorl))\n"
        "ns = {}\n"
        "exec('from hydrorl import *', ns)\n"
        "assert set(hydrorl.__all__) <= set(ns), set(hydrorl.__all__) - set(ns)\n"
        "assert issubclass(hydrorl.ValidationError, hydrorl.HydroRLError)\n"
        "assert hydrorl.CascadeVecEnv.__module__ == 'hydrorl.env.vec_env'\n"
    )
    imported_by(code)


def test_an_unknown_name_is_an_attribute_error() -> None:
    import hydrorl

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        hydrorl.Nope  # noqa: B018
    assert not hasattr(hydrorl, "_private_nope")


def test_gymnasium_make_works_after_import_gymnasium_and_hydrorl() -> None:
    # The README's order: gymnasium first, then hydrorl registers the id, without SB3.
    loaded = imported_by(
        "import gymnasium, hydrorl\nenv = gymnasium.make('hydrorl/Cascade-v0')\nenv.reset(seed=0)\n"
    )
    assert "stable_baselines3" not in loaded and "torch" not in loaded


def test_the_remote_client_imports_neither_torch_nor_the_server() -> None:
    # A user with only the client: hydrorl.connect("http://...") and its verbs' modules.
    loaded = imported_by(
        "import hydrorl\n"
        "wb = hydrorl.connect('http://127.0.0.1:9')\n"
        "assert type(wb).__name__ == 'RemoteWorkbench'\n"
        "import hydrorl.service.client, hydrorl.service.wire"
    )
    server = ("fastapi", "starlette", "uvicorn")
    assert loaded.isdisjoint(HEAVY + server), loaded & set(HEAVY + server)
