"""The ``hydrorl`` command line: set up the demo, inspect a database, add systems and forecasts."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import unquote

from hydrorl.errors import HydroRLError

if TYPE_CHECKING:
    from hydrorl.protocol import WorkbenchVerbs
    from hydrorl.service.client import RemoteWorkbench
    from hydrorl.workbench import Workbench


#: Exit status on Ctrl-C: 128 + SIGINT, as shells report a process stopped by it.
EXIT_INTERRUPTED = 130
#: Exit status on bad input or an unreachable database (argparse's own for bad arguments).
EXIT_ERROR = 2
#: Exit status on an unexpected error: a bug in HydroRL.
EXIT_BUG = 1

_EPILOG = """\
exit status:
  0    done
  2    bad input (arguments, files, names) or a database that cannot be used:
       one "hydrorl: error: ..." line on stderr, nothing half-written
  130  interrupted (Ctrl-C): "hydrorl: interrupted"; what it was writing is
       rolled back (an upload's staged values are removed)
  1    a bug in HydroRL: "hydrorl: internal error: ..." (--traceback shows where)
"""

# "scheme://user:password@": the password part, for messages that quote a URL.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^\s/]*@")


class _Parser(argparse.ArgumentParser):
    """Every refusal, a sub-command's too, reads ``hydrorl: error: ...`` (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"hydrorl: error: {message}\n")


def _whole_number(least: int, most: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in ``[least, most]``, refused before anything runs."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < least or (most is not None and value > most):
            bounds = f">= {least}" if most is None else f"between {least} and {most}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


def _database_url(text: str) -> str:
    """An argparse type: an SQLite file path, a URL SQLAlchemy can parse, or a HydroRL
    server's ``http(s)://`` URL."""
    if "://" not in text or _is_server(text):
        return text
    import sqlalchemy as sa

    try:
        sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError) as e:
        raise argparse.ArgumentTypeError(
            _hide_passwords(f"not a database URL ({e}): {text}", text)
        ) from None
    return text


def _is_server(url: str | None) -> bool:
    from hydrorl.service.connect import is_server

    return is_server(url)


def _hide_passwords(text: str, url: str | None) -> str:
    """``text`` with the password of ``url`` and of any URL it quotes shown as ``***``."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    if url and (found := re.match(r"[^:]*://[^:/@]*:(.*)@", url)) and found.group(1):
        for secret in {found.group(1), unquote(found.group(1))}:
            # Not inside a word: a short password must not garble the rest of the message.
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "***", text)
    return text


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hydrorl",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        type=_database_url,
        default=None,
        help="SQLAlchemy URL or SQLite file path, or a HydroRL server's http(s):// URL "
        "(default: $HYDRORL_DATABASE_URL, either of those, or ~/.hydrorl/hydrorl.db; a "
        "server's token in "
        "$HYDRORL_TOKEN); give a URL with a password in $HYDRORL_DATABASE_URL "
        "instead: every user can read a command line (ps)",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="create the embedded demo (system, forecast, project)")
    p.add_argument("--seed", type=_whole_number(0), default=0)
    p.add_argument("--scenarios", type=_whole_number(1), default=20)
    p.add_argument("--years", type=_whole_number(1), default=5)

    sub.add_parser("info", help="summarise what the database holds")

    p = sub.add_parser("dashboard", help="serve the workbench dashboard (panel serve)")
    p.add_argument("--port", type=_whole_number(0, 65535), default=5006)
    p.add_argument("--address", default="localhost")
    p.add_argument("--show", action="store_true", help="open it in a browser")
    p.add_argument(
        "--url",
        type=_database_url,
        default=None,
        help="the workbench to show: a HydroRL server's http(s):// URL (its token in "
        "$HYDRORL_TOKEN) or a database (default: --db)",
    )

    p = sub.add_parser("system", help="create a hydro system from a YAML or JSON file")
    p.add_argument("file")

    p = sub.add_parser(
        "baselines", help="bound, SDP benchmark and naive rules of a forecast, per scenario"
    )
    p.add_argument("forecast")
    p.add_argument("--system", default=None)
    p.add_argument(
        "--scenarios", type=_whole_number(1), default=None, help="only the first N scenarios"
    )

    p = sub.add_parser("upload", help="upload a forecast file (CSV, Parquet, Excel) for a system")
    p.add_argument("system")
    p.add_argument("file")
    p.add_argument("--name", default=None, help="forecast name (default: the file name)")
    p.add_argument("--allow-duplicate", action="store_true")
    p.add_argument(
        "--allow-implausible",
        action="store_true",
        help="store prices beyond +/-1e5 EUR/MWh or inflows above 1e6 m3/s "
        "(HYDRORL_MAX_ABS_PRICE_EUR_MWH, HYDRORL_MAX_INFLOW_M3S)",
    )
    p = sub.add_parser(
        "serve",
        help="serve the HTTP API (every route but /health needs a token: hydrorl token create)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1); beyond loopback only once a token exists",
    )
    p.add_argument("--port", type=_whole_number(0, 65535), default=8000)
    p.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="a web origin (https://host[:port]) whose pages may call the API; repeat for "
        "more (default HYDRORL_CORS_ORIGINS; none: CORS off)",
    )

    p = sub.add_parser("token", help="bearer tokens of the HTTP API (stored hashed)")
    token = p.add_subparsers(dest="token_command", required=True)
    t = token.add_parser(
        "create", help="create a token; its secret is printed once, alone on stdout"
    )
    t.add_argument("name")
    token.add_parser("list", help="list the tokens (never their secrets)")
    t = token.add_parser("revoke", help="revoke a token: the server refuses it from now on")
    t.add_argument("name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors end as one line on stderr and an exit status (see ``--help``)."""
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except KeyboardInterrupt:
        print("hydrorl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        if args.traceback:
            raise
        status, message = _describe(e)
        print(f"hydrorl: {_hide_passwords(message, _url_in_use(args))}", file=sys.stderr)
        return status
    return 0


def _run(args: argparse.Namespace) -> None:
    from hydrorl.errors import ValidationError
    from hydrorl.service.connect import connect  # heavy imports only where needed
    from hydrorl.settings import default_database_url

    url = getattr(args, "url", None) or args.db or default_database_url()
    if _is_server(url) and args.command in ("serve", "token"):
        raise ValidationError(
            f"hydrorl {args.command} works on a database: give --db a database URL or path, "
            f"not a HydroRL server's URL"
        )
    with connect(url) as wb:
        if args.command == "demo":
            where = wb.url if _is_server(url) else repr(wb.database)  # type: ignore[union-attr]
            print(f"Setting up the demo in {where} ...", flush=True)
            result = wb.setup_demo(seed=args.seed, scenarios=args.scenarios, years=args.years)
            made = ", ".join(result["created"]) or "nothing (it was there already)"
            print(f"Created: {made}")
            print(f"Forecast: {result['note']}")
            print(wb.summary())
            from hydrorl.voila import install_voila_template  # the dashboards' Voila template

            install_voila_template()
        elif args.command == "dashboard":
            _serve(wb, args)
        elif args.command == "serve":
            from hydrorl.service.serve import serve
            from hydrorl.workbench import Workbench

            assert isinstance(wb, Workbench)  # (a server's URL is refused above)
            serve(wb, host=args.host, port=args.port, cors_origins=args.cors_origin)
        elif args.command == "token":
            from hydrorl.service.serve import token_command
            from hydrorl.workbench import Workbench

            assert isinstance(wb, Workbench)
            token_command(wb, args.token_command, getattr(args, "name", None))
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
            print(f"Uploading {args.file} to {args.system!r} ...", flush=True)
            info = wb.upload_forecast(
                args.system,
                args.file,
                args.name,
                allow_duplicate=args.allow_duplicate,
                allow_implausible=args.allow_implausible,
            )
            print(
                f"Uploaded forecast {info.name!r}: {len(info.scenario_names)} scenarios x "
                f"{info.n_steps} steps of {info.step} from {info.start_time}"
            )


def _url_in_use(args: argparse.Namespace) -> str | None:
    from hydrorl.settings import DATABASE_URL_ENV

    return args.db or os.environ.get(DATABASE_URL_ENV)


def _describe(error: Exception) -> tuple[int, str]:
    """The exit status and the one message a user sees for ``error``."""
    sa_exc = sys.modules.get("sqlalchemy.exc")  # loaded if it can have raised
    cause = error.__cause__
    infrastructure: tuple[type[BaseException], ...] = (OSError, ImportError, UnicodeError)
    if sa_exc is not None:
        infrastructure += (sa_exc.SQLAlchemyError,)
    if isinstance(error, HydroRLError):
        text = str(error)
        if isinstance(cause, infrastructure):
            text = _one_line(text)
        return EXIT_ERROR, f"error: {text}"
    if sa_exc is not None and isinstance(error, sa_exc.SQLAlchemyError):
        return EXIT_ERROR, f"error: database: {_one_line(str(error))}"
    if isinstance(error, OSError):
        if error.filename is not None and error.strerror:
            return EXIT_ERROR, f"error: {error.filename}: {error.strerror}"
        return EXIT_ERROR, f"error: {_one_line(str(error))}"
    if isinstance(error, ImportError):
        return EXIT_ERROR, (
            f"error: a module this needs is not installed ({error}): install it "
            f"(for a database URL: its driver)"
        )
    if isinstance(error, UnicodeError):
        return EXIT_ERROR, f"error: a file is not UTF-8 text: {error}"
    return EXIT_BUG, (
        f"internal error: {type(error).__name__}: {_one_line(str(error))} "
        f"(a bug in HydroRL: run again with --traceback and report what it shows)"
    )


def _one_line(text: str) -> str:
    """A message on one line, without the SQL, parameters and link SQLAlchemy appends."""
    for marker in ("\n[SQL:", "\n(Background on this error"):
        text = text.split(marker, 1)[0]
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _serve(wb: WorkbenchVerbs, args: argparse.Namespace) -> None:
    import panel as pn

    from hydrorl.service.connect import connect
    from hydrorl.ui import WorkbenchApp, extension

    url = wb.url
    wb.systems()  # an unreachable server or a refused token fails here, not in every page
    extension(notifications=False)
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


def _print_baselines(wb: Workbench | RemoteWorkbench, args: argparse.Namespace) -> None:
    from hydrorl.comparison import baseline_table, summary_table
    from hydrorl.service.client import RemoteWorkbench

    if isinstance(wb, RemoteWorkbench):
        names = wb.forecast(args.forecast, args.system).scenario_names
        chosen = list(names[: args.scenarios]) if args.scenarios else None
        table = wb.baselines(args.forecast, args.system, scenarios=chosen, progress=True)
    else:
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
