"""HydroRL's database: models, engine and migrations."""

from hydrorl.db.engine import Database, LockWaitTimeout, create_engine, head_revision
from hydrorl.db.models import Base

__all__ = ["Base", "Database", "LockWaitTimeout", "create_engine", "head_revision"]
