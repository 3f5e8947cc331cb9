"""Logs: JSON lines by default, one aligned line per event for people with format "console"."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from labeler.config import validate
from labeler.console import describe_drift, format_line
from labeler.errors import ConfigError
from labeler.logs import LOGGER_NAME, ConsoleFormatter, JsonFormatter, log, log_to_file, setup

DRIFT = {"ts": 1_718_000_000.25, "level": "warning", "event": "drift", "model": "ctr",
         "kind": "data", "stream": "mean", "feature": "f00", "detector": "CUSUM",
         "statistic_name": "cumulative_deviation", "statistic": 8.16, "threshold": 8.0,
         "event_time": 1_718_000_000.0, "source": "predictions[2]@991",
         "reference": {"n": 256, "mean": 0.04, "std": 1.0},
         "current": {"n": 96, "mean": 1.08, "std": 1.07}, "detail": None}


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logger() -> Iterator[None]:
    logger = logging.getLogger(LOGGER_NAME)
    handlers, level = list(logger.handlers), logger.level
    streams = {h: getattr(h, "stream", None) for h in handlers}
    yield
    for h in logger.handlers:
        if h not in handlers:
            logger.removeHandler(h)
    for h in handlers:
        if getattr(h, "_loglabel", False):
            h.setFormatter(JsonFormatter())
            h.setLevel(logging.NOTSET)
            if streams[h] is not None:
                h.setStream(streams[h])  # type: ignore[attr-defined]
    logger.setLevel(level)


def test_a_drift_event_is_one_line_with_its_sentence_time_and_evidence() -> None:
    line = format_line(DRIFT)
    assert "\n" not in line and "\x1b" not in line
    assert line.startswith("06:13:20.250 WARN  drift ")
    assert "data/mean ctr: f00 mean changed from mean 0.04 to mean 1.08" in line
    assert "(CUSUM cumulative_deviation 8.16 >= 8)" in line
    assert "at 2024-06-10T06:13:20Z [predictions[2]@991]" in line


def test_columns_are_aligned_and_fields_are_key_value() -> None:
    a = format_line({"ts": 1.0, "level": "info", "event": "status", "labeled": 3,
                     "watermark_lag_s": {"0": 1.5}, "note": "two words"})
    b = format_line({"ts": 2.0, "level": "error", "event": "worker.failed", "error": "x"})
    assert a.index("status") == b.index("worker.failed")
    assert a.index("labeled=3") == b.index("error=x")
    assert 'watermark_lag_s={"0":1.5}' in a and 'note="two words"' in a


def test_colour_only_when_asked_and_drift_lines_stand_out() -> None:
    plain = format_line({"ts": 1.0, "level": "info", "event": "status"}, colour=True)
    drift = format_line(DRIFT, colour=True)
    assert "\x1b[36m" in plain and not plain.startswith("\x1b")
    assert drift.startswith("\x1b[1;33m") and drift.endswith("\x1b[0m")


def test_the_sentence_names_rates_and_categories_and_keeps_the_detail() -> None:
    concept = describe_drift({"model": "m", "kind": "concept", "stream": "positive_rate",
                              "feature": "clicked", "reference": {"rate": 0.1},
                              "current": {"rate": 0.25}, "statistic": None,
                              "detail": "rate went up"})
    assert concept == "m: clicked positive_rate changed from rate 0.1 to rate 0.25: rate went up"
    cat = describe_drift({"model": "m", "feature": "country", "stream": "distribution",
                          "reference": {"top": [["DE", 0.5]]}, "current": {"top": [["US", 0.9]]}})
    assert "from DE 50% to US 90%" in cat


def test_setup_console_colours_a_tty_only_and_json_stays_the_default(restore_logger: None
                                                                      ) -> None:
    logger = setup("INFO")
    handler = next(h for h in logger.handlers if getattr(h, "_loglabel", False))
    assert isinstance(handler.formatter, JsonFormatter)
    for stream, coloured in ((io.StringIO(), False), (TTY(), True)):
        handler.setStream(stream)  # type: ignore[attr-defined]
        setup("INFO", "console")
        assert isinstance(handler.formatter, ConsoleFormatter)
        assert handler.formatter.colour is coloured
        log("status", labeled=4)
        assert "status" in stream.getvalue() and "labeled=4" in stream.getvalue()
        assert ("\x1b" in stream.getvalue()) is coloured
    with pytest.raises(ValueError, match="logging.format"):
        setup("INFO", "xml")


def test_a_file_gets_info_json_while_stderr_keeps_warning(restore_logger: None,
                                                          tmp_path: object) -> None:
    stream = io.StringIO()
    logger = setup("WARNING")
    ours = next(h for h in logger.handlers if getattr(h, "_loglabel", False))
    ours.setStream(stream)  # type: ignore[attr-defined]
    path = f"{tmp_path}/run.log"
    handler = log_to_file(path, "INFO")
    try:
        log("status", labeled=1)
        log("drift.oops", logging.WARNING)
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = [json.loads(x) for x in open(path)]
    assert [d["event"] for d in lines] == ["status", "drift.oops"]
    assert "status" not in stream.getvalue() and "drift.oops" in stream.getvalue()


def test_the_format_key_defaults_to_json_and_refuses_others() -> None:
    assert validate({}).logging.format == "json"
    assert validate({"logging": {"format": "console"}}).logging.format == "console"
    with pytest.raises(ConfigError, match="logging.format: Input should be 'json' or 'console'"):
        validate({"logging": {"format": "xml"}})
