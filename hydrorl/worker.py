"""Entry point of HydroRL's background processes: ``python -m hydrorl.worker KIND URL ID``.

KIND is ``supervisor`` (a training run), ``agent`` (one agent of it) or
``evaluate`` (an evaluation run).  Users start these through the workbench
(``start_training``, ``resume``, ``evaluate``), not by hand.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hydrorl.worker", description=__doc__)
    parser.add_argument("kind", choices=["supervisor", "agent", "evaluate"])
    parser.add_argument("url")
    parser.add_argument("id", type=int)
    args = parser.parse_args(argv)
    if args.kind == "supervisor":
        from hydrorl.training.supervisor import supervise

        return supervise(args.url, args.id)
    if args.kind == "agent":
        from hydrorl.training.agent import train_agent

        return train_agent(args.url, args.id)
    from hydrorl.training.evaluate import evaluate_run

    return evaluate_run(args.url, args.id)


if __name__ == "__main__":
    sys.exit(main())
