"""drift: online drift monitoring of deployed models, on top of ingest's records.

One :class:`DriftMonitor` per process watches every model it is shown:

- data drift: every numeric feature (location and spread, block-wise z-scores
  into River detectors) and every categorical feature (shares against a
  reference, in L-infinity distance);
- prediction drift: the score distribution, or the class distribution;
- concept drift: the positive-label rate and the error stream, once labels
  exist;
- schema and training/serving skew against a baseline profile
  (:func:`build_profile`).

Each change gives one :class:`DriftEvent`, which the sinks write as a JSON
log line, to a Kafka topic and optionally to Fluentd. River's detectors sit
behind our own :class:`Detector` interface. :mod:`drift.evaluation.evaluate` measures
detection delay and false alarms on streams with known changes.

This package may import ``ingest``; it never imports ``labeler``.
"""

from drift.baseline.profile import build_profile, load_profile, save_profile
from drift.baseline.skew import SkewChecker, SkewFinding, js_divergence
from drift.detectors import DETECTORS, Detector, Firing, Watch, make_detector
from drift.errors import DriftConfigError, DriftError, ProfileError
from drift.events import KINDS, DriftEvent
from drift.monitor import DriftMonitor
from drift.monitors.categorical import CategoricalDrift, linf_distance
from drift.settings import (
    CategoricalSettings,
    DetectorSpec,
    DriftSettings,
    FeatureOverride,
    FluentdSettings,
    KafkaSinkSettings,
    LabelSettings,
    NumericSettings,
    PredictionSettings,
    SamplingSettings,
    SkewSettings,
)
from drift.sinks import (
    DriftCounters,
    DriftSink,
    FanoutSink,
    FluentdSink,
    KafkaSink,
    LogSink,
    build_sinks,
)

__all__ = [
    "DETECTORS",
    "KINDS",
    "CategoricalDrift",
    "CategoricalSettings",
    "Detector",
    "DetectorSpec",
    "DriftConfigError",
    "DriftCounters",
    "DriftError",
    "DriftEvent",
    "DriftMonitor",
    "DriftSettings",
    "DriftSink",
    "FanoutSink",
    "FeatureOverride",
    "Firing",
    "FluentdSettings",
    "FluentdSink",
    "KafkaSink",
    "KafkaSinkSettings",
    "LabelSettings",
    "LogSink",
    "NumericSettings",
    "PredictionSettings",
    "ProfileError",
    "SamplingSettings",
    "SkewChecker",
    "SkewFinding",
    "SkewSettings",
    "Watch",
    "build_profile",
    "build_sinks",
    "js_divergence",
    "linf_distance",
    "load_profile",
    "make_detector",
    "save_profile",
]
