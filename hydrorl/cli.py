"""The ``hydrorl`` command line: set up the demo, inspect a database, add systems and forecasts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hydrorl.errors import HydroRLError

if TYPE_CHECKING:
    from hydrorl.workbench import Workbench


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hydrorl", description=__doc__)
    parser.add_argument(
        "--db",
        metavar="URL",
        default=None,
        help="SQLAlchemy URL or SQLite file path (default: $HYDRORL_DATABASE_URL or "
        "~/.hydrorl/hydrorl.db)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="create the embedded demo (system, forecast, project)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scenarios", type=int, default=20)
    p.add_argument("--years", type=int, default=5)

    sub.add_parser("info", help="summarise what the database holds")

    p = sub.add_parser("dashboard", help="serve the workbench dashboard (panel serve)")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--address", default="localhost")
    p.add_argument("--show", action="store_true", help="open it in a browser")

    p = sub.add_parser("system", help="create a hydro system from a YAML or JSON file")
    p.add_argument("file")

    p = sub.add_parser(
        "baselines", help="bound, SDP benchmark and naive rules of a forecast, per scenario"
    )
    p.add_argument("forecast")
    p.add_argument("--system", default=None)
    p.add_argument("--scenarios", type=int, default=None, help="only the first N scenarios")

    p = sub.add_parser("upload", help="upload a forecast file (CSV, Parquet, Excel) for a system")
    p.add_argument("system")
    p.add_argument("file")
    p.add_argument("--name", default=None, help="forecast name (default: the file name)")
    p.add_argument("--allow-duplicate", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from hydrorl.workbench import connect  # heavy imports only once the arguments are fine

    try:
        wb = connect(args.db)
        if args.command == "demo":
            print(f"Setting up the demo in {wb.database!r} ...", flush=True)
            result = wb.setup_demo(seed=args.seed, scenarios=args.scenarios, years=args.years)
            made = ", ".join(result["created"]) or "nothing (it was there already)"
            print(f"Created: {made}")
            print(wb.summary())
        elif args.command == "dashboard":
            _serve(wb, args)
        elif args.command == "info":
            print(wb.summary())
        elif args.command == "system":
            system = wb.create_system(args.file)
            print(
                f"Created system {system.name!r} with {len(system.reservoirs)} reservoirs "
                f"and {len(system.power_stations)} power stations"
            )
        elif args.command == "baselines":
            _print_baselines(wb, args)
        elif args.command == "upload":
            info = wb.upload_forecast(
                args.system, args.file, args.name, allow_duplicate=args.allow_duplicate
            )
            print(
                f"Uploaded forecast {info.name!r}: {len(info.scenario_names)} scenarios x "
                f"{info.n_steps} steps of {info.step} from {info.start_time}"
            )
        wb.close()
    except HydroRLError as e:
        print(f"hydrorl: error: {e}", file=sys.stderr)
        return 2
    return 0


def _serve(wb: Workbench, args: argparse.Namespace) -> None:
    import panel as pn

    from hydrorl.ui import WorkbenchApp
    from hydrorl.workbench import connect

    url = wb.url
    pn.extension(notifications=False)
    print(
        f"Serving the HydroRL workbench on http://{args.address}:{args.port}/ ({url})", flush=True
    )

    def app() -> pn.template.BootstrapTemplate:  # one workbench per browser session
        return pn.template.BootstrapTemplate(title="HydroRL", main=[WorkbenchApp(connect(url))])

    pn.serve(
        app,
        port=args.port,
        address=args.address,
        show=args.show,
        title="HydroRL",
        websocket_origin=[
            f"{args.address}:{args.port}",
            f"localhost:{args.port}",
            f"127.0.0.1:{args.port}",
        ],
    )


def _print_baselines(wb: Workbench, args: argparse.Namespace) -> None:
    from hydrorl.comparison import baseline_table, summary_table

    problem = wb.problem(args.forecast, args.system)
    if args.scenarios:
        problem = problem.scenarios(list(range(min(args.scenarios, problem.n_scenarios))))
    table = baseline_table(problem, progress=True)
    print("Total value per scenario (MEUR: revenue + end water value):")
    print((table.set_index("scenario") / 1e6).round(2).to_string())
    print()
    print(summary_table(table).round(2).to_string(index=False))


if __name__ == "__main__":
    sys.exit(main())
