"""The errors HydroRL raises: one root class, specific subclasses.

Every message names the bad value and, where it came from a file, where in it
(file, column, row or timestamp), so that the user can fix the input without
reading a traceback.
"""

from __future__ import annotations


class HydroRLError(Exception):
    """Root of every error HydroRL raises on purpose."""


class ValidationError(HydroRLError, ValueError):
    """User input (a system description, settings, a forecast file) is not valid."""


class SystemValidationError(ValidationError):
    """A hydro system description breaks a rule (ranges, references, a cycle)."""


class ForecastValidationError(ValidationError):
    """A forecast file or DataFrame cannot be accepted; nothing was written."""


class DuplicateUploadError(HydroRLError):
    """The same forecast content was uploaded before."""


class NotFoundError(HydroRLError, LookupError):
    """A named system, forecast or project does not exist."""


class AlreadyExistsError(HydroRLError):
    """A name that must be unique is taken."""


class InUseError(HydroRLError):
    """An object cannot be deleted because others depend on it."""


class DatabaseError(HydroRLError):
    """The database could not be opened, migrated or written."""
