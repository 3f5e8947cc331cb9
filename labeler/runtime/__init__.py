"""The running worker: the poll loop and its commits (``worker``), the status
records it publishes (``status``), the drift monitors beside the join
(``drift_hub``), and the composition root that builds every stage from the
config (``compose``)."""
