"""Hydro systems: validation rules, files, storage and read-back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

import hydrorl
from hydrorl.errors import SystemValidationError
from hydrorl.system import HydroSystem, PowerStation, Reservoir
from tests.conftest import two_reservoir_system


def test_a_valid_system_passes_and_tells_its_routing() -> None:
    s = two_reservoir_system().validate()
    assert s.spill_target("Top") == "Bottom"
    assert s.spill_target("Bottom") is None
    assert s.energy_to_sea_kwh_m3("Top") == pytest.approx(1.4)
    assert s.energy_to_sea_kwh_m3("Bottom") == pytest.approx(0.4)
    assert s.topological_order() == ["Top", "Bottom"]


def _with(system: HydroSystem, **changes: object) -> HydroSystem:
    return dataclasses.replace(system, **changes)


def _res(i: int, **changes: object) -> HydroSystem:
    s = two_reservoir_system()
    rs = list(s.reservoirs)
    rs[i] = dataclasses.replace(rs[i], **changes)
    return _with(s, reservoirs=tuple(rs))


def _ps(i: int, **changes: object) -> HydroSystem:
    s = two_reservoir_system()
    ps = list(s.power_stations)
    ps[i] = dataclasses.replace(ps[i], **changes)
    return _with(s, power_stations=tuple(ps))


@pytest.mark.parametrize(
    ("system", "message"),
    [
        (_with(two_reservoir_system(), name=" "), "non-empty name"),
        (_with(two_reservoir_system(), reservoirs=(), power_stations=()), "no reservoirs"),
        (
            _res(1, min_volume_mm3=20.0),
            r"reservoirs\[1\] \('Bottom'\): min_volume_mm3 = 20.0 is "
            r"above max_volume_mm3 = 10.0",
        ),
        (
            _res(0, min_volume_mm3=-1.0),
            r"reservoirs\[0\] \('Top'\): min_volume_mm3 = -1.0 must be >= 0",
        ),
        (_res(0, max_volume_mm3=0.0), "max_volume_mm3 = 0.0 must be > 0"),
        (_res(0, inflow_factor=float("nan")), "inflow_factor must be finite"),
        (_res(0, inflow_factor="lots"), "inflow_factor must be a number, got 'lots'"),
        (_res(1, name="Top"), "reservoir name 'Top' is used twice"),
        (
            _ps(0, upstream="Nowhere"),
            r"power_stations\[0\] \('Top PS'\): upstream 'Nowhere' is not "
            r"a reservoir of this system",
        ),
        (_ps(0, downstream="Elsewhere"), "downstream 'Elsewhere' is not a reservoir"),
        (_ps(0, downstream="Top"), "draws from and releases into the same reservoir"),
        (_ps(1, max_discharge_m3s=0), "max_discharge_m3s = 0 must be > 0"),
        (_ps(1, energy_equivalent_kwh_m3=-0.1), "energy_equivalent_kwh_m3 = -0.1 must be >= 0"),
        (_ps(1, name="Top PS"), "power station name 'Top PS' is used twice"),
        (_ps(1, downstream="Top"), "cycle: Top -> Bottom -> Top"),
    ],
)
def test_each_rule_is_enforced_with_a_message_naming_the_field(
    system: HydroSystem, message: str
) -> None:
    with pytest.raises(hydrorl.SystemValidationError, match=message):
        system.validate()


def test_a_station_of_another_system_is_refused(wb: hydrorl.Workbench) -> None:
    wb.create_system(two_reservoir_system("A"))
    other = HydroSystem(
        "B", (Reservoir("Lake", 0, 5, 1),), (PowerStation("PS", "Top", None, 10, 1),)
    )
    with pytest.raises(hydrorl.SystemValidationError, match="upstream 'Top' is not a reservoir"):
        wb.create_system(other)
    assert list(wb.systems()["name"]) == ["A"]


def test_yaml_and_json_files_round_trip(tmp_path: Path, wb: hydrorl.Workbench) -> None:
    system = two_reservoir_system()
    system.to_file(tmp_path / "twin.yaml")
    json_system = _with(system, name="Twin JSON")
    json_system.to_file(tmp_path / "twin.json")
    assert HydroSystem.from_file(tmp_path / "twin.yaml") == system
    assert wb.create_system(tmp_path / "twin.json") == json_system
    assert wb.system("Twin JSON") == json_system


def test_a_yaml_file_by_hand_with_the_sea_as_null(tmp_path: Path) -> None:
    path = tmp_path / "river.yml"
    path.write_text(
        "name: River\n"
        "reservoirs:\n"
        "  - {name: Up, min_volume_mm3: 0, max_volume_mm3: 50, inflow_factor: 1}\n"
        "power_stations:\n"
        "  - {name: Up PS, upstream: Up, downstream: null, max_discharge_m3s: 20,\n"
        "     energy_equivalent_kwh_m3: 0.8}\n"
    )
    system = HydroSystem.from_file(path)
    assert system.power_stations[0].downstream is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: X\n", "missing field\\(s\\) reservoirs"),
        ("name: X\nreservoirs: []\ncolour: blue\n", "unknown field\\(s\\) colour"),
        (
            "name: X\nreservoirs:\n  - {name: A, min_volume_mm3: 0, max_volume_mm3: 5}\n",
            r"reservoirs\[0\]: missing field\(s\) inflow_factor",
        ),
        (
            "name: X\nreservoirs:\n  - {name: A, min_volume_mm3: 0, max_volume_mm3: 5, "
            "inflow_factor: 1, volume: 3}\n",
            r"reservoirs\[0\]: unknown field\(s\) volume",
        ),
        ("name: X\nreservoirs: {a: 1}\n", "reservoirs must be a list"),
        ("name: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_files_name_the_file_and_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(hydrorl.SystemValidationError, match=message) as info:
        HydroSystem.from_file(path)
    assert str(path) in str(info.value)


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(hydrorl.SystemValidationError, match="no such file"):
        HydroSystem.from_file(tmp_path / "none.yaml")
    (tmp_path / "x.toml").write_text("")
    with pytest.raises(hydrorl.SystemValidationError, match="unknown extension '.toml'"):
        HydroSystem.from_file(tmp_path / "x.toml")


def test_stored_system_reads_back_as_dataframes(wb: hydrorl.Workbench) -> None:
    wb.create_system(two_reservoir_system())
    systems = wb.systems()
    assert systems.loc[0, ["name", "reservoirs", "power_stations", "forecasts"]].tolist() == [
        "Twin",
        2,
        2,
        0,
    ]
    reservoirs = wb.reservoirs("Twin")
    assert isinstance(reservoirs, pd.DataFrame)
    assert reservoirs["name"].tolist() == ["Top", "Bottom"]
    assert reservoirs["max_volume_mm3"].tolist() == [100.0, 10.0]
    assert reservoirs["spill_to"].tolist() == ["Bottom", None]
    stations = wb.power_stations("Twin")
    assert stations.to_dict("records")[1] == {
        "name": "Bottom PS",
        "upstream": "Bottom",
        "downstream": None,
        "max_discharge_m3s": 60.0,
        "energy_equivalent_kwh_m3": 0.4,
    }


def test_names_are_unique_and_lookups_say_what_exists(wb: hydrorl.Workbench) -> None:
    wb.create_system(two_reservoir_system())
    with pytest.raises(hydrorl.AlreadyExistsError, match="'Twin' exists already"):
        wb.create_system(two_reservoir_system())
    with pytest.raises(
        hydrorl.NotFoundError, match="no hydro system 'Nope'; known systems: 'Twin'"
    ):
        wb.system("Nope")


def test_delete_needs_cascade_when_the_system_has_forecasts(wb: hydrorl.Workbench) -> None:
    from tests.conftest import long_forecast

    wb.create_system(two_reservoir_system())
    wb.upload_forecast("Twin", long_forecast(), "f")
    wb.create_project("Twin", "p")
    with pytest.raises(hydrorl.HydroRLError, match="1 forecast\\(s\\) and 1 project\\(s\\)"):
        wb.delete_system("Twin")
    wb.delete_system("Twin", cascade=True)
    assert wb.systems().empty
    assert wb.forecasts().empty and wb.uploads().empty
    with wb.database.read() as session:
        from sqlalchemy import text

        assert session.execute(text("SELECT count(*) FROM time_data_value")).scalar() == 0


def test_json_file_with_wrong_types(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    data = two_reservoir_system().to_dict()
    data["power_stations"][0]["max_discharge_m3s"] = "fast"
    path.write_text(json.dumps(data))
    with pytest.raises(
        hydrorl.SystemValidationError,
        match=r"power_stations\[0\] \('Top PS'\): max_discharge_m3s must be a number",
    ):
        HydroSystem.from_file(path)


def test_a_system_file_that_is_not_text_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "river.yaml"
    path.write_bytes(b"name: R\n\xff\xfe\x00 binary")
    with pytest.raises(SystemValidationError, match=r"river.yaml: not UTF-8 text at byte 8"):
        HydroSystem.from_file(path)
