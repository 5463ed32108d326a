"""Benchmark: forecast upload throughput against raw sqlite3 executemany and pandas.to_sql.

Run: ``python benchmarks/upload.py [--scenarios 20 100] [--repeat 3]``

For each forecast size it times, in one process and on fresh SQLite files in
the same folder, three ways of getting the same values into the same
``time_data_value`` table (same schema, same pragmas):

* HydroRL: ``Workbench.upload_forecast`` from a long DataFrame, everything
  included (validation, hashing, Upload/Forecast/SeriesLink rows, values, commit);
* the yardstick: raw ``sqlite3`` ``executemany`` of the prepared
  (series_id, step_index, value) tuples, one transaction;
* ``pandas.DataFrame.to_sql`` of the same rows (append, one transaction), both
  on a plain ``sqlite3`` connection (pandas then calls executemany itself) and
  on an SQLAlchemy connection (the way most pandas users write to a database).

It prints values/s for each and the ratios HydroRL/executemany (aim >= 0.5) and
HydroRL/to_sql (aim >= 3) for both to_sql paths, then the time to read one scenario back into numpy.
Best of ``--repeat`` runs each, since these machines are noisy.

Then it uploads a large generated CSV (``--csv-scenarios`` of the demo forecast, 5
years 3-hourly) through ``Workbench.upload_forecast`` in a fresh process and prints
the upload's peak memory (resident set above the process's after a small warm-up
upload, so that loading modules is not counted) per MB
of file and per MB of stored values (aim <= 3), and the longest write transaction of
the upload (rows and seconds, from ``WriteMeter``) against the yardstick measured in
the same process: raw ``executemany`` of all the forecast's values in one
transaction, the least a one-transaction upload would hold the write lock.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import hydrorl
from hydrorl.db import bulk, create_engine
from hydrorl.demo import demo_forecast, demo_system


def _fresh(folder: Path, name: str) -> tuple[hydrorl.Workbench, Path]:
    path = folder / f"{name}.db"
    for p in folder.glob(f"{name}.db*"):
        p.unlink()
    wb = hydrorl.connect(f"sqlite:///{path}")
    wb.create_system(demo_system())
    return wb, path


def _rows(table: hydrorl.ForecastTable) -> tuple[list[int], list[int], list[float]]:
    n_s, n_t = table.n_scenarios, table.n_steps
    values = np.stack([table.price_eur_mwh, table.inflow_m3s], axis=1).reshape(-1)
    ids = np.repeat(np.arange(1, 2 * n_s + 1), n_t)
    steps = np.tile(np.arange(n_t), 2 * n_s)
    return ids.tolist(), steps.tolist(), values.tolist()


def time_hydrorl(folder: Path, frame: pd.DataFrame) -> float:
    wb, _ = _fresh(folder, "hydrorl")
    start = time.perf_counter()
    wb.upload_forecast(demo_system().name, frame, "bench")
    elapsed = time.perf_counter() - start
    wb.close()
    return elapsed


def _prepared(folder: Path, name: str, n_series: int) -> Path:
    """Same schema (HydroRL's migrations) with the series rows the values point at."""
    wb, path = _fresh(folder, name)
    wb.close()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO time_data_series (id, kind, unit, length) VALUES (?, 'price', '', 0)",
            [(i,) for i in range(1, n_series + 1)],
        )
    return path


def _raw_connection(folder: Path, name: str, n_series: int) -> sqlite3.Connection:
    conn = sqlite3.connect(_prepared(folder, name, n_series), isolation_level=None)
    # The same per-connection settings as HydroRL's engine.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def time_executemany(folder: Path, rows: tuple[list[int], list[int], list[float]]) -> float:
    conn = _raw_connection(folder, "raw", max(rows[0]))
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO time_data_value (series_id, step_index, value) VALUES (?, ?, ?)",
        zip(*rows, strict=True),
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def time_to_sql(folder: Path, rows: tuple[list[int], list[int], list[float]]) -> float:
    conn = _raw_connection(folder, "to_sql", max(rows[0]))
    frame = pd.DataFrame({"series_id": rows[0], "step_index": rows[1], "value": rows[2]})
    conn.isolation_level = ""  # let pandas frame its own transaction
    start = time.perf_counter()
    frame.to_sql("time_data_value", conn, if_exists="append", index=False)
    conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def time_to_sql_engine(folder: Path, rows: tuple[list[int], list[int], list[float]]) -> float:
    engine = create_engine(f"sqlite:///{_prepared(folder, 'to_sql_engine', max(rows[0]))}")
    frame = pd.DataFrame({"series_id": rows[0], "step_index": rows[1], "value": rows[2]})
    start = time.perf_counter()
    with engine.begin() as conn:
        frame.to_sql("time_data_value", conn, if_exists="append", index=False)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def time_read_scenario(folder: Path, frame: pd.DataFrame, repeat: int) -> list[float]:
    wb, _ = _fresh(folder, "read")
    wb.upload_forecast(demo_system().name, frame, "bench")
    times = []
    for i in range(repeat * 5):
        start = time.perf_counter()
        table = wb.forecast_table("bench", scenarios=[i % 3])
        times.append(time.perf_counter() - start)
        assert table.price_eur_mwh.shape == (1, 14_608)
    wb.close()
    return times


def _status_mb(field: str) -> float:
    """A memory figure of this process (Linux): VmRSS now, VmHWM its peak."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith(f"{field}:"))
    return kb / 1024


def _reset_peak() -> None:
    # From here VmHWM counts anew (ru_maxrss cannot: Linux keeps the parent's across exec).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure_large_upload(folder: Path, csv: Path) -> dict[str, float]:
    """In this (fresh) process: upload ``csv``, its peak memory and its longest transaction."""
    wb, _ = _fresh(folder, "large")
    # A small upload first, so that the modules it loads (pyarrow for pandas' strings, ...)
    # are in the baseline rather than counted as the large upload's memory.
    small = folder / "small.csv"
    demo_forecast(scenarios=2, years=1).to_frame().to_csv(small, index=False)
    wb.upload_forecast(demo_system().name, small, "small")
    _reset_peak()
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    with bulk.WriteMeter(wb.database.engine) as meter:
        info = wb.upload_forecast(demo_system().name, csv, "large")
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    table = wb.forecast_table("large")
    wb.close()
    rows = _rows(table)
    yardstick = time_executemany(folder, rows)
    return {
        "file_mb": csv.stat().st_size / 2**20,
        "stored_mb": table.row_count * 16 / 2**20,
        "peak_mb": max(peak - before, 0.0),
        "seconds": seconds,
        "transactions": len(meter.writes),
        "longest_rows": meter.longest.rows,
        "longest_s": meter.longest.seconds,
        "most_rows": meter.most_rows.rows,
        "values": len(rows[0]),
        "yardstick_s": yardstick,
        "scenarios": len(info.scenario_names),
    }


def report_large_upload(folder: Path, scenarios: int) -> None:
    csv = folder / "large.csv"
    demo_forecast(scenarios=scenarios).to_frame().to_csv(csv, index=False)
    child = subprocess.run(
        [sys.executable, __file__, "--measure-large", str(folder), str(csv)],
        capture_output=True,
        text=True,
        check=True,
    )
    m = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"large CSV upload: {m['scenarios']} scenarios, {m['file_mb']:.0f} MiB file, "
        f"{m['stored_mb']:.0f} MiB of values, {m['seconds']:.1f} s\n"
        f"  peak memory {m['peak_mb']:.0f} MiB: {m['peak_mb'] / m['file_mb']:.2f} MiB per MiB "
        f"of file, {m['peak_mb'] / m['stored_mb']:.2f} x the stored values (aim <= 3)\n"
        f"  {m['transactions']} write transactions; the longest {m['longest_rows']:,} rows in "
        f"{m['longest_s']:.3f} s (the largest {m['most_rows']:,} rows); yardstick, one "
        f"executemany of all {m['values']:,} values: {m['yardstick_s']:.2f} s; longest / "
        f"yardstick = {m['longest_s'] / m['yardstick_s']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--csv-scenarios", type=int, default=100, help="scenarios of the large CSV (0: skip)"
    )
    parser.add_argument(
        "--measure-large", nargs=2, metavar=("FOLDER", "CSV"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure_large:
        print(json.dumps(measure_large_upload(*map(Path, args.measure_large))))
        return

    print(
        f"{'scenarios':>9} {'values':>10} {'hydrorl/s':>11} {'executemany/s':>14} "
        f"{'to_sql(sqlite3)/s':>18} {'to_sql(SQLAlchemy)/s':>21} | {'vs executemany':>14} "
        f"{'vs to_sql(sqlite3)':>19} {'vs to_sql(SQLAlchemy)':>22}"
    )
    with tempfile.TemporaryDirectory(prefix="hydrorl-bench-") as tmp:
        folder = Path(tmp)
        for n_s in args.scenarios:
            table = demo_forecast(scenarios=n_s)
            frame = table.to_frame()
            rows = _rows(table)
            n_values = len(rows[0])
            best = dict.fromkeys(["hydrorl", "executemany", "to_sql", "to_sql_sa"], np.inf)
            for _ in range(args.repeat):  # interleaved, so drifts hit all three alike
                best["hydrorl"] = min(best["hydrorl"], time_hydrorl(folder, frame))
                best["executemany"] = min(best["executemany"], time_executemany(folder, rows))
                best["to_sql"] = min(best["to_sql"], time_to_sql(folder, rows))
                best["to_sql_sa"] = min(best["to_sql_sa"], time_to_sql_engine(folder, rows))
            rate = {k: n_values / v for k, v in best.items()}
            h = rate["hydrorl"]
            print(
                f"{n_s:>9} {n_values:>10,} {h:>11,.0f} {rate['executemany']:>14,.0f} "
                f"{rate['to_sql']:>18,.0f} {rate['to_sql_sa']:>21,.0f} | "
                f"{h / rate['executemany']:>14.2f} {h / rate['to_sql']:>19.2f} "
                f"{h / rate['to_sql_sa']:>22.2f}",
                flush=True,
            )
        reads = time_read_scenario(folder, demo_forecast(scenarios=3).to_frame(), args.repeat)
        print(
            f"read one scenario (2 x 14,608 values) into numpy: median "
            f"{statistics.median(reads) * 1e3:.1f} ms, best {min(reads) * 1e3:.1f} ms"
        )
        if args.csv_scenarios:
            report_large_upload(folder, args.csv_scenarios)


if __name__ == "__main__":
    main()
