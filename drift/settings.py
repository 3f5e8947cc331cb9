"""Every drift setting, with safe defaults.

The labeler's config validates the ``[drift]`` TOML table into
:class:`DriftSettings` with pydantic; each dataclass forbids unknown keys, so a
typo is an error that names the key.

The defaults were chosen with ``loglabel drift-eval --size full``
(:mod:`drift.evaluation.evaluate`): no false alarm on any stationary stream
(10^6 events each of Gaussian, lognormal, Poisson, AR(1) with phi 0.5 and
0.9, rare 0/1, categorical and label data), every change found (including
changes during the warm-up, at arming, with a baseline, and right after an
alarm), and median delays (seed 0) of 151 events for a 0.5 sd mean shift,
79 for 1 sd, 255 for a doubled variance, 687 for 0.2 sd, 447 for a 0.1
L-infinity shift of categorical shares, 303 for a label rate 0.2 <-> 0.3 and
383 for SEA concept changes. Numeric streams use a CUSUM against the frozen
reference beside ADWIN on the same block z-scores; raw per-event ADWIN, while
faster on small shifts of Gaussian data (111 at 0.5 sd), raised 72 false
alarms per 10^6 lognormal events, 6245 on AR(1) phi 0.9, and missed variance
changes.

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

BinaryName = Literal["GLR", "ADWIN", "DDM", "EDDM", "HDDM_A", "HDDM_W", "FHDDM"]
"""Detectors for 0/1 streams: loglabel's share test (``GLR``,
:class:`drift.monitors.rates.ShareTest`) and River's (ADWIN takes them too)."""

_FORBID = ConfigDict(extra="forbid")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0")


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """A detector by name and River parameters, fed z-scores times ``z_scale``.

    The monitors feed standardized block statistics (about N(0, 1) when nothing
    changes). ``z_scale`` rescales them for the detector: 1 keeps a
    PageHinkley threshold in standard deviations; ADWIN wants about 4 because
    its bound has a range term that assumes inputs in [0, 1]. ``CUSUM`` is
    loglabel's two-sided CUSUM against the frozen reference
    (:class:`drift.detectors.Cusum`); River's detectors compare a stream with
    its own past.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    name: Literal["CUSUM", "ADWIN", "KSWIN", "PageHinkley"] = "CUSUM"
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    z_scale: float = 1.0

    def __post_init__(self) -> None:
        _positive("z_scale", self.z_scale)
        # A detector written in the config is built once now, so a bad parameter
        # is a config error that names the key, not a monitoring error at run
        # time. The shipped defaults are not: building River's ADWIN here would
        # load River and SciPy (about a second) at every config validation.
        if (self.name, dict(self.params), self.z_scale) not in _SHIPPED:
            from drift.detectors import make_detector
            from drift.errors import DriftConfigError

            try:
                make_detector(self.name, self.params)
            except DriftConfigError as exc:
                raise ValueError(str(exc)) from exc


SpecValues = tuple[str, dict[str, ParamValue], float]

# Page's CUSUM on block z-scores against the frozen reference: allowance 1 sd
# (plus the reference's own uncertainty, added per column), alarm at 8 sd of
# excess: no false alarm per 10^6 events in the evaluation.
_CUSUM: SpecValues = ("CUSUM", {"delta": 1.0, "threshold": 8.0}, 1.0)

# A CUSUM on block z-scores: allowance 1 sd, alarm at 8 sd of excess. alpha=1
# because River's default forgetting (0.9999) made it fire on stationary
# streams in the evaluation.
_PAGE: SpecValues = (
    "PageHinkley", {"delta": 1.0, "threshold": 8.0, "min_instances": 10, "alpha": 1.0}, 1.0
)

# ADWIN checks every block (clock=1); a small delta keeps it quiet, and it
# catches the small lasting shifts that a CUSUM with a 1-sd allowance misses.
_BACKSTOP: SpecValues = (
    "ADWIN", {"delta": 1e-5, "clock": 1, "min_window_length": 1, "grace_period": 4}, 4.0
)

# On numeric columns ADWIN compares the stream with its own long past, so it
# carries none of the frozen reference's uncertainty: with delta 1e-4 on
# calibrated block z-scores it finds small shifts sooner (0.2 sd: 687 events
# against 831 with 1e-5, full size, seed 0) with no false alarm at seeds 0-3.
# Larger deltas were faster still (7e-4: 127 events at 0.5 sd, 2e-3: 111) but
# raised false alarms (7e-4: one each on lognormal, score and Poisson streams
# at seeds 1-3; 2e-3: Gaussian and AR(1) at seed 0).
_NUMERIC_BACKSTOP: SpecValues = ("ADWIN", {**_BACKSTOP[1], "delta": 1e-4}, 4.0)

_SHIPPED = (_CUSUM, _PAGE, _BACKSTOP, _NUMERIC_BACKSTOP)
"""The default detectors (the evaluation and the test suite build them)."""


def _spec(values: SpecValues) -> DetectorSpec:
    name, params, z_scale = values
    return DetectorSpec(name, dict(params), z_scale)  # type: ignore[arg-type]


def _cusum() -> DetectorSpec:
    return _spec(_CUSUM)


def _page() -> DetectorSpec:
    return _spec(_PAGE)


def _backstop() -> DetectorSpec:
    return _spec(_BACKSTOP)


def _numeric_backstop() -> DetectorSpec:
    return _spec(_NUMERIC_BACKSTOP)


@dataclass(frozen=True, slots=True)
class NumericSettings:
    """Data and prediction drift on numeric values.

    Values are winsorized at the reference's ``winsorize`` and
    ``1 - winsorize`` quantiles and summarized per block of ``block_size``
    events: the block mean (location) and, if ``dispersion``, the block mean
    absolute deviation from the reference median (spread). Each is turned into
    a z-score against the reference, clipped to +/- ``z_clip`` (so one odd
    block cannot raise an alarm alone). Both are fed to ``detector`` and, if
    set, ``backstop`` (the first to fire raises the alarm). The reference is
    the warm-up, or with ``reference = "baseline"`` (the default) the
    baseline profile's quantiles of the feature when a profile has them, from
    the first event on. Z-scores are calibrated to the warm-up's
    autocorrelation and rare 0/1 features are watched as a rate (see
    :mod:`drift.monitors.numeric`).
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    detector: DetectorSpec = field(default_factory=_cusum)
    backstop: DetectorSpec | None = field(default_factory=_numeric_backstop)
    block_size: int = 16
    z_clip: float = 3.0
    winsorize: float = 0.025
    dispersion: bool = True
    reference: Literal["warmup", "baseline"] = "baseline"

    def __post_init__(self) -> None:
        _positive("block_size", self.block_size)
        _positive("z_clip", self.z_clip)
        if not 0.0 <= self.winsorize < 0.5:
            raise ValueError("winsorize must be in [0, 0.5)")


@dataclass(frozen=True, slots=True)
class CategoricalSettings:
    """Data and prediction drift on categorical values (strings and booleans).

    The reference (``warmup``: the first events; ``baseline``: the training
    profile's top values) is compared with the last ``window`` events in
    L-infinity distance. Every category expected ``min_expected`` times per
    block of ``block_size`` (up to ``max_categories`` of them), plus one bucket
    for all the others, gets detectors fed with its block share as a z-score;
    when one fires, the alarm is raised as soon as the window's L-infinity
    distance also reaches ``threshold``. After a stream's first alarm, a
    likelihood-ratio test of the block counts against their own past (no
    reference) fires too, at a rate set by ``split_false_alarms_per_million``
    (0: off).
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    window: int = 512
    threshold: float = 0.05
    reference: Literal["warmup", "baseline"] = "warmup"
    detector: DetectorSpec = field(default_factory=_page)
    backstop: DetectorSpec | None = field(default_factory=_backstop)
    block_size: int = 64
    z_clip: float = 4.0
    max_categories: int = 8
    min_expected: float = 5.0
    top_k_report: int = 5
    split_false_alarms_per_million: float = 1.0

    def __post_init__(self) -> None:
        if self.split_false_alarms_per_million < 0:
            raise ValueError("split_false_alarms_per_million must be >= 0 (0: no split test)")
        _positive("window", self.window)
        _positive("block_size", self.block_size)
        _positive("max_categories", self.max_categories)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be in [0, 1]")


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
    above the ``loss_quantile`` of the warm-up losses. Both streams get one
    update per label. ``GLR`` (loglabel's share test,
    :class:`drift.monitors.rates.ShareTest`) is the default for both: with
    both set to it, a scored label is one observation of the four (label,
    error) cells and one test watches them, with parameters ``rate_params``
    updated by ``error_params`` (``false_alarms_per_million``, default 1;
    ``clock``, 32; ``per_level``, 32; ``window``, 262144); labels without a
    score go to a two-cell test of the label. In the evaluation (seeds 0-5) it
    found label-rate changes in 255-303 labels and SEA concept changes in
    335-383, against 439-503 and 375-423 with ADWIN on each stream (the
    previous default), with no false alarm. River's detectors stay
    selectable per stream (``ADWIN``, ``DDM``, ...); DDM and HDDM_A only
    see rises, and the positive rate must be watched both ways.
    """

    def __post_init__(self) -> None:
        if not 0.0 < self.loss_quantile < 1.0:
            raise ValueError("loss_quantile must be in (0, 1)")
        # Build the label monitor's detectors once, so a bad detector parameter is a
        # config error now, not a monitoring error at the first label.
        from drift.errors import DriftConfigError
        from drift.monitors.labels import LabelDrift

        try:
            LabelDrift(self, warmup=1, min_samples=0, cooldown=0)
        except DriftConfigError as exc:
            raise ValueError(str(exc)) from exc

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    enabled: bool = True
    rate_detector: BinaryName = "GLR"
    rate_params: Mapping[str, ParamValue] = field(default_factory=dict)
    error_detector: BinaryName = "GLR"
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

    def __post_init__(self) -> None:
        _positive("every", self.every)


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

    def __post_init__(self) -> None:
        _positive("window", self.window)


@dataclass(frozen=True, slots=True)
class KafkaSinkSettings:
    """Publish every drift event as JSON, keyed by model, to the topic the
    pipeline names (``topics.drift``)."""

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    enabled: bool = True


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

    ``warmup`` events build each stream's frozen reference; numeric streams
    are armed earlier, after ``provisional`` events, against a provisional
    reference that the full warm-up then replaces. ``min_samples`` events
    must reach the detectors before they may alarm. After an alarm a stream
    relearns its reference; numeric streams are armed again ``provisional``
    events later, categorical ones after ``provisional`` events or a
    ``categorical.window``, whichever is more, and ``cooldown`` only keeps
    them from reporting the same change twice (see
    :mod:`drift.monitors.numeric` and :mod:`drift.monitors.categorical`);
    label streams restart their detectors at once and ``cooldown`` keeps
    them from reporting a same-direction change again within that many labels.
    Schema events for the same (model, kind, feature) are reported at most once
    per ``schema_cooldown_s`` seconds of event time. The pipeline watches each
    input partition with its own monitor (event time is ordered within a
    partition, not across); the same change seen by several partitions is
    published once under :class:`drift.events.Episodes` (within ``episode_s``
    seconds of event time, or at the same new level).
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID

    enabled: bool = True
    warmup: int = 1000
    provisional: int = 256
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
    episode_s: float = 600.0
    history: int = 1000
    kafka: KafkaSinkSettings = field(default_factory=KafkaSinkSettings)
    fluentd: FluentdSettings = field(default_factory=FluentdSettings)

    def __post_init__(self) -> None:
        _positive("warmup", self.warmup)
        _positive("provisional", self.provisional)
        _positive("summary_window", self.summary_window)
        _positive("history", self.history)
        if (self.min_samples < 0 or self.cooldown < 0 or self.schema_cooldown_s < 0
                or self.episode_s < 0):
            raise ValueError("min_samples, cooldown, schema_cooldown_s and episode_s must be >= 0")
        for feature, override in self.features.items():
            if override.enabled and override.params:  # a disabled feature builds none
                self._check_override(feature, override.params)

    def _check_override(self, feature: str, params: Mapping[str, ParamValue]) -> None:
        """A feature's ``params`` patch the primary detector of whichever section its
        values fall in, which is known only when they come: the patched detector
        must build for the numeric or the categorical one, else it is a config error
        naming the feature. Params that fit one section only still fail at run time
        if the feature's values are of the other kind. Checking the categorical
        detector loads River (about a second) when the numeric one rejects them."""
        from drift.detectors import make_detector
        from drift.errors import DriftConfigError

        errors = []
        for section, spec in (("numeric", self.numeric.detector),
                              ("categorical", self.categorical.detector)):
            try:
                make_detector(spec.name, {**spec.params, **params})
                return
            except DriftConfigError as exc:
                errors.append(f"as {section} ({spec.name}): {exc}")
        raise ValueError(f"features.{feature}.params fit neither section's detector: "
                         + "; ".join(errors))

    @classmethod
    def low_traffic(cls) -> DriftSettings:
        """The documented low-traffic preset (README, "Low-traffic preset").

        For models that serve hundreds, not thousands, of predictions per
        reference window: a 300-event warm-up armed provisionally after 96,
        8-event numeric blocks, 32-event categorical blocks over a 256-event
        window, and shorter cooldowns and skew windows. Its figures are in
        the README; it trades some false-alarm margin for reaction time.
        """
        return cls(
            warmup=300,
            provisional=96,
            min_samples=32,
            cooldown=600,
            summary_window=128,
            numeric=NumericSettings(block_size=8),
            categorical=CategoricalSettings(window=256, block_size=32, threshold=0.08),
            skew=SkewSettings(window=2000),
        )

    def override(self, feature: str) -> FeatureOverride:
        """The override for ``feature``, or the all-defaults one."""
        return self.features.get(feature, _NO_OVERRIDE)


_NO_OVERRIDE = FeatureOverride()
