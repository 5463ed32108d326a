"""Reading and validating forecast files: price and inflow scenarios over time.

The forecast format is *long*: one row per scenario and time step, with columns

========  =================================================================
time      timestamp of the step's start (ISO 8601; with an offset it is
          converted to UTC, without one it is taken as UTC)
scenario  scenario name (optional: without it the file is one scenario "1")
price     electricity price in EUR/MWh (any sign, finite)
inflow    inflow in m³/s (finite, >= 0); each reservoir receives its
          ``inflow_factor`` share of it
========  =================================================================

Accepted aliases: ``timestamp``/``datetime`` for time, ``price_eur_mwh`` for
price, ``inflow_m3s`` for inflow; names are matched case-insensitively and other
columns are ignored.  Every scenario must cover the same regular time grid
(same start, same step, same number of steps), rows sorted by time within each
scenario.  CSV, Parquet and Excel (``.xlsx``, first sheet) files are read, as is
a pandas DataFrame in the same layout.

This module knows nothing of the database: :func:`read_forecast` returns a
:class:`ForecastTable` of plain arrays, or raises
:class:`~hydrorl.errors.ForecastValidationError` naming the problem and where.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from hydrorl.errors import ForecastValidationError

PRICE_UNIT = "EUR/MWh"
INFLOW_UNIT = "m3/s"
DEFAULT_SCENARIO = "1"

_ALIASES = {
    "time": ("time", "timestamp", "datetime"),
    "scenario": ("scenario",),
    "price": ("price", "price_eur_mwh"),
    "inflow": ("inflow", "inflow_m3s"),
}
_REQUIRED = ("time", "price", "inflow")
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel"}
_MAGIC = {b"PAR1": "a Parquet file", b"PK\x03\x04": "a zip archive (e.g. an Excel file)"}


@dataclasses.dataclass(frozen=True)
class ForecastTable:
    """A validated forecast: ``price`` and ``inflow`` arrays of shape (scenarios, steps)."""

    scenario_names: tuple[str, ...]
    start_time: pd.Timestamp
    step: pd.Timedelta
    price_eur_mwh: np.ndarray
    inflow_m3s: np.ndarray
    source_name: str = "<DataFrame>"
    source_format: str = "dataframe"
    content_hash: str = ""
    size_bytes: int = 0

    @property
    def n_scenarios(self) -> int:
        return len(self.scenario_names)

    @property
    def n_steps(self) -> int:
        return int(self.price_eur_mwh.shape[1])

    @property
    def row_count(self) -> int:
        return self.n_scenarios * self.n_steps

    @property
    def times(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start_time, periods=self.n_steps, freq=self.step)

    def to_frame(self) -> pd.DataFrame:
        """The forecast in the long format it is read from."""
        return long_frame(self.scenario_names, self.times, self.price_eur_mwh, self.inflow_m3s)


def long_frame(
    scenario_names: tuple[str, ...] | list[str],
    times: pd.DatetimeIndex,
    price: np.ndarray,
    inflow: np.ndarray,
) -> pd.DataFrame:
    """Scenario-major long DataFrame (time, scenario, price, inflow) from (S, T) arrays."""
    n_s, n_t = price.shape
    return pd.DataFrame(
        {
            "time": np.tile(times.values, n_s),
            "scenario": np.repeat(np.asarray(scenario_names, dtype=object), n_t),
            "price": price.reshape(-1),
            "inflow": inflow.reshape(-1),
        }
    )


def read_forecast(
    source: str | Path | pd.DataFrame | bytes, *, name: str | None = None
) -> ForecastTable:
    """Read and validate a forecast from a file path, a file's bytes or a DataFrame.

    ``bytes`` (e.g. from a browser's file input) need ``name``, the file name,
    whose extension says the format.  Raises ForecastValidationError with the
    file, column and row (or timestamp) of the first problem found.
    """
    if isinstance(source, bytes | bytearray):
        if not name:
            raise ForecastValidationError("name the uploaded file: its extension tells the format")
        fmt = _FORMATS.get(Path(name).suffix.lower())
        if fmt is None:
            raise ForecastValidationError(
                f"{name}: unknown file type {Path(name).suffix or '(no extension)'!r}; "
                f"use .csv, .parquet or .xlsx"
            )
        data = bytes(source)
        frame = _parse_bytes(data, fmt, name)
        offset = 2 if fmt in ("csv", "excel") else 1
        return _validate(
            frame, name, fmt, hashlib.sha256(data).hexdigest(), len(data), row_offset=offset
        )
    if isinstance(source, pd.DataFrame):
        label = name or "<DataFrame>"
        frame = source.reset_index(drop=True)
        digest = hashlib.sha256()
        digest.update(repr(list(map(str, frame.columns))).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
        size = int(frame.memory_usage(deep=True, index=False).sum())  # bytes in memory
        return _validate(frame, label, "dataframe", digest.hexdigest(), size, row_offset=0)
    path = Path(source)
    label = name or path.name
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ForecastValidationError(
            f"{label}: unknown file type {path.suffix or '(no extension)'!r}; "
            f"use .csv, .parquet or .xlsx"
        )
    if not path.is_file():
        raise ForecastValidationError(f"{label}: no such file {str(path)!r}")
    data = path.read_bytes()
    frame = _parse_bytes(data, fmt, label)
    # Row numbers as the user sees them: line/sheet row, header being 1.
    offset = 2 if fmt in ("csv", "excel") else 1
    return _validate(
        frame, label, fmt, hashlib.sha256(data).hexdigest(), len(data), row_offset=offset
    )


def _parse_bytes(data: bytes, fmt: str, label: str) -> pd.DataFrame:
    if not data.strip():
        raise ForecastValidationError(f"{label}: the file is empty")
    looks_like = next((what for magic, what in _MAGIC.items() if data.startswith(magic)), None)
    if fmt == "csv":
        if looks_like or b"\x00" in data[:4096]:
            raise ForecastValidationError(
                f"{label}: not a CSV text file (it looks like {looks_like or 'binary data'})"
            )
        try:
            return pd.read_csv(io.BytesIO(data), skipinitialspace=True)
        except UnicodeDecodeError as e:
            raise ForecastValidationError(f"{label}: not UTF-8 text at byte {e.start}") from e
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
            raise ForecastValidationError(f"{label}: cannot be read as CSV: {e}") from e
    if fmt == "parquet":
        if not data.startswith(b"PAR1"):
            raise ForecastValidationError(
                f"{label}: not a Parquet file (it looks like {looks_like or 'text or other data'})"
            )
        try:
            return pd.read_parquet(io.BytesIO(data))
        except Exception as e:  # pyarrow raises several unrelated types for corrupt files
            raise ForecastValidationError(f"{label}: cannot be read as Parquet: {e}") from e
    if not data.startswith(b"PK\x03\x04"):
        raise ForecastValidationError(
            f"{label}: not an Excel .xlsx file (it looks like {looks_like or 'text or other data'})"
        )
    try:
        return pd.read_excel(io.BytesIO(data), engine="openpyxl")
    except Exception as e:  # openpyxl raises several unrelated types for corrupt files
        raise ForecastValidationError(f"{label}: cannot be read as Excel: {e}") from e


def _find_columns(frame: pd.DataFrame, label: str) -> dict[str, object]:
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    found: dict[str, object] = {}
    for concept, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in by_lower:
                found[concept] = by_lower[alias]
                break
    missing = [c for c in _REQUIRED if c not in found]
    if missing:
        hints = []
        for concept in missing:
            close = difflib.get_close_matches(concept, list(by_lower), n=1, cutoff=0.6)
            hints.append(
                f"{concept!r}" + (f" (did you mean {by_lower[close[0]]!r}?)" if close else "")
            )
        present = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        raise ForecastValidationError(
            f"{label}: missing column(s) {', '.join(hints)}; the file has {present}; "
            f"expected time, scenario (optional), price, inflow"
        )
    return found


def _validate(
    frame: pd.DataFrame, label: str, fmt: str, content_hash: str, size: int, *, row_offset: int
) -> ForecastTable:
    if len(frame.columns) == 0 and len(frame) == 0:
        raise ForecastValidationError(f"{label}: the file is empty")
    cols = _find_columns(frame, label)
    if len(frame) == 0:
        raise ForecastValidationError(f"{label}: it has a header but no data rows")

    def row(i: int) -> str:
        if row_offset == 0:
            return f"row {i}"
        return f"{'line' if fmt == 'csv' else 'row'} {i + row_offset}"

    # time
    raw_time = frame[cols["time"]]
    if pd.api.types.is_datetime64_any_dtype(raw_time):
        times = pd.to_datetime(raw_time, utc=True)
    else:
        times = pd.to_datetime(raw_time, errors="coerce", utc=True, format="ISO8601")
    bad = np.flatnonzero(times.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        value = raw_time.iloc[i]
        what = "is empty" if pd.isna(value) else f"= {value!r} is not a timestamp (use ISO 8601)"
        raise ForecastValidationError(f"{label}: column {cols['time']!r}, {row(i)}: time {what}")
    time_ns = times.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)

    # scenario
    if "scenario" in cols:
        raw_scenario = frame[cols["scenario"]]
        missing = np.flatnonzero(raw_scenario.isna().to_numpy())
        if missing.size:
            raise ForecastValidationError(
                f"{label}: column {cols['scenario']!r}, {row(int(missing[0]))}: scenario is empty"
            )
        codes, uniques = pd.factorize(raw_scenario.astype(str).str.strip())
        names = tuple(str(u) for u in uniques)
    else:
        codes, names = np.zeros(len(frame), dtype=np.int64), (DEFAULT_SCENARIO,)

    def at(i: int) -> str:
        stamp = pd.Timestamp(time_ns[i])
        return f"{row(i)} (scenario {names[codes[i]]!r}, time {stamp})"

    # numbers
    values = {}
    for concept in ("price", "inflow"):
        column = cols[concept]
        raw = frame[column]
        numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        nan = np.flatnonzero(np.isnan(numbers))
        if nan.size:
            i = int(nan[0])
            value = raw.iloc[i]
            if pd.isna(value) or (isinstance(value, str) and value.strip().lower() == "nan"):
                problem = "is missing (NaN or empty)"
            else:
                problem = f"= {value!r} is not a number"
            raise ForecastValidationError(
                f"{label}: column {column!r}, {at(i)}: {concept} {problem}"
            )
        inf = np.flatnonzero(np.isinf(numbers))
        if inf.size:
            i = int(inf[0])
            raise ForecastValidationError(
                f"{label}: column {column!r}, {at(i)}: {concept} is infinite ({numbers[i]})"
            )
        values[concept] = numbers
    negative = np.flatnonzero(values["inflow"] < 0)
    if negative.size:
        i = int(negative[0])
        raise ForecastValidationError(
            f"{label}: column {cols['inflow']!r}, {at(i)}: inflow = {values['inflow'][i]} is "
            f"negative; inflow is in m3/s and must be >= 0"
        )

    # the time grid, scenario by scenario, in file order within each scenario
    order = np.argsort(codes, kind="stable")
    sorted_times = time_ns[order]
    counts = np.bincount(codes, minlength=len(names))
    bounds = np.concatenate([[0], np.cumsum(counts)])
    step_ns: int | None = None
    for s, scenario in enumerate(names):
        lo, hi = bounds[s], bounds[s + 1]
        t = sorted_times[lo:hi]
        rows = order[lo:hi]
        if len(t) < 2:
            raise ForecastValidationError(
                f"{label}: scenario {scenario!r} has {len(t)} step; at least 2 are needed "
                f"to know the step length"
            )
        diffs = np.diff(t)
        dup = np.flatnonzero(diffs == 0)
        if dup.size:
            k = int(dup[0])
            raise ForecastValidationError(
                f"{label}: duplicated timestamp {pd.Timestamp(t[k])} in scenario {scenario!r} "
                f"({row(int(rows[k]))} and {row(int(rows[k + 1]))})"
            )
        back = np.flatnonzero(diffs < 0)
        if back.size:
            k = int(back[0])
            raise ForecastValidationError(
                f"{label}: timestamps are not sorted in scenario {scenario!r}: "
                f"{row(int(rows[k + 1]))} ({pd.Timestamp(t[k + 1])}) comes after "
                f"{row(int(rows[k]))} ({pd.Timestamp(t[k])})"
            )
        first = int(diffs[0])
        odd = np.flatnonzero(diffs != first)
        if odd.size:
            k = int(odd[0])
            raise ForecastValidationError(
                f"{label}: irregular time step in scenario {scenario!r} at {row(int(rows[k + 1]))}:"
                f" {pd.Timestamp(t[k])} -> {pd.Timestamp(t[k + 1])} is "
                f"{pd.Timedelta(int(diffs[k]))}, expected {pd.Timedelta(first)}"
            )
        if s == 0:
            step_ns, start0, n0 = first, t[0], len(t)
            continue
        if first != step_ns:
            raise ForecastValidationError(
                f"{label}: scenario {scenario!r} has a step of {pd.Timedelta(first)}, "
                f"scenario {names[0]!r} one of {pd.Timedelta(step_ns)}; all scenarios must share it"
            )
        if t[0] != start0:
            raise ForecastValidationError(
                f"{label}: scenario {scenario!r} starts at {pd.Timestamp(t[0])}, scenario "
                f"{names[0]!r} at {pd.Timestamp(start0)}; all scenarios must share the start"
            )
        if len(t) != n0:
            raise ForecastValidationError(
                f"{label}: scenario {scenario!r} has {len(t)} steps, scenario {names[0]!r} has "
                f"{n0}; all scenarios must have the same length"
            )
    assert step_ns is not None
    if step_ns % 1_000_000_000:
        raise ForecastValidationError(
            f"{label}: the time step {pd.Timedelta(step_ns)} is not a whole number of seconds"
        )
    shape = (len(names), int(counts[0]))
    return ForecastTable(
        scenario_names=names,
        start_time=pd.Timestamp(sorted_times[0]),
        step=pd.Timedelta(step_ns),
        price_eur_mwh=values["price"][order].reshape(shape),
        inflow_m3s=values["inflow"][order].reshape(shape),
        source_name=label,
        source_format=fmt,
        content_hash=content_hash,
        size_bytes=size,
    )
