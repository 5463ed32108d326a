"""The HTTP API under a property-based fuzzer driven by its own OpenAPI document (Schemathesis):
whatever a client sends that the document allows, or nearly, no request is a server error.

It found two: an id beyond 64 bits (SQLite overflowed; now "nothing has the id ...", 404) and a
demo of 19605 scenarios x 3600 years (1.5 TiB of arrays; now refused by name, 422).
Examples are derandomised, so a run in CI tries what a run here tried.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis

import hydrorl
from hydrorl.service.app import create_app

TOKEN = "hrl_fuzzing"


# The app is made when the module is collected (Schemathesis reads its document then), over
# an empty database in a folder of its own; the fixture below fills it before any example runs.
_FOLDER = Path(tempfile.mkdtemp(prefix="hydrorl-fuzz-"))
_WB = hydrorl.Workbench(f"sqlite:///{_FOLDER / 'fuzzed.db'}")
# (POST /demo writes a demo of the size asked: minutes for a big one; the contract suite and
# tests/test_cli.py hold it)
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(_WB, tokens=lambda secret: secret == TOKEN)
).exclude(method="POST", path="/demo")


_STATUSES: list[int] = []


@pytest.fixture(scope="module", autouse=True)
def _filled() -> Iterator[None]:
    _WB.setup_demo(scenarios=2, years=1)
    _WB.create_project("Demo river", "tiny", agents=1, timesteps=64, imitation_scenarios=0)
    yield
    # The fuzzer got past the token check and the validation to the workbench itself.
    assert _STATUSES and _STATUSES.count(401) < len(_STATUSES) / 10, sorted(set(_STATUSES))
    assert any(code < 300 for code in _STATUSES) and 404 in _STATUSES
    _WB.close()
    shutil.rmtree(_FOLDER, ignore_errors=True)


@schema.parametrize()
@hypothesis.settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_request_is_a_server_error(case: schemathesis.Case) -> None:
    # (the document declares the bearer scheme: the generated case may carry a header of its
    # own, which the real token replaces)
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
    response = case.call(timeout=600)
    _STATUSES.append(response.status_code)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}: "
        f"HTTP {response.status_code} {response.text[:500]}"
    )
    if response.status_code >= 400 and response.status_code != 405:
        # Every refusal is a problem document (RFC 9457), which the client maps to HydroRL's class.
        assert response.headers.get("content-type") == ["application/problem+json"], response.text
