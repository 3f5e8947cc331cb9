"""Exceptions of the labeler and the composition root."""

from ingest.errors import LoglabelError


class LabelerError(LoglabelError):
    """Base of the labeler's errors."""


class ConfigError(LabelerError):
    """The configuration is invalid; the message names the key."""


class CheckpointError(LabelerError):
    """A checkpoint cannot be read or does not belong to this stream."""


class StorageError(LabelerError, OSError):
    """A file under ``output.path`` cannot be read or written: one line with the path and
    the operating system's (or object store's) reason, e.g. ``cannot write /out/x: No
    space left on device``. An ``OSError`` too (``errno`` kept), for callers that catch
    those."""

    def __init__(self, action: str, path: str, reason: str, errno: int | None = None) -> None:
        super().__init__(f"cannot {action} {path}: {reason}")
        self.errno = errno
        self.action = action
        self.path = path
        self.reason = reason
