"""Where HydroRL's background work runs: the launcher seam.

Every process of a run (the supervisor of a training run, each of its agents, an
evaluation) is the one worker entry point, :func:`hydrorl.worker.main` with a kind and a
row id; a launcher decides where it runs and tells whoever started it how it ended.
Which launcher a run uses is its executor, one setting: ``TrainingSettings.executor``
or, where a project does not name one, ``$HYDRORL_EXECUTOR``:

* ``local`` (the default): a child process of this machine (:class:`LocalLauncher`);
* ``ray``, ``ray:auto``, ``ray:HOST:PORT`` or ``ray://HOST:PORT`` (Ray Client): a Ray
  cluster (:class:`RayLauncher`, the optional extra ``hydrorl[ray]``).  The supervisor
  and an evaluation are detached actors (they outlive the notebook that started them),
  each agent a task of one CPU owned by its supervisor.

Whatever runs the work, a row is judged alive by the one liveness model
(:mod:`hydrorl.jobs.liveness`: its pid on its own host, its heartbeat elsewhere), and it
is stopped through the database (a control row), never through the launcher.  The
database URL reaches a worker in its environment (``$HYDRORL_DATABASE_URL``), never on
a command line or in a task's arguments.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

from hydrorl.errors import ValidationError
from hydrorl.settings import DATABASE_URL_ENV

EXECUTOR_ENV = "HYDRORL_EXECUTOR"
LOCAL = "local"
#: What a Ray worker is told of its threads: one CPU each (the resources it asks for).
RAY_AGENT_CPUS = 1


class Launched(Protocol):
    """A worker started by a launcher."""

    #: The process id where it is known at once (a local child); None where the worker
    #: names itself when it claims its row (on Ray).
    pid: int | None

    def poll(self) -> int | None:
        """Its exit code once it has ended (negative: killed by that signal), else None."""
        ...

    def how_it_ended(self, code: int) -> str:
        """How it ended, for a status reason (``killed by signal SIGKILL``, ``Ray: ...``)."""
        ...

    def output_tail(self, lines: int = 30) -> str:
        """The last lines it wrote, where they can be read from here ("" if not)."""
        ...

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for it to end; whether it has."""
        ...

    def kill(self) -> None:
        """End it at once (it has reported, or it hangs)."""
        ...


class Launcher(Protocol):
    """Starts workers somewhere; see the module docstring."""

    executor: str

    def start(self, kind: str, url: str, row_id: int, log: Path, *, detach: bool) -> Launched:
        """Start the worker ``kind`` (``supervisor``, ``agent``, ``evaluate``) of row
        ``row_id`` on the database ``url``, its output in ``log`` where that is a file this
        machine can write; ``detach``: it must outlive whoever started it."""
        ...


def executor_of(setting: str | None = None) -> str:
    """The executor a new run uses: ``setting`` (a project's), else ``$HYDRORL_EXECUTOR``,
    else ``local``; refused (ValidationError naming it) if it is none of the module's."""
    value = (setting or os.environ.get(EXECUTOR_ENV) or LOCAL).strip()
    if value == LOCAL or value == "ray" or value.startswith(("ray:", "ray://")):
        return value
    where = "the setting 'executor'" if setting else f"${EXECUTOR_ENV}"
    raise ValidationError(
        f"{where} = {value!r} names no executor: use 'local' or a Ray cluster "
        "('ray', 'ray:auto', 'ray:HOST:PORT' or 'ray://HOST:PORT')"
    )


def launcher_for(executor: str | None) -> Launcher:
    """The launcher of ``executor`` (see :func:`executor_of`; None or "": local)."""
    executor = executor or LOCAL
    if executor == LOCAL:
        return LocalLauncher()
    return RayLauncher(executor)


# ---------------------------------------------------------------------- local


class LocalProcess:
    """A child process of this machine."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process, self.log = process, log
        self.pid: int | None = process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def how_it_ended(self, code: int) -> str:
        return f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"

    def output_tail(self, lines: int = 30) -> str:
        return log_tail(self.log, lines)

    def wait(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


class LocalLauncher:
    """``python -m hydrorl.worker KIND ID`` as a child process of this machine."""

    executor = LOCAL

    def start(self, kind: str, url: str, row_id: int, log: Path, *, detach: bool) -> LocalProcess:
        """The URL travels in the child's environment, not on its command line (which every
        user of the machine reads in ``ps``); ``detach`` starts it in a session of its own:
        closing the notebook kernel, Voila page or server that launched it does not take it
        down."""
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", DATABASE_URL_ENV: url}
        env[EXECUTOR_ENV] = self.executor
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "hydrorl.worker", kind, str(row_id)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=detach,
                close_fds=True,
            )
        return LocalProcess(process, log)


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------- Ray


def ray_address(executor: str) -> str | None:
    """The address ``ray.init`` takes for ``executor``: None for ``ray`` (the cluster that
    ``$RAY_ADDRESS`` names, or a new local one), else what follows ``ray:``."""
    if executor == "ray":
        return None
    if executor.startswith("ray://"):
        return executor
    return executor.removeprefix("ray:")


def _connect(executor: str) -> Any:
    try:
        import ray
    except ImportError as e:
        raise ValidationError(
            f"executor {executor!r} needs Ray: pip install 'hydrorl[ray]' (here and on the "
            "cluster's nodes)"
        ) from e
    if not ray.is_initialized():
        ray.init(
            address=ray_address(executor),
            namespace="hydrorl",
            log_to_driver=False,
            configure_logging=False,
        )
    return ray


def run_worker(kind: str, row_id: int, threads: int) -> int:
    """The worker, inside a Ray worker process: the database URL from the environment the
    launcher gave it, torch's threads from the CPUs Ray gave it."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # (an evaluation of a classical policy needs no torch)
        pass
    from hydrorl.worker import main

    return main([kind, str(row_id)])


class _DetachedWorker:
    """A detached Ray actor that runs one worker (a supervisor, an evaluation) and exits."""

    def work(self, kind: str, row_id: int, threads: int) -> int:
        import ray

        try:
            return run_worker(kind, row_id, threads)
        finally:
            ray.actor.exit_actor()


class RayTask:
    """A worker running as a Ray task (or detached actor) of the cluster."""

    pid: int | None = None

    def __init__(self, ref: Any) -> None:
        self.ref = ref
        self.error: BaseException | None = None
        self.code: int | None = None

    def poll(self) -> int | None:
        import ray

        if self.code is not None:
            return self.code
        ready, _ = ray.wait([self.ref], timeout=0)
        if not ready:
            return None
        try:
            self.code = int(ray.get(self.ref))
        except ray.exceptions.RayError as e:  # the worker or its node died, or it raised
            self.error, self.code = e, -1
        return self.code

    def how_it_ended(self, code: int) -> str:
        if self.error is not None:
            first = str(self.error).strip().splitlines()
            return f"Ray: {type(self.error).__name__}: {first[0] if first else ''}".rstrip(": ")
        return f"exit code {code}"

    def output_tail(self, lines: int = 30) -> str:
        if self.error is None:
            return ""  # (its output is in the Ray logs of the node it ran on)
        return "\n".join(str(self.error).splitlines()[-lines:])

    def wait(self, timeout: float) -> bool:
        import ray

        ready, _ = ray.wait([self.ref], timeout=max(0.0, timeout))
        return bool(ready)

    def kill(self) -> None:
        import ray

        ray.cancel(self.ref, force=True)


class RayLauncher:
    """Workers on a Ray cluster (see the module docstring)."""

    def __init__(self, executor: str) -> None:
        self.executor = executor

    def start(self, kind: str, url: str, row_id: int, log: Path, *, detach: bool) -> RayTask:
        ray = _connect(self.executor)
        runtime_env = {
            "env_vars": {
                DATABASE_URL_ENV: url,
                EXECUTOR_ENV: self.executor,
                "OMP_NUM_THREADS": str(RAY_AGENT_CPUS),
                "MKL_NUM_THREADS": str(RAY_AGENT_CPUS),
                "SB3_LOGDIR": os.environ.get("SB3_LOGDIR", ""),
            }
        }
        if not runtime_env["env_vars"]["SB3_LOGDIR"]:
            del runtime_env["env_vars"]["SB3_LOGDIR"]
        if detach:  # outlives this process (the driver): a detached actor of no CPU
            actor = (
                ray.remote(_DetachedWorker)
                .options(
                    name=f"hydrorl-{kind}-{row_id}-{os.urandom(4).hex()}",
                    lifetime="detached",
                    num_cpus=0 if kind == "supervisor" else RAY_AGENT_CPUS,
                    max_restarts=0,
                    runtime_env=runtime_env,
                )
                .remote()
            )
            threads = 1 if kind == "supervisor" else RAY_AGENT_CPUS
            return RayTask(actor.work.remote(kind, row_id, threads))
        task = ray.remote(run_worker).options(
            num_cpus=RAY_AGENT_CPUS, max_retries=0, runtime_env=runtime_env
        )
        return RayTask(task.remote(kind, row_id, RAY_AGENT_CPUS))
