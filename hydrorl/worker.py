"""Entry point of HydroRL's background processes: ``python -m hydrorl.worker KIND ID``.

KIND is ``supervisor`` (a training run), ``agent`` (one agent of it) or
``evaluate`` (an evaluation run); ID is the row of that run or agent.  The
database URL comes from ``$HYDRORL_DATABASE_URL``, never from the command line:
a command line (and the password in a URL) is visible to every user in ``ps``,
a process's environment only to its owner.  Users start these through the
workbench (``start_training``, ``resume``, ``evaluate``), not by hand.
"""

from __future__ import annotations

import argparse
import os
import sys

from hydrorl.settings import DATABASE_URL_ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hydrorl.worker", description=__doc__)
    parser.add_argument("kind", choices=["supervisor", "agent", "evaluate"])
    parser.add_argument("id", type=int)
    args = parser.parse_args(argv)
    url = os.environ.get(DATABASE_URL_ENV)
    if not url:
        parser.error(f"${DATABASE_URL_ENV} must name the database (the workbench sets it)")
    if args.kind == "supervisor":
        from hydrorl.training.supervisor import supervise

        return supervise(url, args.id)
    if args.kind == "agent":
        from hydrorl.training.agent import train_agent

        return train_agent(url, args.id)
    from hydrorl.training.evaluate import evaluate_run

    return evaluate_run(url, args.id)


def _exit(code: int) -> None:
    """End the process at once: the work has reported and committed, and tearing down
    torch and its threads takes seconds that nobody should wait for (a supervisor
    waiting for its agents, a machine shutting down)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
