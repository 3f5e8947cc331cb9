"""Every time form a forwarder writes, and the values that must be rejected as bad_time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ingest.errors import RejectedMessage
from ingest.wire.timeparse import is_number_text, parse_time

UTC = timezone.utc
MOMENT = datetime(2024, 6, 10, 6, 13, 20, tzinfo=UTC)  # the formats notes' example instant
WHOLE = MOMENT.timestamp()


def at(micros: int = 0) -> float:
    return WHOLE + micros / 1e6


@pytest.mark.parametrize(("value", "expected"), [
    # Fluentd <inject> time_type float: epoch seconds truncated to microseconds
    (WHOLE + 0.123456, at(123456)),
    # Fluentd time_type unixtime: integer seconds
    (int(WHOLE), at()),
    # Fluent Bit timestamp_format double
    (WHOLE + 0.5, at(500000)),
    # epoch milliseconds / microseconds / nanoseconds from raw JSON clients
    (int(WHOLE) * 1000 + 123, at(123000)),
    (int(WHOLE) * 1_000_000 + 123456, at(123456)),
    (int(WHOLE) * 1_000_000_000 + 123456000, at(123456)),
    # numeric strings follow the number rule
    (f"{int(WHOLE)}", at()),
    (f"{int(WHOLE)}.25", at(250000)),
    (f"  {int(WHOLE)}  ", at()),
    (0, 0.0),
])
def test_numbers_are_epochs_whose_magnitude_picks_the_unit(value: object, expected: float
                                                          ) -> None:
    assert parse_time(value) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("text", "expected"), [
    # Fluent Bit iso8601 (microseconds) and iso8601_ns
    ("2024-06-10T06:13:20.123456Z", at(123456)),
    ("2024-06-10T06:13:20.123456789Z", at(123456)),
    # Logstash @timestamp: milliseconds
    ("2024-06-10T06:13:20.123Z", at(123000)),
    # Fluentd time_type string without time_format and utc true: no fraction
    ("2024-06-10T06:13:20Z", at()),
    ("2024-06-10T06:13:20z", at()),
    # Fluentd local time with an offset (Ruby's iso8601 and %z forms)
    ("2024-06-10T15:13:20+09:00", at()),
    ("2024-06-10T15:13:20+0900", at()),
    ("2024-06-10T15:13:20+09", at()),
    ("2024-06-10T01:43:20-04:30", at()),
    ("2024-06-10 15:13:20 +0900", at()),
    ("2024-06-10T06:13:20.123000000+0000", at(123000)),
    # other separators that time_format strings produce
    ("2024-06-10 06:13:20.5", at(500000)),
    ("2024-06-10t06:13:20,25Z", at(250000)),
])
def test_iso8601_forms(text: str, expected: float) -> None:
    assert parse_time(text) == pytest.approx(expected, abs=1e-6)


def test_a_time_without_zone_is_taken_as_utc() -> None:
    # Fluentd time_type string without `utc true` writes local time with no zone;
    # the decoder cannot know the forwarder's zone and reads it as UTC.
    assert parse_time("2024-06-10T06:13:20") == WHOLE
    assert parse_time("2024-06-10T06:13:20.000001") == pytest.approx(at(1), abs=1e-6)


def test_fractions_longer_than_microseconds_are_truncated_not_rounded() -> None:
    assert parse_time("2024-06-10T06:13:20.9999999Z") == pytest.approx(at(999999), abs=1e-7)


def test_offsets_move_the_instant() -> None:
    east = parse_time("2024-06-10T06:13:20+02:00")
    west = parse_time("2024-06-10T06:13:20-02:00")
    assert west - east == pytest.approx(timedelta(hours=4).total_seconds())


@pytest.mark.parametrize("value", [
    None, True, False, {"t": 1}, [WHOLE], -1, -0.5, float("nan"), float("inf"),
    float("-inf"), 10**400, 1e30, "", "   ", "yesterday", "NaN", "inf", "1_718_000_000",
    "0x10", "1e400", "-5", "2024-06-10", "2024-13-10T00:00:00Z", "2024-02-30T00:00:00Z",
    "2024-06-10T25:00:00Z", "2024-06-10T06:13:20+25:00", "2024-06-10T06:13:20 UTC",
    "10000-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "2024-06-10T06:13:20.Z",
    "2024-06-10T06:13:20.123Z trailing",
])
def test_bad_times_are_rejected_with_bad_time(value: object) -> None:
    with pytest.raises(RejectedMessage) as caught:
        parse_time(value)
    assert caught.value.reason == "bad_time"
    assert len(caught.value.detail) < 200  # the detail shows a bounded excerpt


@pytest.mark.parametrize(("text", "expected"), [
    ("0", True), ("-12.5e3", True), ("1E+2", True), ("01", False), ("1.", False),
    (".5", False), ("NaN", False), ("1_000", False), (" 1", False), ("+1", False), ("", False),
])
def test_number_text_is_exactly_a_json_number(text: str, expected: bool) -> None:
    assert is_number_text(text) is expected
