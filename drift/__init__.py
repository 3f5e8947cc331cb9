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

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names, for type checkers and editors
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

# Each name is imported on first use (PEP 562), so that `import drift.settings`, which
# every config validation does, does not load River, SciPy and pandas: the CLI starts
# in a fraction of the time. `from drift import DriftMonitor` works as before.
_HOMES = {
    "build_profile": "drift.baseline.profile",
    "load_profile": "drift.baseline.profile",
    "save_profile": "drift.baseline.profile",
    "SkewChecker": "drift.baseline.skew",
    "SkewFinding": "drift.baseline.skew",
    "js_divergence": "drift.baseline.skew",
    "DETECTORS": "drift.detectors",
    "Detector": "drift.detectors",
    "Firing": "drift.detectors",
    "Watch": "drift.detectors",
    "make_detector": "drift.detectors",
    "DriftConfigError": "drift.errors",
    "DriftError": "drift.errors",
    "ProfileError": "drift.errors",
    "DriftEvent": "drift.events",
    "KINDS": "drift.events",
    "DriftMonitor": "drift.monitor",
    "CategoricalDrift": "drift.monitors.categorical",
    "linf_distance": "drift.monitors.categorical",
    "CategoricalSettings": "drift.settings",
    "DetectorSpec": "drift.settings",
    "DriftSettings": "drift.settings",
    "FeatureOverride": "drift.settings",
    "FluentdSettings": "drift.settings",
    "KafkaSinkSettings": "drift.settings",
    "LabelSettings": "drift.settings",
    "NumericSettings": "drift.settings",
    "PredictionSettings": "drift.settings",
    "SamplingSettings": "drift.settings",
    "SkewSettings": "drift.settings",
    "DriftCounters": "drift.sinks",
    "DriftSink": "drift.sinks",
    "FanoutSink": "drift.sinks",
    "FluentdSink": "drift.sinks",
    "KafkaSink": "drift.sinks",
    "LogSink": "drift.sinks",
    "build_sinks": "drift.sinks",
}


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


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'drift' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
