"""Every drift setting, with safe defaults.

The labeler's config validates the ``[drift]`` TOML table into
:class:`DriftSettings` with pydantic; each dataclass forbids unknown keys, so a
typo is an error that names the key. The defaults were chosen with
``loglabel drift-eval`` (see :mod:`drift.evaluate`): zero false alarms in 10^6
stationary events per stream, a 0.5 sigma mean shift found in about 150 events.

Counts (``warmup``, ``min_samples``, ``cooldown``, windows) are in events of the
stream concerned: predictions for data and prediction drift, labels for
concept drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pydantic import ConfigDict

ParamValue = float | int | str | bool
"""A detector parameter as it appears in the config."""

_FORBID = ConfigDict(extra="forbid")


def _block_adwin() -> dict[str, ParamValue]:
    # ADWIN checks every update (clock=1) because it sees block statistics,
    # not single events; min_window_length=2 keeps one unlucky block from
    # being a window of its own.
    return {"delta": 1e-4, "clock": 1, "min_window_length": 2, "grace_period": 4}


@dataclass(frozen=True, slots=True)
class NumericSettings:
    """Data and prediction drift on numeric values.

    Values are winsorized at the reference's ``winsorize`` and
    ``1 - winsorize`` quantiles, averaged over blocks of ``block_size``
    events, standardized against the reference and multiplied by ``z_scale``
    before they reach the detector. Two statistics are tracked per stream: the
    block mean (location) and, if ``dispersion``, the block mean absolute
    deviation from the reference median (spread).
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    detector: Literal["ADWIN", "KSWIN", "PageHinkley"] = "ADWIN"
    params: Mapping[str, ParamValue] = field(default_factory=_block_adwin)
    block_size: int = 16
    z_scale: float = 4.0
    winsorize: float = 0.005
    dispersion: bool = True


@dataclass(frozen=True, slots=True)
class CategoricalSettings:
    """Data and prediction drift on categorical values (strings and booleans).

    The reference (``warmup``: the first events; ``baseline``: the training
    profile's top values) is compared with the last ``window`` events in
    L-infinity distance. A per-category detector over standardized block
    shares decides *when* something changed; the alarm is raised once the
    window's L-infinity distance also reaches ``threshold``.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    window: int = 512
    threshold: float = 0.05
    reference: Literal["warmup", "baseline"] = "warmup"
    detector: Literal["ADWIN", "KSWIN", "PageHinkley"] = "ADWIN"
    params: Mapping[str, ParamValue] = field(default_factory=_block_adwin)
    block_size: int = 64
    z_scale: float = 4.0
    max_categories: int = 8
    min_share: float = 0.01
    top_k_report: int = 5


@dataclass(frozen=True, slots=True)
class PredictionSettings:
    """Which prediction fields are watched (numeric: a score; string: a class)."""

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    fields: tuple[str, ...] = ("score",)


@dataclass(frozen=True, slots=True)
class LabelSettings:
    """Concept drift once labels exist: positive-label rate and error stream.

    ``error`` defines an error: ``threshold`` means the thresholded score
    disagrees with the label; ``log_loss`` means the example's log loss is
    above the ``loss_quantile`` of the warm-up losses.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    enabled: bool = True
    rate_detector: Literal["ADWIN", "DDM", "EDDM", "HDDM_A", "HDDM_W", "FHDDM"] = "ADWIN"
    rate_params: Mapping[str, ParamValue] = field(default_factory=lambda: {"delta": 1e-4})
    error_detector: Literal["ADWIN", "DDM", "EDDM", "HDDM_A", "HDDM_W", "FHDDM"] = "DDM"
    error_params: Mapping[str, ParamValue] = field(default_factory=dict)
    error: Literal["threshold", "log_loss"] = "threshold"
    score_threshold: float = 0.5
    loss_quantile: float = 0.9
    summary_window: int = 1000


@dataclass(frozen=True, slots=True)
class FeatureOverride:
    """Per-feature settings; ``None`` means the section's default."""

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    enabled: bool = True
    threshold: float | None = None
    skew_threshold: float | None = None
    params: Mapping[str, ParamValue] | None = None


@dataclass(frozen=True, slots=True)
class SamplingSettings:
    """Load shedding: watch only every ``every``-th prediction of a model."""

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    every: int = 1


@dataclass(frozen=True, slots=True)
class SkewSettings:
    """Training/serving skew against the baseline profile (needs ``baseline_path``).

    Every ``window`` predictions the window is compared with the profile:
    Jensen-Shannon divergence (base 2) for numeric features, L-infinity for
    categorical ones, and the share of values outside the training domain.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    enabled: bool = True
    window: int = 10_000
    numeric_threshold: float = 0.1
    categorical_threshold: float = 0.1
    unseen_share_threshold: float = 0.05
    min_presence_drop: float = 0.5


@dataclass(frozen=True, slots=True)
class KafkaSinkSettings:
    """Publish every drift event as JSON to ``topic``, keyed by model."""

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    enabled: bool = True
    topic: str = "loglabel.drift"


@dataclass(frozen=True, slots=True)
class FluentdSettings:
    """Send every drift event to Fluentd with fluent-logger (tag ``tag.label``)."""

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    enabled: bool = False
    host: str = "localhost"
    port: int = 24224
    tag: str = "loglabel"
    label: str = "drift"
    timeout: float = 3.0


@dataclass(frozen=True, slots=True)
class DriftSettings:
    """The ``[drift]`` section.

    ``warmup`` events build each stream's reference before its detector is
    armed; ``min_samples`` more must reach the detector before it may alarm;
    after an alarm the stream relearns its reference (another ``warmup``) and
    stays quiet for at least ``cooldown`` events, so one change gives one event.
    Schema events for the same (model, kind, feature) are reported at most once
    per ``schema_cooldown_s`` seconds of event time.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    enabled: bool = True
    warmup: int = 1000
    min_samples: int = 64
    cooldown: int = 2000
    numeric: NumericSettings = field(default_factory=NumericSettings)
    categorical: CategoricalSettings = field(default_factory=CategoricalSettings)
    prediction: PredictionSettings = field(default_factory=PredictionSettings)
    labels: LabelSettings = field(default_factory=LabelSettings)
    features: Mapping[str, FeatureOverride] = field(default_factory=dict)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    baseline_path: str | None = None
    skew: SkewSettings = field(default_factory=SkewSettings)
    summary_window: int = 256
    schema_cooldown_s: float = 3600.0
    history: int = 1000
    kafka: KafkaSinkSettings = field(default_factory=KafkaSinkSettings)
    fluentd: FluentdSettings = field(default_factory=FluentdSettings)

    def override(self, feature: str) -> FeatureOverride:
        """The override for ``feature``, or the all-defaults one."""
        return self.features.get(feature, _NO_OVERRIDE)


_NO_OVERRIDE = FeatureOverride()
