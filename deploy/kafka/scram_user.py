"""Create (or update) the local broker's SCRAM user, with the password from the environment.

Usage: LOGLABEL_KAFKA_SCRAM_PASSWORD=... scram_user.py HOST:PORT USER

The password is read from the environment, never from the command line, so it
is not visible in ``ps`` (the StorageTool's ``--add-scram`` would put it there).
Both SCRAM-SHA-256 and SCRAM-SHA-512 credentials are upserted over the
PLAINTEXT listener; the broker stores them in the KRaft metadata. Exit 0 on
success, 1 with the broker's reason otherwise.
"""

import logging
import os
import sys

from kafka import KafkaAdminClient
from kafka.admin import UserScramCredentialUpsertion
from kafka.errors import KafkaError

logging.disable(logging.CRITICAL)

ITERATIONS = 8192  # Kafka's kafka-configs.sh default for SCRAM credentials


def main() -> int:
    bootstrap, user = sys.argv[1], sys.argv[2]
    password = os.environ.get("LOGLABEL_KAFKA_SCRAM_PASSWORD", "")
    if not password:
        print("scram_user: LOGLABEL_KAFKA_SCRAM_PASSWORD is empty", file=sys.stderr)
        return 1
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        try:
            # one request per mechanism: the broker refuses a user altered twice in one
            failed = {}
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                answer = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
                    user, mechanism, password, iterations=ITERATIONS)])
                failed.update({f"{name} {mechanism}": err for name, err in answer.items() if err})
        finally:
            admin.close()
    except (KafkaError, OSError) as exc:
        print(f"scram_user: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if failed:
        print(f"scram_user: the broker refused: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
