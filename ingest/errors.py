"""Exceptions of the ingest stage, under the project-wide base."""


class LoglabelError(Exception):
    """Base of every error loglabel raises on purpose."""


class IngestError(LoglabelError):
    """Base of ingest's errors."""


class RejectedMessage(IngestError):  # noqa: N818 - it is a verdict on a message, not a crash
    """A message that cannot become a canonical record.

    ``reason`` is a short stable code (it becomes a dead-letter header and a
    counter label); ``detail`` is the human explanation.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
