"""Work that a run's agents share: computed by one of them, read by the others.

Before an agent learns it needs pieces that are the same for every agent of its run: the
SDP water values, the fitted forecast, the bound, benchmark and planner on the validation
episodes.  Each piece is a file in the run's folder.  An agent takes the pieces in turn
(starting from one that depends on its index, so that two agents start on different
pieces): a piece already there is read; a piece nobody computes is locked and computed;
a piece another agent computes is left for later.  When only pieces others compute are
left, the agent waits for them, saying what it waits for.

Nothing depends on timing: a lock is an ``flock`` that the system releases when its
process dies, so a piece whose agent was killed is taken by the next one that looks, and
a waiting agent is stopped like a working one (its status callback may raise).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Piece:
    """One piece of shared work: ``name`` (its file), what it is (for the status line), and
    how to compute it."""

    name: str
    label: str
    compute: Callable[[], Any]


class SharedWork:
    """The pieces of work of a run's agents in ``folder`` (None: computed here, not shared).

    ``status`` is told what the agent waits for (it may raise to stop); ``start`` is the
    agent's index, which decides the piece it takes first.
    """

    def __init__(
        self,
        folder: Path | None,
        status: Callable[[str], None],
        start: int = 0,
        poll_s: float = 0.1,
    ) -> None:
        self.folder, self.status, self.start, self.poll_s = folder, status, start, poll_s

    def get(self, pieces: list[Piece]) -> dict[str, Any]:
        """Every piece's value by name, computed here or by another agent."""
        if self.folder is None:
            return {p.name: p.compute() for p in pieces}
        self.folder.mkdir(parents=True, exist_ok=True)
        shift = self.start % len(pieces) if pieces else 0
        pending = pieces[shift:] + pieces[:shift]
        done: dict[str, Any] = {}
        while pending:
            for piece in list(pending):
                found, value = self._take(piece)
                if found:
                    done[piece.name] = value
                    pending.remove(piece)
            if pending:  # only pieces others compute are left
                labels = ", ".join(p.label for p in pending)
                self.status(f"waiting for another agent: {labels}")
                time.sleep(self.poll_s)
        return done

    def _take(self, piece: Piece) -> tuple[bool, Any]:
        """(True, value) if the piece is there or was computed here; (False, None) if another
        agent holds it."""
        assert self.folder is not None
        path = self.folder / f"{piece.name}.pickle"
        if path.exists():
            return True, _load(path)
        with _exclusive(self.folder / f"{piece.name}.lock") as mine:
            if not mine:
                return False, None
            if path.exists():  # written between the look and the lock
                return True, _load(path)
            value = piece.compute()
            temporary = path.with_name(f"{path.name}.{os.getpid()}.partial")
            with open(temporary, "wb") as handle:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            temporary.replace(path)  # whole or not there
            return True, value


def _load(path: Path) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle)  # noqa: S301 - written by this run's agents, in its folder


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[bool]:
    """Hold the lock file ``path`` if no one else does (yields whether it is held)."""
    import fcntl

    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
