"""Readiness probe for the local broker: is *our* broker up and answering?

Usage: probe.py HOST:PORT TIMEOUT_SECONDS [PID [CLUSTER_ID]]

Exit status: 0 once a metadata request is answered (by the broker whose
cluster id is CLUSTER_ID, when given); 1 if nothing answered in time; 2 if
the port is answered by another cluster (someone else's broker); 3 as soon
as process PID is gone (our broker died, e.g. its bind failed). A port that
answers is not proof that our process serves it: the cluster id is.
"""

import logging
import os
import sys
import time

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

logging.disable(logging.CRITICAL)  # connection refusals while it boots are expected


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def main() -> int:
    bootstrap, timeout = sys.argv[1], float(sys.argv[2])
    pid = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
    cluster = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not alive(pid):
            return 3
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
            try:
                answer = admin.describe_cluster()
            finally:
                admin.close()
        except (KafkaError, OSError):
            time.sleep(0.5)
            continue
        if cluster is not None and answer.get("cluster_id") != cluster:
            return 2
        if pid is not None and not alive(pid):
            return 3
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
