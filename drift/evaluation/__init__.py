"""Measuring the detectors: synthetic streams with known changes (``streams``) and the
``loglabel drift-eval`` harness that scores loglabel beside River's detectors
(``evaluate``)."""
