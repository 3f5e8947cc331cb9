"""``loglabel bench --decoders``: the decoders alone, per forwarder envelope, without a
broker: CPU µs per prediction message (best of three) for

* ``orjson``: ``orjson.loads`` of each value (the floor of any JSON decoding here);
* ``orjson, one array``: one ``orjson.loads`` of the batch joined into a JSON array
  (cheaper per call, but a malformed value can pass for two: not usable as is);
* ``pyarrow JSON``: ``pyarrow.json.read_json`` of the newline-joined batch into Arrow
  columns, and the same plus ``to_pylist`` (the internal records are msgpack of
  Python values). Arrow also merges missing with null and ``1`` with ``1.0``,
  which the decoding rules keep apart;
* ``row decoder``: ``Decoder.decode`` and ``pack`` per message (the reference);
* ``batch decoder``: ``BatchDecoder.decode`` over poll batches of 5,000.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow.json as pa_json

from ingest.wire.batch import BatchDecoder
from ingest.wire.codec import pack
from ingest.wire.decode import Decoder
from ingest.wire.mapping import FieldMap
from ingest.wire.schema import SchemaEnforcer
from labeler.tools.simulate import TrafficSpec, render, stream

ENVELOPES = ("fluentd", "fluent-bit", "logstash")


def _best(work: Callable[[], Any], n: int, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        work()
        best = min(best, time.process_time() - began)
    return 1e6 * best / n


def _decoder() -> Decoder:
    return Decoder("prediction", FieldMap(), "auto", Counter(), schema=SchemaEnforcer(),
                   min_time=None)


def decoder_figures(count: int = 20_000) -> dict[str, dict[str, float]]:
    """µs per message of each decoder, per envelope."""
    messages = [m for m in stream(TrafficSpec(count=count, seed=3, spacing=0.005))
                if m.topic_kind == "prediction"]
    figures: dict[str, dict[str, float]] = {}
    for envelope in ENVELOPES:
        values = [render(m, envelope) for m in messages]
        n = len(values)
        batches = [values[i:i + 5000] for i in range(0, n, 5000)]
        lines = b"\n".join(values) + b"\n"
        rows, columns = _decoder(), BatchDecoder(_decoder())
        for v in values[:2000]:  # past schema inference, as in a long run
            rows.decode(v)
        columns.decode(values[:2000])
        figures[envelope] = {
            "orjson": _best(lambda: [orjson.loads(v) for v in values], n),  # noqa: B023
            "orjson, one array": _best(
                lambda: [orjson.loads(b"[" + b",".join(b) + b"]") for b in batches], n),  # noqa: B023
            "pyarrow JSON": _best(lambda: pa_json.read_json(io.BytesIO(lines)), n),  # noqa: B023
            "pyarrow JSON + to_pylist": _best(
                lambda: pa_json.read_json(io.BytesIO(lines)).to_pylist(), n),  # noqa: B023
            "row decoder": _best(lambda: [pack(rows.decode(v)) for v in values], n),  # type: ignore[arg-type]  # noqa: B023,E501
            "batch decoder": _best(lambda: [columns.decode(b) for b in batches], n),  # noqa: B023
        }
    return figures


def decoder_report() -> str:
    figures = decoder_figures()
    names = list(next(iter(figures.values())))
    lines = ["decoders alone, CPU µs per prediction message (best of 3; pyarrow may use "
             "several threads):", f"{'':<26}" + "".join(f"{e:>12}" for e in figures)]
    for name in names:
        lines.append(f"{name:<26}" + "".join(f"{figures[e][name]:>12.2f}" for e in figures))
    return "\n".join(lines)
