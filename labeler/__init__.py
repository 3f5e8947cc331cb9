"""labeler: the top floor. Joins predictions with outcomes and writes the dataset.

The path of one event, and the folder that handles each step::

    Kafka (raw, or ingest's re-keyed topics)
      │  runtime/worker.py    poll a batch, decode (ingest.wire), count bad input
      ▼
    join/                     per partition: PartitionJoin (the rules), Watermark,
      │                       PendingStore (spills past the memory budget), labels
      ▼  a window closes
    output/                   ShardEncoder -> Parquet shard, staged, then the
      │                       CheckpointStore's commit: shards, state segments, offsets
      ▼
    runtime/                  the worker loop, partition take-over, status, the drift
      │                       hub beside the join; compose.py builds it all from Config
      ▼
    ops/                      what people run and watch: the CLI, JSON logs,
                              metrics and health endpoints, doctor

``tools/`` (simulate, produce, the oracle, demo, bench) is for people and tests;
only the CLI imports it. ``config.py`` holds every config key, ``errors.py`` the
labeler's exceptions. Imports run one way: join <- output <- runtime <- ops.
"""
