"""Drift settings: defaults, validation from a TOML-shaped dict, unknown keys."""

import pytest
from pydantic import TypeAdapter, ValidationError

from drift.monitor import DriftMonitor
from drift.settings import DetectorSpec, DriftSettings, FeatureOverride

ADAPTER = TypeAdapter(DriftSettings)


def test_defaults_build_a_working_monitor() -> None:
    s = DriftSettings()
    assert s.enabled and s.kafka.enabled and not s.fluentd.enabled
    assert s.prediction.fields == ("score",)
    assert DriftMonitor(s).observe_schema_skew("m", 0.0, "type_mismatch", "x", "d")


def test_a_toml_table_validates_into_nested_settings() -> None:
    s = ADAPTER.validate_python(
        {
            "warmup": 500,
            "cooldown": 4000,
            "numeric": {
                "block_size": 32,
                "detector": {"name": "ADWIN", "params": {"delta": 1e-4}, "z_scale": 4.0},
                "backstop": None,
            },
            "categorical": {"threshold": 0.1, "reference": "baseline"},
            "labels": {"error": "log_loss", "error_detector": "HDDM_A"},
            "features": {"price": {"threshold": 0.2, "enabled": False}},
            "prediction": {"fields": ["score", "label"]},
            "fluentd": {"enabled": True, "port": 24225},
        }
    )
    assert s.numeric.detector == DetectorSpec("ADWIN", {"delta": 1e-4}, 4.0)
    assert s.numeric.backstop is None
    assert s.categorical.reference == "baseline"
    assert s.override("price") == FeatureOverride(enabled=False, threshold=0.2)
    assert s.override("other") == FeatureOverride()
    assert s.prediction.fields == ("score", "label")
    assert s.fluentd.port == 24225


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"warmpu": 10}, "warmpu"),
        ({"numeric": {"blocksize": 8}}, "blocksize"),
        ({"features": {"price": {"treshold": 0.1}}}, "treshold"),
        ({"fluentd": {"hostname": "x"}}, "hostname"),
    ],
)
def test_unknown_keys_are_errors_that_name_the_key(data: dict, where: str) -> None:
    with pytest.raises(ValidationError, match=where):
        ADAPTER.validate_python(data)


@pytest.mark.parametrize(
    "data",
    [
        {"warmup": 0},
        {"cooldown": -1},
        {"numeric": {"block_size": 0}},
        {"numeric": {"winsorize": 0.5}},
        {"numeric": {"detector": {"name": "DDM"}}},
        {"categorical": {"threshold": 1.5}},
        {"categorical": {"reference": "training"}},
        {"labels": {"loss_quantile": 1.0}},
        {"labels": {"rate_params": {"bogus": 1}}},
        {"labels": {"error_params": {"clock": 0}}},
        {"sampling": {"every": 0}},
    ],
)
def test_out_of_range_values_are_rejected(data: dict) -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(data)


def test_the_readme_low_traffic_preset_is_the_one_in_code() -> None:
    import re
    from pathlib import Path

    import tomllib

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Low-traffic preset", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block is not None
    preset = ADAPTER.validate_python(tomllib.loads(block.group(1))["drift"])
    assert preset == DriftSettings.low_traffic()
    assert preset != DriftSettings()


@pytest.mark.parametrize(
    ("section", "spec", "where"),
    [
        ("numeric", {"detector": {"name": "ADWIN", "params": {"detla": 0.1}}}, "detla"),
        ("numeric", {"backstop": {"name": "PageHinkley", "params": {"bogus": 1}}}, "bogus"),
        ("categorical", {"detector": {"name": "CUSUM", "params": {"allowance": 1}}}, "CUSUM"),
    ],
)
def test_a_bad_detector_parameter_is_a_config_error(section: str, spec: dict,
                                                     where: str) -> None:
    # built once while validating, not failing later as a monitoring error
    with pytest.raises(ValidationError, match=where) as info:
        ADAPTER.validate_python({section: spec})
    assert section in str(info.value)


def test_the_shipped_detectors_are_the_defaults() -> None:
    s = DriftSettings()
    assert s.numeric.detector == DetectorSpec("CUSUM", {"delta": 1.0, "threshold": 8.0}, 1.0)
    assert s.numeric.backstop is not None and s.numeric.backstop.params["delta"] == 1e-4
    assert s.categorical.backstop is not None and s.categorical.backstop.params["delta"] == 1e-5
    assert s.categorical.detector.name == "PageHinkley"


@pytest.mark.parametrize("params", [{"threshold": 12.0}, {"alpha": 0.99}])
def test_a_feature_override_that_fits_either_sections_detector_is_accepted(
        params: dict) -> None:
    # threshold fits both CUSUM (numeric) and PageHinkley (categorical); alpha only the latter
    s = ADAPTER.validate_python({"features": {"price": {"params": params}}})
    assert s.override("price").params == params


def test_a_feature_override_that_fits_no_detector_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="features.price.params") as info:
        ADAPTER.validate_python({"features": {"price": {"params": {"detla": 1.0}}}})
    assert "detla" in str(info.value) and "CUSUM" in str(info.value)
    assert "PageHinkley" in str(info.value)


def test_a_disabled_features_params_are_not_checked() -> None:
    # a disabled feature builds no detector, so its params cannot fail
    s = ADAPTER.validate_python(
        {"features": {"price": {"enabled": False, "params": {"detla": 1.0}}}})
    assert not s.override("price").enabled
