"""The SB3 callback that makes an agent visible and controllable through the database.

While the model learns it buffers learning-curve points (TrainStepValues) and
writes them in batches, records timesteps and the best peak reward, checkpoints
the model atomically (last and best), and stops learning within about a second
when a stop is requested for the agent or its run, when the run has ended, or
when the supervisor that started the agent is gone.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session
from stable_baselines3.common.callbacks import BaseCallback

from hydrorl.db import Database, models
from hydrorl.training.points import UNITS, PointWriter, stop_reason

__all__ = ["UNITS", "Recorder", "save_atomically", "stop_reason"]
PEAK_WINDOW = 10


def save_atomically(model, path: Path) -> None:  # noqa: ANN001
    """Write to a temporary file, then rename: a kill mid-save never leaves only a broken file."""
    temporary = path.with_name(path.stem + ".partial.zip")
    model.save(str(temporary))
    os.replace(temporary, path)


class Recorder(BaseCallback):
    """HydroRL's callback for one agent; see the module docstring."""

    def __init__(
        self,
        db: Database,
        agent_id: int,
        run_id: int,
        folder: Path,
        reward_scale_eur: float,
        *,
        flush_seconds: float = 2.0,
        poll_seconds: float = 1.0,
        checkpoint_seconds: float = 30.0,
        parent_pid: int | None = None,
        best_by_peak: bool = True,
        points: PointWriter | None = None,
    ) -> None:
        super().__init__()
        self.db, self.agent_id, self.run_id = db, agent_id, run_id
        self.folder = folder
        self.last_path = folder / "last.zip"
        self.best_path = folder / "best.zip"
        self.reward_scale = reward_scale_eur
        self.flush_seconds, self.poll_seconds = flush_seconds, poll_seconds
        self.checkpoint_seconds = checkpoint_seconds
        self._parent_pid = os.getppid() if parent_pid is None else parent_pid
        self.stop_reason: str | None = None
        #: Whether the best checkpoint is the best peak training reward (else validation keeps it).
        self.best_by_peak = best_by_peak
        #: The points on their way (``points``: a writer the agent wrote through before).
        self.points = PointWriter(db, agent_id) if points is None else points
        self._recent: deque[float] = deque(maxlen=PEAK_WINDOW)
        self.best_peak: float | None = None
        self._best_dirty = False
        self._episode_reward: np.ndarray | None = None
        self._episode_revenue: np.ndarray | None = None
        now = time.monotonic()
        self._next_flush = now + flush_seconds
        self._next_poll = now + poll_seconds
        self._next_checkpoint = now + self.checkpoint_seconds

    # ------------------------------------------------------------------ SB3 hooks

    def _on_training_start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        n = self.training_env.num_envs
        self._episode_reward = np.zeros(n)
        self._episode_revenue = np.zeros(n)
        self._load()

    def _load(self) -> None:
        def load(session: Session) -> None:
            self.points.load(session)
            agent = session.get(models.Agent, self.agent_id)
            self.best_peak = agent.best_peak_reward if agent else None

        self.db.run_write(load)

    def _on_step(self) -> bool:
        assert self._episode_reward is not None and self._episode_revenue is not None
        rewards = np.asarray(self.locals["rewards"], dtype=float)
        self._episode_reward += rewards
        env = self.training_env.unwrapped if hasattr(self.training_env, "unwrapped") else None
        info = getattr(env, "last_info", None)
        if info:
            self._episode_revenue += info["revenue_eur"]
        for i in np.flatnonzero(self.locals["dones"]):
            reward = float(self._episode_reward[i])
            self._record("episode_reward", reward)
            self._record("episode_value_eur", reward * self.reward_scale)
            if info:
                self._record("episode_revenue_eur", float(self._episode_revenue[i]))
            self._recent.append(reward)
            self._episode_reward[i] = 0.0
            self._episode_revenue[i] = 0.0
            if len(self._recent) == self._recent.maxlen:
                peak = float(np.mean(self._recent))
                if self.best_peak is None or peak > self.best_peak:
                    self.best_peak, self._best_dirty = peak, self.best_by_peak
        now = time.monotonic()
        if now >= self._next_flush:
            self.flush()
            self._next_flush = now + self.flush_seconds
        if now >= self._next_poll:
            self._next_poll = now + self.poll_seconds
            self.stop_reason = self.stop_requested()
            if self.stop_reason:
                return False
        return True

    def _on_rollout_end(self) -> None:
        for key, value in self.model.logger.name_to_value.items():
            if key.startswith("train/"):
                self._record(key.removeprefix("train/"), float(value))
        now = time.monotonic()
        if self._best_dirty:
            save_atomically(self.model, self.best_path)
            self._best_dirty = False
        if now >= self._next_checkpoint:
            self.checkpoint()
            self._next_checkpoint = now + self.checkpoint_seconds

    # ------------------------------------------------------------------ database

    def _record(self, name: str, value: float) -> None:
        self.points.add(name, int(self.num_timesteps), value)

    def record_at(self, name: str, timestep: int, value: float) -> None:
        """Buffer a point of a curve whose x is not the learner's timestep count (imitation)."""
        self.points.add(name, timestep, value)

    def flush(self) -> None:
        """Write buffered curve points, the timestep count and the best peak in one transaction."""
        if not self.points.loaded:
            self._load()  # (the best peak of a resumed agent is not overwritten with None)
        self.points.flush(timesteps_done=int(self.num_timesteps), best_peak_reward=self.best_peak)

    def checkpoint(self) -> None:
        """Save the last model atomically and record where it is (with the points before it)."""
        save_atomically(self.model, self.last_path)
        self.flush()

        def write(session: Session) -> None:
            best = str(self.best_path) if self.best_path.exists() else None
            session.execute(
                sa.update(models.Agent)
                .where(models.Agent.id == self.agent_id)
                .values(checkpoint_path=str(self.last_path), best_checkpoint_path=best)
            )

        self.db.run_write(write)

    def stop_requested(self) -> str | None:
        """Why the agent must stop (asked to, the run ended, the supervisor gone), or None."""
        return stop_reason(self.db, self.agent_id, self.run_id, self._parent_pid)
