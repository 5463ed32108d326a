"""HydroRL as a service: an HTTP API over the workbench and a Python client for it.

- :mod:`hydrorl.service.wire`: how DataFrames, the workbench's dataclasses and errors cross
  the wire (Arrow IPC, JSON models, RFC 9457 problem details), shared by both sides;
- :mod:`hydrorl.service.app`: the FastAPI server over a local :class:`hydrorl.Workbench`;
- :mod:`hydrorl.service.client`: :class:`RemoteWorkbench`, the same verbs over HTTP;
- :mod:`hydrorl.service.tokens`: bearer tokens, stored hashed in the database.

This package root imports nothing: the client must not pull in the server's framework,
nor either of them torch or Stable-Baselines3.
"""
