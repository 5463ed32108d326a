"""The overview component, driven through its params, and the dashboard served for real."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import hydrorl
from hydrorl.ui import ForecastExplorer
from tests.conftest import long_forecast, two_reservoir_system

ROOT = Path(__file__).resolve().parents[1]


def test_the_explorer_follows_system_forecast_and_scenarios(wb: hydrorl.Workbench) -> None:
    wb.setup_demo(scenarios=3, years=1)
    wb.create_system(two_reservoir_system())
    wb.upload_forecast("Twin", long_forecast(scenarios=2, steps=16), "twin forecast")
    explorer = ForecastExplorer(wb)
    assert explorer.system == "Demo river"
    assert explorer.forecast == "Demo forecast"
    assert explorer.scenarios == ["S01", "S02", "S03"]
    assert explorer.reservoirs().object["name"].tolist() == ["Hoegfjell", "Midtvatn", "Nedrevatn"]
    explorer.scenarios = ["S02"]
    assert explorer.data()["scenario"].unique().tolist() == ["S02"]
    assert len(explorer.data()) == 2920
    price = explorer.plot().object.NdOverlay.I
    assert price.keys() == ["S02"] and len(price["S02"].data) == 365  # one curve of daily means
    explorer.system = "Twin"
    assert explorer.forecast == "twin forecast"
    assert explorer.scenarios == ["s0", "s1"]
    assert explorer.power_stations().object["name"].tolist() == ["Top PS", "Bottom PS"]
    explorer.__panel__()  # the layout builds


def test_the_explorer_opens_on_the_forecast_it_is_given(wb: hydrorl.Workbench) -> None:
    """The quick start shows the forecast its tour uses (``setup_demo()["forecast"]``), which
    is not the database's first when that holds the full demo."""
    wb.setup_demo(scenarios=3, years=1)
    small = wb.setup_demo(scenarios=2, years=1)["forecast"]
    assert small.name != "Demo forecast"
    explorer = ForecastExplorer(wb, forecast=small)
    assert (explorer.system, explorer.forecast) == ("Demo river", small.name)
    assert explorer.scenarios == ["S01", "S02"]
    wb.create_system(two_reservoir_system())
    wb.upload_forecast("Twin", long_forecast(scenarios=2, steps=16), "twin forecast")
    by_name = ForecastExplorer(wb, forecast="twin forecast", system="Twin")
    assert (by_name.system, by_name.forecast) == ("Twin", "twin forecast")
    with pytest.raises(hydrorl.NotFoundError, match="no forecast 'twin forecast' of system"):
        ForecastExplorer(wb, forecast="twin forecast")  # not of the first system
    with pytest.raises(hydrorl.NotFoundError, match="no hydro system 'Nile'"):
        ForecastExplorer(wb, system="Nile")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_panel_serve_answers_with_the_dashboard(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    with hydrorl.connect(url) as wb:
        wb.setup_demo(scenarios=2, years=1)
    port = _free_port()
    env = {**os.environ, "HYDRORL_DATABASE_URL": url}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "panel",
            "serve",
            str(ROOT / "dashboards" / "overview.py"),
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
            "--allow-websocket-origin",
            "*",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/overview", timeout=30) as r:
                    page = r.read().decode()
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"panel serve did not answer: {server.stdout.read().decode()}")
                time.sleep(0.5)
        assert r.status == 200
        assert "HydroRL" in page and "bokeh" in page.lower()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_cascade_drawing_names_every_reservoir_and_station() -> None:
    from hydrorl.demo import demo_system
    from hydrorl.ui.forecast_explorer import cascade_svg
    from tests.conftest import two_reservoir_system

    svg = cascade_svg(demo_system())
    assert svg.count("<line") == 3 and svg.count("<rect") == 4  # 3 reservoirs and the sea
    for name in ["Hoegfjell", "Midtvatn", "Nedrevatn", "Hoegfjell PS", "Nedrevatn PS", "sea"]:
        assert f">{name}<" in svg
    assert ">110 m³/s<" in svg
    assert cascade_svg(two_reservoir_system()).count("<line") == 2
