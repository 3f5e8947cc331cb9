"""The wire format: forwarder bytes to canonical records, and the internal codec.

``envelope`` unwraps what Fluentd, Fluent Bit, Logstash or a raw client wrote;
``timeparse`` reads their times; ``paths`` looks up dotted field paths;
``mapping`` turns a document into a ``Prediction`` or ``Outcome``; ``schema``
checks feature and prediction types; ``pii`` redacts personal data from records
(``pii_dead_letters`` from dead letters); ``decode`` chains these and turns every
failure into a ``DeadLetter``; ``codec`` is the msgpack form of canonical records in
internal topics and state logs.
"""
