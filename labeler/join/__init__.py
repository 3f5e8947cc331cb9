"""The join: one partition's predictions and outcomes become labeled examples.

Pure code: no Kafka, no files, no clock. ``partition`` holds every join rule
(``PartitionJoin``), ``watermark`` the event-time clock, ``labels`` the label
aggregations, ``pending`` the bounded store of open windows, ``changelog`` the
state log a checkpoint keeps, ``records`` the ``LabeledExample``.
"""
