"""The published OpenAPI document is generated from the models; a change shows here first.

Update the snapshot after a deliberate change of the API with::

    HYDRORL_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_service_openapi.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import hydrorl
from hydrorl.service.app import create_app

SNAPSHOT = Path(__file__).parent / "snapshots" / "openapi.json"


def openapi_text(db_path: Path) -> str:
    with hydrorl.Workbench(f"sqlite:///{db_path}") as wb:
        schema = create_app(wb, tokens=lambda _secret: False).openapi()
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def test_the_openapi_document_matches_its_snapshot(db_path: Path) -> None:
    text = openapi_text(db_path)
    if os.environ.get("HYDRORL_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(text)
    if not SNAPSHOT.exists():
        pytest.fail(f"no snapshot {SNAPSHOT}: run with HYDRORL_UPDATE_SNAPSHOTS=1")
    assert text == SNAPSHOT.read_text(), (
        "the OpenAPI document changed: if deliberately, update the snapshot with "
        "HYDRORL_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_service_openapi.py"
    )


def test_every_route_but_health_declares_the_bearer_token(db_path: Path) -> None:
    schema = json.loads(openapi_text(db_path))
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            secured = "security" in operation
            assert secured == (path != "/health"), (method, path)
            if path != "/health":
                assert "401" in operation["responses"], (method, path)


def test_the_models_the_client_uses_are_the_documented_ones(db_path: Path) -> None:
    schema = json.loads(openapi_text(db_path))
    models = schema["components"]["schemas"]
    for name in ("ForecastModel", "ProjectModel", "RunModel", "SystemModel", "Problem"):
        assert name in models, name
    upload = schema["paths"]["/systems/{system}/forecasts"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    curves = schema["paths"]["/runs/{run_id}/curves"]["get"]
    assert "application/vnd.apache.arrow.stream" in curves["responses"]["200"]["content"]
