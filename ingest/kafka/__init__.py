"""Kafka plumbing: the only place clients are built (``clients``), kafka-python's
transport patch (``patch``), connecting with a reason (``broker``), topic creation
(``topics``) and the dead-letter sink (``dead_letters``)."""
