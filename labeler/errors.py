"""Exceptions of the labeler and the composition root."""

from ingest.errors import LoglabelError


class LabelerError(LoglabelError):
    """Base of the labeler's errors."""


class ConfigError(LabelerError):
    """The configuration is invalid; the message names the key."""


class CheckpointError(LabelerError):
    """A checkpoint cannot be read or does not belong to this stream."""
