"""What people run and watch: the ``loglabel`` CLI (``cli``), JSON logs (``labeler.logs``),
Prometheus metrics and health endpoints (``metrics``, ``health``), and ``doctor``."""
