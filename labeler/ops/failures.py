"""Known failures as one sentence with the fix, for every command.

``explain`` turns the exceptions a command meets when the world is not as
configured (the broker down, credentials refused, a topic missing or not
authorized, the disk full, a path not writable) into a line for a person.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno

from kafka.errors import (
    AuthorizationError,
    InvalidReplicationFactorError,
    KafkaConnectionError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    UnknownTopicOrPartitionError,
)

from ingest.errors import LoglabelError

_CHECK = "`loglabel doctor --config FILE` checks the whole setup"


def explain(exc: BaseException) -> str | None:
    """The sentence for a known failure, or ``None`` when ``exc`` is not one.

    >>> explain(OSError(errno.ENOSPC, "No space left on device", "out/part-1.parquet"))
    'disk full writing out/part-1.parquet: free space there or point output.path elsewhere'
    >>> explain(ZeroDivisionError()) is None
    True
    """
    if isinstance(exc, LoglabelError):  # our own errors already say what to do
        return str(exc)
    if isinstance(exc, SaslAuthenticationFailedError):
        return ("the broker rejected the credentials: check kafka.sasl_username, "
                "kafka.sasl_mechanism and the password (LOGLABEL_KAFKA__SASL_PASSWORD)")
    if isinstance(exc, AuthorizationError):
        return (f"the broker refused an operation ({type(exc).__name__}): grant this user "
                "DESCRIBE, READ and WRITE on loglabel's topics and READ on its group; "
                + _CHECK)
    if isinstance(exc, UnknownTopicOrPartitionError):
        return ("a topic does not exist: create the topics with `loglabel topics create "
                "--config FILE`, or fix the names under [topics]")
    if isinstance(exc, InvalidReplicationFactorError):
        return ("the replication factor is larger than the number of brokers: lower "
                "--replication (or ingest.internal_replication)")
    if isinstance(exc, KafkaConnectionError | KafkaTimeoutError):
        return (f"no Kafka broker answered ({type(exc).__name__}): check the broker address "
                f"(kafka.bootstrap_servers, or --bootstrap) and that the broker runs; {_CHECK}")
    if isinstance(exc, OSError):
        where = exc.filename or "a file"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return (f"disk full writing {where}: free space there or point output.path "
                    "elsewhere")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return (f"permission denied on {where}: fix its permissions (the user running "
                    "loglabel must write there) or point output.path elsewhere")
        if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
            return (f"cannot connect to the broker ({exc.strerror}): check the broker address "
                    f"(kafka.bootstrap_servers, or --bootstrap) and that the broker runs; "
                    f"{_CHECK}")
    return None
