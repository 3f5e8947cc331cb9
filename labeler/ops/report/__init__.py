"""The drift-and-label report: one self-contained HTML file a person can look at.

``loglabel report`` reads a dataset's shards (:mod:`.sources`), shapes the
numbers (:mod:`.shaping`), turns them into plotly figures (:mod:`.charts`) and
writes one page with plotly.js inlined (:mod:`.page`, :mod:`.build`).
"""

from labeler.ops.report.build import ReportInputs, build_report, make_report, write_report

__all__ = ["ReportInputs", "build_report", "make_report", "write_report"]
