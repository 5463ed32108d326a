"""Reading and validating forecast files: price and inflow scenarios over time.

The forecast format is *long*: one row per scenario and time step, with columns

========  =================================================================
time      timestamp of the step's start (ISO 8601; with an offset it is
          converted to UTC, without one it is taken as UTC)
scenario  scenario name (optional: without it the file is one scenario "1")
price     electricity price in EUR/MWh (any sign, finite, plausible)
inflow    inflow in m³/s (finite, >= 0, plausible); each reservoir receives
          its ``inflow_factor`` share of it
========  =================================================================

Accepted aliases: ``timestamp``/``datetime`` for time, ``price_eur_mwh`` for
price, ``inflow_m3s`` for inflow; names are matched case-insensitively and other
columns are ignored.  Every scenario must cover the same regular time grid
(same start, same step, same number of steps), rows sorted by time within each
scenario.  CSV, Parquet and Excel (``.xlsx``, first sheet) files are read, as is
a pandas DataFrame in the same layout.

Files are read in chunks of :func:`~hydrorl.settings.upload_chunk_rows` rows and
hashed as they stream, so an upload holds under 3 times its stored values (16
bytes a row) at its peak, never the file itself.  The limits (file sizes, an
Excel file's inflated size, rows, plausible magnitudes) are the process-wide
settings of :mod:`hydrorl.settings`; each refusal names the limit and its
``HYDRORL_*`` variable.

This module knows nothing of the database: :func:`read_forecast` returns a
:class:`ForecastTable` of plain arrays, or raises
:class:`~hydrorl.errors.ForecastValidationError` naming the problem and where.
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from hydrorl import settings
from hydrorl.errors import ForecastValidationError

PRICE_UNIT = "EUR/MWh"
INFLOW_UNIT = "m3/s"
DEFAULT_SCENARIO = "1"
#: The longest scenario name (characters) every database stores (SeriesLink.scenario_name).
MAX_SCENARIO_NAME_CHARS = 200

_ALIASES = {
    "time": ("time", "timestamp", "datetime"),
    "scenario": ("scenario",),
    "price": ("price", "price_eur_mwh"),
    "inflow": ("inflow", "inflow_m3s"),
}
_REQUIRED = ("time", "price", "inflow")
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel"}
_MAGIC = {b"PAR1": "a Parquet file", b"PK\x03\x04": "a zip archive (e.g. an Excel file)"}
_HASH_BLOCK = 1 << 20
_RATIO_CHECKED_FROM = 1_000_000  # bytes inflated: small parts may compress oddly well


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
    source: str | Path | pd.DataFrame | bytes,
    *,
    name: str | None = None,
    allow_implausible: bool = False,
) -> ForecastTable:
    """Read and validate a forecast from a file path, a file's bytes or a DataFrame.

    ``bytes`` (e.g. from a browser's file input) need ``name``, the file name,
    whose extension says the format.  Raises ForecastValidationError with the
    file, column and row (or timestamp) of the first problem found; prices and
    inflows beyond the plausible (see :func:`check_table`) are refused unless
    ``allow_implausible``.
    """
    chunk_rows = settings.upload_chunk_rows()
    if isinstance(source, pd.DataFrame):
        opened = _open_frame(source, name or "<DataFrame>", chunk_rows)
    else:
        raw: Path | bytes
        if isinstance(source, bytes | bytearray):
            if not name:
                raise ForecastValidationError(
                    "name the uploaded file: its extension tells the format"
                )
            label, suffix, raw = name, Path(name).suffix, bytes(source)
        else:
            raw = Path(source)
            label, suffix = name or raw.name, raw.suffix
        fmt = _FORMATS.get(suffix.lower())
        if fmt is None:
            raise ForecastValidationError(
                f"{label}: unknown file type {suffix or '(no extension)'!r}; "
                f"use .csv, .parquet or .xlsx"
            )
        if isinstance(raw, Path) and not raw.is_file():
            raise ForecastValidationError(f"{label}: no such file {str(raw)!r}")
        opened = _OPENERS[fmt](raw, label, chunk_rows)
    reader = _Accumulator(opened, allow_implausible=allow_implausible)
    for chunk in opened.chunks:
        reader.add(chunk)
    return reader.finish()


def check_table(table: ForecastTable, *, allow_implausible: bool = False) -> ForecastTable:
    """Check a ForecastTable made elsewhere as a file would be: names, finiteness, magnitudes.

    Returns ``table``; raises ForecastValidationError naming the scenario and step.
    """
    label = table.source_name
    for s, scenario in enumerate(table.scenario_names):
        if len(scenario) > MAX_SCENARIO_NAME_CHARS:
            raise ForecastValidationError(
                f"{label}: scenario name {scenario[:40]!r}... (scenario {s}) has "
                f"{len(scenario)} characters; at most {MAX_SCENARIO_NAME_CHARS} are allowed"
            )
    for concept, values in (("price", table.price_eur_mwh), ("inflow", table.inflow_m3s)):
        problem = _value_problem(concept, values.reshape(-1), allow_implausible)
        if problem is not None:
            i, text = problem
            s, t = divmod(i, table.n_steps)
            stamp = table.start_time + t * table.step
            raise ForecastValidationError(
                f"{label}: scenario {table.scenario_names[s]!r}, step {t} (time {stamp}): {text}"
            )
    return table


def _value_problem(
    concept: str, numbers: np.ndarray, allow_implausible: bool
) -> tuple[int, str] | None:
    """The first non-finite, negative (inflow) or implausible value: its index and what is wrong."""
    nan = np.flatnonzero(np.isnan(numbers))
    if nan.size:
        return int(nan[0]), f"{concept} is missing (NaN or empty)"
    inf = np.flatnonzero(np.isinf(numbers))
    if inf.size:
        return int(inf[0]), f"{concept} is infinite ({numbers[inf[0]]})"
    if concept == "inflow":
        negative = np.flatnonzero(numbers < 0)
        if negative.size:
            return int(negative[0]), (
                f"inflow = {numbers[negative[0]]} is negative; inflow is in m3/s and must be >= 0"
            )
    if allow_implausible:
        return None
    if concept == "price":
        limit, unit, env = settings.max_abs_price_eur_mwh(), PRICE_UNIT, "MAX_ABS_PRICE_EUR_MWH"
        bad = np.flatnonzero(np.abs(numbers) > limit)
        beyond = f"beyond +/-{limit:g} {unit}"
    else:
        limit, unit, env = settings.max_inflow_m3s(), INFLOW_UNIT, "MAX_INFLOW_M3S"
        bad = np.flatnonzero(numbers > limit)
        beyond = f"above {limit:g} {unit}"
    if not bad.size:
        return None
    return int(bad[0]), (
        f"{concept} = {numbers[bad[0]]:g} {unit} is implausible ({beyond}, HYDRORL_{env}); "
        f"check the unit, or pass allow_implausible=True (CLI: --allow-implausible) to store it"
    )


# ---------------------------------------------------------------- opening the sources


@dataclasses.dataclass
class _Opened:
    """A source ready to stream: its columns, its chunks and (once they are read) its hash."""

    label: str
    fmt: str
    columns: list[Any]
    chunks: Iterator[pd.DataFrame]
    content_hash: Callable[[], str]
    size: int
    row_offset: int  # row numbers as the user sees them: line/sheet row, header being 1
    found: dict[str, Any] = dataclasses.field(default_factory=dict)


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _size_of(raw: Path | bytes) -> int:
    return raw.stat().st_size if isinstance(raw, Path) else len(raw)


def _binary(raw: Path | bytes) -> IO[bytes]:
    return raw.open("rb") if isinstance(raw, Path) else io.BytesIO(raw)


def _head(raw: Path | bytes) -> bytes:
    with _binary(raw) as f:
        return f.read(4096)


def _file_hash(raw: Path | bytes) -> str:
    if isinstance(raw, bytes):
        return hashlib.sha256(raw).hexdigest()
    digest = hashlib.sha256()
    with raw.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _check_file(raw: Path | bytes, label: str, fmt: str) -> int:
    """The file's size, after the checks every format shares: not empty, not too large."""
    size = _size_of(raw)
    if size == 0 or (size <= 4096 and not _head(raw).strip()):
        raise ForecastValidationError(f"{label}: the file is empty")
    if fmt == "excel":
        limit, env, what = settings.max_excel_bytes(), "MAX_EXCEL_BYTES", "Excel uploads"
        hint = "; save larger forecasts as CSV or Parquet"
    else:
        limit, env, what = settings.max_upload_bytes(), "MAX_UPLOAD_BYTES", "CSV and Parquet"
        hint = ""
    if size > limit:
        raise ForecastValidationError(
            f"{label}: the file is {_mb(size)}; the limit for {what} is {_mb(limit)} "
            f"(HYDRORL_{env}){hint}"
        )
    return size


def _looks_like(head: bytes) -> str | None:
    return next((what for magic, what in _MAGIC.items() if head.startswith(magic)), None)


class _HashingReader(io.RawIOBase):
    """Passes a file's bytes on while hashing them and checking that they are UTF-8."""

    def __init__(self, raw: IO[bytes], label: str) -> None:
        self._raw, self._label = raw, label
        self._digest = hashlib.sha256()
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._check(data, final=n == 0)
        self._digest.update(data)
        self._position += n
        return n

    def _check(self, data: bytes, *, final: bool) -> None:
        pending = len(self._decoder.getstate()[0])
        try:
            self._decoder.decode(data, final=final)
        except UnicodeDecodeError as e:
            at = self._position - pending + e.start
            raise ForecastValidationError(f"{self._label}: not UTF-8 text at byte {at}") from e

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_csv(raw: Path | bytes, label: str, chunk_rows: int) -> _Opened:
    size = _check_file(raw, label, "csv")
    head = _head(raw)
    looks_like = _looks_like(head)
    if looks_like or b"\x00" in head:
        raise ForecastValidationError(
            f"{label}: not a CSV text file (it looks like {looks_like or 'binary data'})"
        )
    try:
        with _binary(raw) as f:
            columns = list(pd.read_csv(f, nrows=0, skipinitialspace=True).columns)
    except UnicodeDecodeError as e:
        raise ForecastValidationError(f"{label}: not UTF-8 text at byte {e.start}") from e
    except pd.errors.EmptyDataError as e:
        raise ForecastValidationError(f"{label}: the file is empty") from e
    except (pd.errors.ParserError, ValueError) as e:
        raise ForecastValidationError(f"{label}: cannot be read as CSV: {e}") from e
    found = _find_columns(columns, label)
    reader = _HashingReader(_binary(raw), label)
    text_columns = {found[c]: str for c in ("time", "scenario") if c in found}

    def chunks() -> Iterator[pd.DataFrame]:
        with io.BufferedReader(reader) as stream:
            try:
                with pd.read_csv(
                    stream,
                    chunksize=chunk_rows,
                    skipinitialspace=True,
                    usecols=list(found.values()),
                    dtype=text_columns,
                ) as parts:
                    yield from parts
                while stream.read(_HASH_BLOCK):  # what the parser left unread still counts
                    pass
            except UnicodeDecodeError as e:
                raise ForecastValidationError(f"{label}: not UTF-8 text at byte {e.start}") from e
            except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
                raise ForecastValidationError(f"{label}: cannot be read as CSV: {e}") from e

    return _Opened(label, "csv", columns, chunks(), reader.hexdigest, size, 2, found)


def _open_parquet(raw: Path | bytes, label: str, chunk_rows: int) -> _Opened:
    import pyarrow.parquet as pq

    size = _check_file(raw, label, "parquet")
    head = _head(raw)
    if not head.startswith(b"PAR1"):
        like = _looks_like(head) or "text or other data"
        raise ForecastValidationError(f"{label}: not a Parquet file (it looks like {like})")
    handle = _binary(raw)
    try:
        parquet = pq.ParquetFile(handle)
        columns = [c for c in parquet.schema_arrow.names if not c.startswith("__index_level_")]
    except Exception as e:  # pyarrow raises several unrelated types for corrupt files
        handle.close()
        raise ForecastValidationError(f"{label}: cannot be read as Parquet: {e}") from e
    found = _find_columns(columns, label)

    def chunks() -> Iterator[pd.DataFrame]:
        with handle:
            batches = parquet.iter_batches(batch_size=chunk_rows, columns=list(found.values()))
            while True:
                try:
                    batch = next(batches, None)
                except Exception as e:
                    raise ForecastValidationError(f"{label}: cannot be read as Parquet: {e}") from e
                if batch is None:
                    return
                yield batch.to_pandas()

    return _Opened(label, "parquet", columns, chunks(), lambda: _file_hash(raw), size, 1, found)


def _check_inflation(archive: zipfile.ZipFile, label: str) -> None:
    """Refuse a zip bomb from the sizes its directory declares, before anything is inflated.

    Python's zip reader never inflates a part past its declared size, so these
    numbers bound what the parser can be made to read.
    """
    parts = archive.infolist()
    total = sum(p.file_size for p in parts)
    limit = settings.max_excel_uncompressed_bytes()
    if total > limit:
        raise ForecastValidationError(
            f"{label}: the Excel file inflates to {_mb(total)}; the limit is {_mb(limit)} "
            f"(HYDRORL_MAX_EXCEL_UNCOMPRESSED_BYTES); it was refused before parsing; "
            f"save large forecasts as CSV or Parquet"
        )
    most = settings.max_excel_compression_ratio()
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size >= _RATIO_CHECKED_FROM and ratio > most:
            raise ForecastValidationError(
                f"{label}: part {part.filename!r} of the Excel file inflates {ratio:,.0f} times "
                f"({part.compress_size:,} -> {part.file_size:,} bytes); the limit is {most:g} "
                f"(HYDRORL_MAX_EXCEL_COMPRESSION_RATIO): it looks like a zip bomb, refused "
                f"before parsing"
            )


def _open_excel(raw: Path | bytes, label: str, chunk_rows: int) -> _Opened:
    import openpyxl

    size = _check_file(raw, label, "excel")
    head = _head(raw)
    if not head.startswith(b"PK\x03\x04"):
        raise ForecastValidationError(
            f"{label}: not an Excel .xlsx file "
            f"(it looks like {_looks_like(head) or 'text or other data'})"
        )
    handle = _binary(raw)
    try:
        with zipfile.ZipFile(handle) as archive:
            _check_inflation(archive, label)
        handle.seek(0)
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True, keep_links=False)
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # a file's own <dimension> may lie; read what is there
        rows = sheet.iter_rows(values_only=True)
        header = list(next(rows, None) or ())
    except ForecastValidationError:
        handle.close()
        raise
    except Exception as e:  # openpyxl raises several unrelated types for corrupt files
        handle.close()
        raise ForecastValidationError(f"{label}: cannot be read as Excel: {e}") from e
    while header and header[-1] is None:
        header.pop()
    columns = [f"Unnamed: {i}" if c is None else c for i, c in enumerate(header)]
    if not columns:
        handle.close()
        raise ForecastValidationError(f"{label}: the file is empty")
    found = _find_columns(columns, label)
    wanted = [(columns.index(c), c) for c in found.values()]

    def chunks() -> Iterator[pd.DataFrame]:
        kept: list[tuple[Any, ...]] = []
        blank: list[tuple[Any, ...]] = []  # empty rows count only when data follows them
        try:
            with handle:
                for row in rows:
                    cells = tuple(row[j] if j < len(row) else None for j, _ in wanted)
                    if all(c is None for c in cells):
                        blank.append(cells)
                        continue
                    kept.extend(blank)
                    blank.clear()
                    kept.append(cells)
                    if len(kept) >= chunk_rows:
                        yield pd.DataFrame(kept, columns=[c for _, c in wanted])
                        kept = []
                book.close()
        except ForecastValidationError:
            raise
        except Exception as e:
            raise ForecastValidationError(f"{label}: cannot be read as Excel: {e}") from e
        if kept:
            yield pd.DataFrame(kept, columns=[c for _, c in wanted])

    return _Opened(label, "excel", columns, chunks(), lambda: _file_hash(raw), size, 2, found)


def _open_frame(frame: pd.DataFrame, label: str, chunk_rows: int) -> _Opened:
    frame = frame.reset_index(drop=True)
    digest = hashlib.sha256()
    digest.update(repr(list(map(str, frame.columns))).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
    size = int(frame.memory_usage(deep=True, index=False).sum())  # bytes in memory
    columns = list(frame.columns)
    if not columns and len(frame) == 0:
        raise ForecastValidationError(f"{label}: the file is empty")
    found = _find_columns(columns, label)
    parts = (frame.iloc[lo : lo + chunk_rows] for lo in range(0, len(frame), chunk_rows))
    hexdigest = digest.hexdigest()
    return _Opened(label, "dataframe", columns, parts, lambda: hexdigest, size, 0, found)


_OPENERS: dict[str, Callable[[Path | bytes, str, int], _Opened]] = {
    "csv": _open_csv,
    "parquet": _open_parquet,
    "excel": _open_excel,
}


def _find_columns(columns: Sequence[Any], label: str) -> dict[str, Any]:
    by_lower: dict[str, Any] = {}
    for c in columns:
        by_lower.setdefault(str(c).strip().lower(), c)
    found: dict[str, Any] = {}
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
        present = ", ".join(repr(str(c)) for c in columns) or "none"
        raise ForecastValidationError(
            f"{label}: missing column(s) {', '.join(hints)}; the file has {present}; "
            f"expected time, scenario (optional), price, inflow"
        )
    return found


# ---------------------------------------------------------------- validating while streaming


class _Accumulator:
    """Validates chunks of rows as they come and keeps only what the table needs.

    Kept per row: its scenario code (4 bytes) and its two values (16 bytes); the
    time grid is checked against each scenario's first time, step and last time,
    so no column of timestamps is ever held whole.  :meth:`finish` then places
    the values into the (scenarios, steps) arrays, freeing chunks as it goes.
    """

    def __init__(self, opened: _Opened, *, allow_implausible: bool) -> None:
        self.label, self.fmt, self.cols = opened.label, opened.fmt, opened.found
        self.opened = opened
        self.allow_implausible = allow_implausible
        self.max_rows = settings.max_forecast_rows()
        self.n_rows = 0
        self.names: list[str] = [] if "scenario" in self.cols else [DEFAULT_SCENARIO]
        self.index: dict[str, int] = {n: i for i, n in enumerate(self.names)}
        # Per scenario: rows so far, first and last time (ns), last row, step (0: not yet known).
        self.count = np.zeros(len(self.names), dtype=np.int64)
        self.first_time = np.zeros_like(self.count)
        self.last_time = np.zeros_like(self.count)
        self.last_row = np.zeros_like(self.count)
        self.step = np.zeros_like(self.count)
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def row(self, i: int) -> str:
        offset = self.opened.row_offset
        if offset == 0:
            return f"row {i}"
        return f"{'line' if self.fmt == 'csv' else 'row'} {i + offset}"

    def fail(self, concept: str, where: str, text: str) -> ForecastValidationError:
        return ForecastValidationError(
            f"{self.label}: column {self.cols[concept]!r}, {where}: {text}"
        )

    def add(self, chunk: pd.DataFrame) -> None:
        n, g0 = len(chunk), self.n_rows
        if n == 0:
            return
        if g0 + n > self.max_rows:
            raise ForecastValidationError(
                f"{self.label}: more than {self.max_rows:,} rows (scenarios x steps); the limit "
                f"is {self.max_rows:,} (HYDRORL_MAX_FORECAST_ROWS)"
            )
        time_ns = self._times(chunk, g0)
        codes = self._codes(chunk, g0)

        def at(i: int) -> str:
            stamp = pd.Timestamp(time_ns[i])
            return f"{self.row(g0 + i)} (scenario {self.names[codes[i]]!r}, time {stamp})"

        values = []
        for concept in ("price", "inflow"):
            raw = chunk[self.cols[concept]]
            numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
            problem = _value_problem(concept, numbers, self.allow_implausible)
            if problem is not None:
                i, text = problem
                value = raw.iloc[i]
                if text.endswith("(NaN or empty)") and not (
                    pd.isna(value) or (isinstance(value, str) and value.strip().lower() == "nan")
                ):
                    text = f"{concept} = {value!r} is not a number"
                raise self.fail(concept, at(i), text)
            values.append(numbers)
        self._check_grid(time_ns, codes, g0)
        self.chunks.append((codes, values[0], values[1]))
        self.n_rows += n

    def _times(self, chunk: pd.DataFrame, g0: int) -> np.ndarray:
        raw = chunk[self.cols["time"]]
        if pd.api.types.is_datetime64_any_dtype(raw):
            times = pd.to_datetime(raw, utc=True)
        else:
            times = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
        bad = np.flatnonzero(times.isna().to_numpy())
        if bad.size:
            i = int(bad[0])
            value = raw.iloc[i]
            what = "is empty" if pd.isna(value) else f"= {value!r} is not a timestamp"
            what += "" if pd.isna(value) else " (use ISO 8601)"
            raise self.fail("time", self.row(g0 + i), f"time {what}")
        return times.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)

    def _codes(self, chunk: pd.DataFrame, g0: int) -> np.ndarray:
        if "scenario" not in self.cols:
            return np.zeros(len(chunk), dtype=np.int32)
        raw = chunk[self.cols["scenario"]]
        missing = np.flatnonzero(raw.isna().to_numpy())
        if missing.size:
            raise self.fail("scenario", self.row(g0 + int(missing[0])), "scenario is empty")
        local, uniques = pd.factorize(raw.astype(str).str.strip())
        mapping = np.empty(len(uniques), dtype=np.int32)
        for k, unique in enumerate(uniques):
            name = str(unique)
            code = self.index.get(name)
            if code is None:
                if len(name) > MAX_SCENARIO_NAME_CHARS:
                    i = int(np.flatnonzero(local == k)[0])
                    raise self.fail(
                        "scenario",
                        self.row(g0 + i),
                        f"scenario name {name[:40]!r}... has {len(name)} characters; at most "
                        f"{MAX_SCENARIO_NAME_CHARS} are allowed",
                    )
                code = self.index[name] = len(self.names)
                self.names.append(name)
            mapping[k] = code
        grow = len(self.names) - len(self.count)
        if grow:
            for attr in ("count", "first_time", "last_time", "last_row", "step"):
                setattr(self, attr, np.concatenate([getattr(self, attr), np.zeros(grow, np.int64)]))
        return mapping[local]

    def _check_grid(self, time_ns: np.ndarray, codes: np.ndarray, g0: int) -> None:
        """Duplicated, unsorted or irregular times, each scenario continuing from the last chunk."""
        order = np.argsort(codes, kind="stable")
        cs, ts = codes[order], time_ns[order]
        rows = order.astype(np.int64) + g0
        first = np.ones(len(cs), dtype=bool)
        first[1:] = cs[1:] != cs[:-1]
        prev_t, prev_r = np.empty_like(ts), np.empty_like(rows)
        prev_t[1:], prev_r[1:] = ts[:-1], rows[:-1]
        prev_t[first], prev_r[first] = self.last_time[cs[first]], self.last_row[cs[first]]
        has_prev = ~first | (self.count[cs] > 0)
        diffs = ts - prev_t
        # A scenario's step is its first difference; every later one must equal it.
        unknown = np.flatnonzero(has_prev & (self.step[cs] == 0))
        if unknown.size:
            _, firsts = np.unique(cs[unknown], return_index=True)
            self.step[cs[unknown[firsts]]] = diffs[unknown[firsts]]
        expected = self.step[cs]
        dup = has_prev & (diffs == 0)
        back = has_prev & (diffs < 0)
        odd = has_prev & (diffs != expected)
        problems = np.flatnonzero(dup | back | odd)
        if problems.size:
            scenario = cs[problems[0]]
            own = cs == scenario
            k = next(int(np.flatnonzero(m & own)[0]) for m in (dup, back, odd) if (m & own).any())
            name, here, there = self.names[scenario], self.row(int(rows[k])), self.row(prev_r[k])
            t, before = pd.Timestamp(int(ts[k])), pd.Timestamp(int(prev_t[k]))
            if dup[k]:
                text = f"duplicated timestamp {t} in scenario {name!r} ({there} and {here})"
            elif back[k]:
                text = (
                    f"timestamps are not sorted in scenario {name!r}: {here} ({t}) comes after "
                    f"{there} ({before})"
                )
            else:
                text = (
                    f"irregular time step in scenario {name!r} at {here}: {before} -> {t} is "
                    f"{pd.Timedelta(int(diffs[k]))}, expected {pd.Timedelta(int(expected[k]))}"
                )
            raise ForecastValidationError(f"{self.label}: {text}")
        new = first & (self.count[cs] == 0)
        self.first_time[cs[new]] = ts[new]
        last = np.ones(len(cs), dtype=bool)
        last[:-1] = cs[1:] != cs[:-1]
        self.last_time[cs[last]], self.last_row[cs[last]] = ts[last], rows[last]
        self.count += np.bincount(codes, minlength=len(self.count))

    def finish(self) -> ForecastTable:
        if self.n_rows == 0:
            raise ForecastValidationError(f"{self.label}: it has a header but no data rows")
        names, count, step, first = self.names, self.count, self.step, self.first_time
        for s, scenario in enumerate(names):
            if count[s] < 2:
                raise ForecastValidationError(
                    f"{self.label}: scenario {scenario!r} has {count[s]} step; at least 2 are "
                    f"needed to know the step length"
                )
            if s == 0:
                continue
            if step[s] != step[0]:
                raise ForecastValidationError(
                    f"{self.label}: scenario {scenario!r} has a step of "
                    f"{pd.Timedelta(int(step[s]))}, scenario {names[0]!r} one of "
                    f"{pd.Timedelta(int(step[0]))}; all scenarios must share it"
                )
            if first[s] != first[0]:
                raise ForecastValidationError(
                    f"{self.label}: scenario {scenario!r} starts at {pd.Timestamp(int(first[s]))}"
                    f", scenario {names[0]!r} at {pd.Timestamp(int(first[0]))}; all scenarios "
                    f"must share the start"
                )
            if count[s] != count[0]:
                raise ForecastValidationError(
                    f"{self.label}: scenario {scenario!r} has {count[s]} steps, scenario "
                    f"{names[0]!r} has {count[0]}; all scenarios must have the same length"
                )
        if step[0] % 1_000_000_000:
            raise ForecastValidationError(
                f"{self.label}: the time step {pd.Timedelta(int(step[0]))} is not a whole number "
                f"of seconds"
            )
        content_hash = self.opened.content_hash()
        n_s, n_t = len(names), int(count[0])
        price, inflow = np.empty((n_s, n_t)), np.empty((n_s, n_t))
        filled = np.zeros(n_s, dtype=np.int64)
        self.chunks.reverse()
        while self.chunks:  # popped one by one: each chunk's memory goes as it is placed
            codes, p, q = self.chunks.pop()
            s0 = int(codes[0])
            if codes[-1] == s0 and (codes == s0).all():  # a scenario-major file: one slice
                lo = filled[s0]
                price[s0, lo : lo + len(codes)], inflow[s0, lo : lo + len(codes)] = p, q
            else:
                order = np.argsort(codes, kind="stable")
                cs = codes[order]
                starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
                rank = np.arange(len(cs)) - np.repeat(starts, np.diff(np.r_[starts, len(cs)]))
                at = filled[cs] + rank
                price[cs, at], inflow[cs, at] = p[order], q[order]
            filled += np.bincount(codes, minlength=n_s)
        return ForecastTable(
            scenario_names=tuple(names),
            start_time=pd.Timestamp(int(first[0])),
            step=pd.Timedelta(int(step[0])),
            price_eur_mwh=price,
            inflow_m3s=inflow,
            source_name=self.label,
            source_format=self.fmt,
            content_hash=content_hash,
            size_bytes=self.opened.size,
        )
