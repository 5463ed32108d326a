"""Jobs: run and agent state in the database, heartbeats, stop signals and the reaper.

Job state lives in the database, never only in a process: a status belongs to a
closed set with one table of allowed transitions (:mod:`hydrorl.jobs.status`),
every transition is a committed conditional write, live processes keep a
heartbeat, and :func:`~hydrorl.jobs.reaper.reap_stale` moves work whose process
is gone to ``failed`` with a named reason.
"""
