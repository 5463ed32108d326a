"""Test-session settings shared by tests/ and the notebooks run by nbval."""

import os
import tempfile


def pytest_configure(config: object) -> None:
    # Notebooks and dashboards open the default database: never the user's own.
    os.environ["HYDRORL_HOME"] = tempfile.mkdtemp(prefix="hydrorl-test-home-")
    os.environ.pop("HYDRORL_DATABASE_URL", None)
