"""Connecting to the broker, with a sentence that says why it failed.

kafka-python's bootstrap gives up with a bare timeout; the cause (a refused
connection, a rejected password) only reaches its log records. ``connect_admin``
listens to those and turns the most telling one into an actionable reason.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from kafka import KafkaAdminClient
from kafka.errors import (
    IllegalSaslStateError,
    KafkaError,
    KafkaTimeoutError,
    RequestTimedOutError,
    SaslAuthenticationFailedError,
    UnsupportedSaslMechanismError,
)

from ingest.errors import IngestError
from ingest.kafka.clients import new_admin


class KafkaSettings(Protocol):
    """What connecting needs of the ``[kafka]`` config section."""

    @property
    def bootstrap_servers(self) -> str: ...
    @property
    def security_protocol(self) -> str: ...
    @property
    def sasl_mechanism(self) -> str | None: ...
    @property
    def sasl_username(self) -> str | None: ...

    def client_options(self) -> dict[str, Any]: ...


class BrokerUnavailable(IngestError):
    """No broker answered, or it refused the connection; the message says what to check."""


# -- connecting, with a reason when it fails ---------------------------------------------------


class _LastKafkaError(logging.Handler):
    """Keeps the most telling connection error kafka-python logged: its bootstrap gives
    up with a bare timeout, and the cause (refused, bad credentials) only reaches its logs."""

    # Timeouts are symptoms; a broker's SASL answer is the cause and stays once seen.
    _SYMPTOMS = (KafkaTimeoutError, RequestTimedOutError)
    _CAUSES = (SaslAuthenticationFailedError, UnsupportedSaslMechanismError,
               IllegalSaslStateError)

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.error: BaseException | None = None

    def emit(self, record: logging.LogRecord) -> None:
        for arg in record.args or ():
            if (isinstance(arg, BaseException) and not isinstance(arg, self._SYMPTOMS)
                    and not isinstance(self.error, self._CAUSES)):
                self.error = arg


def explain_failure(kafka: KafkaSettings, error: BaseException | None, timeout_s: float) -> str:
    """A one-line, actionable reason why no broker at ``kafka.bootstrap_servers`` answered."""
    where = kafka.bootstrap_servers
    said = str(error).lower()
    if isinstance(error, SaslAuthenticationFailedError):
        return (f"the broker at {where} rejected user {kafka.sasl_username!r} with "
                f"{kafka.sasl_mechanism}: check kafka.sasl_username and the password "
                "(kafka.sasl_password, or LOGLABEL_KAFKA__SASL_PASSWORD)")
    if isinstance(error, UnsupportedSaslMechanismError):
        return (f"the broker at {where} does not enable {kafka.sasl_mechanism} on this "
                "listener: check kafka.sasl_mechanism")
    if isinstance(error, IllegalSaslStateError):
        return (f"the listener at {where} does not expect SASL: check "
                "kafka.security_protocol and the port")
    if "dns" in said or "name or service not known" in said:
        return f"cannot resolve {where}: check the host names in kafka.bootstrap_servers"
    if "econnrefused" in said or "connection refused" in said:
        return (f"nothing listens at {where}: check kafka.bootstrap_servers (host:port) "
                "and that the broker runs")
    if "ssl" in said or "certificate" in said:
        return (f"TLS handshake with {where} failed ({error}): check kafka.security_protocol "
                "and kafka.ssl_cafile / ssl_certfile / ssl_keyfile")
    if "disconnected" in said:
        return (f"the broker at {where} closed the connection during the handshake: the "
                f"listener probably does not speak {kafka.security_protocol} (check "
                "kafka.security_protocol, kafka.sasl_mechanism and the port)")
    detail = f" (last error: {error})" if error is not None else ""
    return (f"no broker at {where} answered within {timeout_s:g} s{detail}: check "
            "kafka.bootstrap_servers, the network and the broker's advertised listeners")


def connect_admin(kafka: KafkaSettings, timeout_s: float = 10.0) -> KafkaAdminClient:
    """An admin client whose bootstrap succeeded within ``timeout_s``; the caller closes it.

    kafka-python retries with exponential backoff until then (no hot loop).
    Raises ``BrokerUnavailable`` with the reason, e.g. refused credentials.
    """
    capture = _LastKafkaError()
    logger = logging.getLogger("kafka")
    logger.addHandler(capture)
    try:
        return new_admin(kafka.client_options(),
                                bootstrap_timeout_ms=int(timeout_s * 1000),
                                request_timeout_ms=int(max(timeout_s, 1.0) * 1000))
    except (KafkaError, OSError) as exc:
        raise BrokerUnavailable(
            explain_failure(kafka, capture.error or exc, timeout_s)) from None
    finally:
        logger.removeHandler(capture)


def check_broker(kafka: KafkaSettings, timeout_s: float = 10.0) -> None:
    """Return once a broker answers; raise ``BrokerUnavailable`` (with the reason) otherwise."""
    connect_admin(kafka, timeout_s).close()
