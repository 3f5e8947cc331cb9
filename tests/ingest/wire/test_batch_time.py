"""The batch decoder's ISO-8601 shortcut against ``parse_time``, bit for bit."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import RejectedMessage
from ingest.wire.batch_time import iso_utc
from ingest.wire.timeparse import parse_time


def _reference(text: str) -> float | None:
    try:
        return parse_time(text)
    except RejectedMessage:
        return None


@settings(max_examples=1000, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
       st.text(alphabet="0123456789", max_size=12), st.sampled_from([".", ","]))
def test_every_utc_iso_time_reads_as_parse_time_reads_it(moment: datetime, digits: str,
                                                         point: str) -> None:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") .rjust(19, "0")
    if digits:
        text += point + digits
    text += "Z"
    got = iso_utc(text)
    assert got is None or got == _reference(text)
    if 1970 <= moment.year < 9999:
        assert got is not None and got == _reference(text)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789-T:.,Z +tz\u0663_", min_size=18, max_size=30))
def test_any_other_text_is_left_to_parse_time_or_read_the_same(text: str) -> None:
    got = iso_utc(text)
    assert got is None or got == _reference(text)


def test_shapes_it_leaves_to_parse_time() -> None:
    for text in ["2024-06-10T06:13:20+02:00", "2024-06-10 06:13:20Z", "2024-06-10t06:13:20Z",
                 "2024-02-30T00:00:00Z", "2024-06-10T24:00:00Z", "2024-06-10T06:13:60Z",
                 "1969-12-31T23:59:59Z", "2024-06-10T06:13:20.Z", "2024-06-10T06:13:2\u0663Z",
                 "9999-12-31T23:59:59.999999Z", " 2024-06-10T06:13:20Z"]:
        assert iso_utc(text) is None, text
    assert iso_utc("2024-06-10T06:13:20.123456789Z") == parse_time("2024-06-10T06:13:20.123456789Z")
    assert datetime.fromtimestamp(iso_utc("2024-06-10T06:13:20Z") or 0, timezone.utc).hour == 6
