"""Exceptions of the drift package, under the project-wide base."""

from ingest.errors import LoglabelError


class DriftError(LoglabelError):
    """Base of drift's errors."""


class DriftConfigError(DriftError):
    """A drift setting that cannot be honoured (unknown detector, bad parameter)."""


class ProfileError(DriftError):
    """A baseline profile that cannot be built, read or understood."""
