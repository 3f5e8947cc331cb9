"""``loglabel check-message``: what loglabel makes of one message, without Kafka.

It runs the very decoder ``run`` uses (envelope, PII policy, field mapping,
time limits, declared schemas) over message values read from standard input
and prints, per message, one JSON object: the canonical record with the
dataset partition and columns it would land in, or the dead-letter reason
with its detail and meaning. A user tests a ``[fields]`` mapping with it
before pointing ``run`` at a topic.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Any, Literal

import click
import orjson

from ingest.errors import LoglabelError
from ingest.records import DeadLetter, Outcome, Prediction
from ingest.wire.decode import DEAD_LETTER_REASONS, Decoder
from labeler.config import Config, load_config

Kind = Literal["prediction", "outcome"]


def split_messages(data: bytes) -> list[bytes]:
    """The message values in ``data``: the whole input when it is one JSON document
    (pretty-printed is fine), else each non-empty line."""
    text = data.strip()
    if not text:
        return [b""]
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return [line.strip() for line in text.splitlines() if line.strip()]
    return [text]


def decoders(config: Config) -> dict[Kind, Decoder]:
    """A prediction and an outcome decoder built from ``config`` as ``run`` builds them.

    Raises ``ConfigError`` (a hash policy without its key)."""
    from labeler.runtime.compose import schema_enforcer

    pii = config.pii.policy()
    ingest = config.ingest
    common: dict[str, Any] = {"pii": pii, "max_future_s": ingest.max_future_s or None,
                              "min_time": ingest.min_epoch()}
    return {
        "prediction": Decoder("prediction", config.fields, ingest.prediction_format,
                              schema=schema_enforcer(config), **common),
        "outcome": Decoder("outcome", config.fields, ingest.outcome_format, **common),
    }


def check(raw: bytes, decoder: dict[Kind, Decoder], kind: Kind | Literal["auto"],
          hourly: bool = False) -> dict[str, Any]:
    """The verdict on one message value, as plain JSON-ready data.

    With ``kind = "auto"`` a message is a prediction unless it has none of the
    prediction fields (``missing_prediction``), in which case it is read as an
    outcome.
    """
    result = decoder["outcome" if kind == "outcome" else "prediction"].decode(raw)
    if (kind == "auto" and isinstance(result, DeadLetter)
            and result.reason == "missing_prediction"):
        outcome = decoder["outcome"].decode(raw)
        if not isinstance(outcome, DeadLetter):
            result = outcome
    if isinstance(result, DeadLetter):
        return {"dead_letter": {"reason": result.reason, "detail": result.detail,
                                "meaning": DEAD_LETTER_REASONS.get(result.reason, "")}}
    return describe(result, hourly)


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="microseconds")


def describe(record: Prediction | Outcome, hourly: bool = False) -> dict[str, Any]:
    """A decoded record as a person checks it: fields, the time in UTC, and for a
    prediction the partition and the ``feat_``/``pred_`` columns of its row."""
    if isinstance(record, Outcome):
        return {"outcome": {"join_id": record.join_id, "event_time": record.event_time,
                            "event_time_utc": _utc(record.event_time),
                            "type": record.outcome_type, "value": record.value,
                            "outcome_id": record.outcome_id}}
    moment = datetime.fromtimestamp(record.event_time, timezone.utc)
    return {"prediction": {
        "prediction_id": record.join_id, "event_time": record.event_time,
        "event_time_utc": _utc(record.event_time), "model": record.model,
        "model_version": record.model_version,
        "partition": f"model={record.model}/date={moment:%Y-%m-%d}"
                     + (f"/hour={moment:%H}" if hourly else ""),
        "hour": moment.hour,
        "columns": {**{f"feat_{k}": v for k, v in record.features.items()},
                    **{f"pred_{k}": v for k, v in record.prediction.items()}},
    }}


@click.command("check-message")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              required=True, help="TOML config whose [fields], [ingest] and [pii] are used.")
@click.option("--kind", type=click.Choice(["auto", "prediction", "outcome"]), default="auto",
              show_default=True,
              help="Decode as a prediction, an outcome, or (auto) an outcome when no "
                   "prediction field is present.")
def check_message_command(config_path: str, kind: str) -> None:
    """Decode message values from stdin as `run` would; print each record or dead letter.

    Standard input holds one message (one JSON document, pretty-printed or not)
    or one message per line. Prints one JSON object per message; exits 1 when
    any message would be dead-lettered.
    """
    try:
        config = load_config(config_path)
        decoder = decoders(config)
    except LoglabelError as exc:
        raise click.ClickException(str(exc)) from None
    dead = 0
    for raw in split_messages(sys.stdin.buffer.read()):
        verdict = check(raw, decoder, kind,  # type: ignore[arg-type]
                        config.output.partition_by == "hour")
        dead += "dead_letter" in verdict
        click.echo(orjson.dumps(verdict, option=orjson.OPT_INDENT_2).decode())
    if dead:
        click.get_current_context().exit(1)
