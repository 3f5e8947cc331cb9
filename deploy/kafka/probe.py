"""Readiness probe for the local broker: exit 0 once it answers a metadata request.

Usage: probe.py HOST:PORT TIMEOUT_SECONDS
"""

import logging
import sys
import time

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

logging.disable(logging.CRITICAL)  # connection refusals while it boots are expected


def main() -> int:
    bootstrap, timeout = sys.argv[1], float(sys.argv[2])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
            try:
                admin.describe_cluster()
                return 0
            finally:
                admin.close()
        except (KafkaError, OSError):
            time.sleep(0.5)
    return 1


if __name__ == "__main__":
    sys.exit(main())
