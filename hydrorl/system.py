"""Hydro systems: reservoirs and power stations, validated, from Python or a YAML/JSON file.

A system is plain data (frozen dataclasses) so that the physics, the database
and the UI can share it without importing each other.  Units are in the names:
volumes in Mm³, discharges in m³/s, energy equivalents in kWh/m³.

Water routing: a station draws from its ``upstream`` reservoir and releases into
its ``downstream`` reservoir, or into the sea when that is ``None``.  A
reservoir's forced spill goes where its first station sends its water (the sea
for a reservoir without a station).

File format (YAML or JSON)::

    name: Demo river
    description: optional text
    reservoirs:
      - {name: Upper, min_volume_mm3: 0, max_volume_mm3: 800, inflow_factor: 0.6}
    power_stations:
      - {name: Upper PS, upstream: Upper, downstream: null,
         max_discharge_m3s: 120, energy_equivalent_kwh_m3: 1.1}
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from hydrorl.errors import SystemValidationError


@dataclasses.dataclass(frozen=True)
class Reservoir:
    """A reservoir: volume limits (Mm³) and the share of the scenario inflow that enters it."""

    name: str
    min_volume_mm3: float
    max_volume_mm3: float
    inflow_factor: float


@dataclasses.dataclass(frozen=True)
class PowerStation:
    """A station drawing from ``upstream`` into ``downstream`` (``None``: the sea)."""

    name: str
    upstream: str
    downstream: str | None
    max_discharge_m3s: float
    energy_equivalent_kwh_m3: float


@dataclasses.dataclass(frozen=True)
class HydroSystem:
    """A cascade of reservoirs and power stations.  Construct it, then :meth:`validate`."""

    name: str
    reservoirs: tuple[Reservoir, ...]
    power_stations: tuple[PowerStation, ...]
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reservoirs", tuple(self.reservoirs))
        object.__setattr__(self, "power_stations", tuple(self.power_stations))

    # ------------------------------------------------------------------ validation

    def validate(self) -> HydroSystem:
        """Check every rule; raise :class:`SystemValidationError` naming the first broken one."""
        where = f"system {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise SystemValidationError("the system needs a non-empty name")
        if len(self.name) > NAME_MAX_CHARS:
            raise SystemValidationError(
                f"the system name is {len(self.name)} characters long; at most {NAME_MAX_CHARS}"
            )
        if not isinstance(self.description, str):
            raise SystemValidationError(f"{where}: description must be text")
        if not self.reservoirs:
            raise SystemValidationError(f"{where}: it has no reservoirs; add at least one")
        seen: set[str] = set()
        for i, r in enumerate(self.reservoirs):
            at = f"{where}: reservoirs[{i}]"
            _check_name(r.name, at, seen, "reservoir")
            at = f"{at} ({r.name!r})"
            _check_number(r.min_volume_mm3, f"{at}: min_volume_mm3", minimum=0.0)
            _check_number(r.max_volume_mm3, f"{at}: max_volume_mm3", minimum=0.0, strict=True)
            _check_number(r.inflow_factor, f"{at}: inflow_factor", minimum=0.0)
            if r.min_volume_mm3 > r.max_volume_mm3:
                raise SystemValidationError(
                    f"{at}: min_volume_mm3 = {r.min_volume_mm3} is above "
                    f"max_volume_mm3 = {r.max_volume_mm3}; min must be <= max"
                )
        seen_stations: set[str] = set()
        for i, s in enumerate(self.power_stations):
            at = f"{where}: power_stations[{i}]"
            _check_name(s.name, at, seen_stations, "power station")
            at = f"{at} ({s.name!r})"
            if s.upstream not in seen:
                raise SystemValidationError(
                    f"{at}: upstream {s.upstream!r} is not a reservoir of this system "
                    f"(reservoirs: {', '.join(sorted(seen))})"
                )
            if s.downstream is not None:
                if s.downstream not in seen:
                    raise SystemValidationError(
                        f"{at}: downstream {s.downstream!r} is not a reservoir of this system "
                        f"(reservoirs: {', '.join(sorted(seen))}); use null for the sea"
                    )
                if s.downstream == s.upstream:
                    raise SystemValidationError(
                        f"{at}: it draws from and releases into the same reservoir {s.upstream!r}"
                    )
            _check_number(s.max_discharge_m3s, f"{at}: max_discharge_m3s", minimum=0.0, strict=True)
            _check_number(
                s.energy_equivalent_kwh_m3, f"{at}: energy_equivalent_kwh_m3", minimum=0.0
            )
        cycle = self._find_cycle()
        if cycle:
            raise SystemValidationError(
                f"{where}: the cascade has a cycle: {' -> '.join(cycle)}; water must reach the sea"
            )
        return self

    def _find_cycle(self) -> list[str] | None:
        below: dict[str, list[str]] = {r.name: [] for r in self.reservoirs}
        for s in self.power_stations:
            if s.downstream is not None and s.upstream in below:
                below[s.upstream].append(s.downstream)
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        path: list[str] = []

        def visit(node: str) -> list[str] | None:
            state[node] = 1
            path.append(node)
            for nxt in below.get(node, []):
                if state.get(nxt) == 1:
                    return path[path.index(nxt) :] + [nxt]
                if nxt not in state and (found := visit(nxt)):
                    return found
            path.pop()
            state[node] = 2
            return None

        for name in below:
            if name not in state and (found := visit(name)):
                return found
        return None

    # ------------------------------------------------------------------ derived facts

    @property
    def reservoir_names(self) -> list[str]:
        return [r.name for r in self.reservoirs]

    def stations_from(self, reservoir: str) -> list[PowerStation]:
        """The stations drawing from ``reservoir``, in definition order."""
        return [s for s in self.power_stations if s.upstream == reservoir]

    def spill_target(self, reservoir: str) -> str | None:
        """Where the reservoir's forced spill goes: its first station's downstream, or the sea."""
        stations = self.stations_from(reservoir)
        return stations[0].downstream if stations else None

    def energy_to_sea_kwh_m3(self, reservoir: str) -> float:
        """Energy one m³ stored in ``reservoir`` can still make on its best way to the sea."""
        best = 0.0
        for s in self.stations_from(reservoir):
            rest = 0.0 if s.downstream is None else self.energy_to_sea_kwh_m3(s.downstream)
            best = max(best, s.energy_equivalent_kwh_m3 + rest)
        return best

    def topological_order(self) -> list[str]:
        """Reservoir names, every one before the reservoirs it releases into."""
        indegree = {r.name: 0 for r in self.reservoirs}
        for s in self.power_stations:
            if s.downstream is not None:
                indegree[s.downstream] += 1
        order: list[str] = []
        ready = [n for n in indegree if indegree[n] == 0]
        while ready:
            node = ready.pop(0)
            order.append(node)
            for s in self.stations_from(node):
                if s.downstream is not None:
                    indegree[s.downstream] -= 1
                    if indegree[s.downstream] == 0:
                        ready.append(s.downstream)
        return order

    # ------------------------------------------------------------------ conversions

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "reservoirs": [dataclasses.asdict(r) for r in self.reservoirs],
            "power_stations": [dataclasses.asdict(s) for s in self.power_stations],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "system") -> HydroSystem:
        """Build and validate a system from plain data; errors name the field and ``source``."""
        if not isinstance(data, Mapping):
            raise SystemValidationError(
                f"{source}: expected a mapping with name, reservoirs and "
                f"power_stations, got {type(data).__name__}"
            )
        _check_keys(data, {"name", "reservoirs"}, {"description", "power_stations"}, source)
        reservoirs = tuple(
            Reservoir(**_fields(item, Reservoir, f"{source}: reservoirs[{i}]", {}))
            for i, item in enumerate(_list(data["reservoirs"], f"{source}: reservoirs"))
        )
        stations = tuple(
            PowerStation(
                **_fields(
                    item, PowerStation, f"{source}: power_stations[{i}]", {"downstream": None}
                )
            )
            for i, item in enumerate(
                _list(data.get("power_stations") or [], f"{source}: power_stations")
            )
        )
        system = cls(
            name=data["name"],
            description=data.get("description") or "",
            reservoirs=reservoirs,
            power_stations=stations,
        )
        try:
            return system.validate()
        except SystemValidationError as e:
            raise SystemValidationError(f"{source}: {e}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> HydroSystem:
        """Read a system from a ``.yaml``/``.yml`` or ``.json`` file (see the module docstring)."""
        path = Path(path)
        if not path.is_file():
            raise SystemValidationError(f"{path}: no such file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise SystemValidationError(f"{path}: not UTF-8 text at byte {e.start}") from e
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            elif path.suffix.lower() in {".yaml", ".yml"}:
                data = yaml.safe_load(text)
            else:
                raise SystemValidationError(
                    f"{path}: unknown extension {path.suffix!r}; use .yaml, .yml or .json"
                )
        except (json.JSONDecodeError, yaml.YAMLError) as e:
            raise SystemValidationError(f"{path}: not valid {path.suffix[1:].upper()}: {e}") from e
        return cls.from_dict(data, source=str(path))

    def to_file(self, path: str | Path) -> None:
        path = Path(path)
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")


#: The longest name (characters) of a system, reservoir or station: what every backend stores.
NAME_MAX_CHARS = 200


def _check_name(name: object, at: str, seen: set[str], what: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise SystemValidationError(f"{at}: the {what} needs a non-empty name, got {name!r}")
    if len(name) > NAME_MAX_CHARS:
        raise SystemValidationError(
            f"{at}: the {what} name is {len(name)} characters long; at most {NAME_MAX_CHARS}"
        )
    if name in seen:
        raise SystemValidationError(f"{at}: {what} name {name!r} is used twice")
    seen.add(name)


def _check_number(value: object, at: str, *, minimum: float, strict: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SystemValidationError(f"{at} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise SystemValidationError(f"{at} must be finite, got {value!r}")
    if value < minimum or (strict and value == minimum):
        rule = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise SystemValidationError(f"{at} = {value!r} must be {rule}")


def _check_keys(data: Mapping[str, Any], required: set[str], optional: set[str], at: str) -> None:
    missing = sorted(required - set(data))
    if missing:
        raise SystemValidationError(f"{at}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(data) - required - optional)
    if unknown:
        raise SystemValidationError(
            f"{at}: unknown field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(required | optional))}"
        )


def _list(value: object, at: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise SystemValidationError(f"{at} must be a list, got {type(value).__name__}")
    return value


def _fields(item: object, cls: type, at: str, defaults: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise SystemValidationError(f"{at} must be a mapping, got {item!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    _check_keys(item, names - set(defaults), set(defaults), at)
    return {**defaults, **item}
