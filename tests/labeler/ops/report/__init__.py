"""Tests of the HTML report: its data shaping, its markup, and it in a real browser."""
