"""The CLI starts without loading River, SciPy or pandas: validating a config needs none
of them (importing ``river.drift`` alone takes about a second, SciPy's statistics)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("river", "scipy", "pandas")


def _loaded(code: str) -> list[str]:
    roots = "{m.split('.')[0] for m in sys.modules}"
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({roots} & {set(HEAVY)!r})))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True)
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_the_cli_and_a_config_validation_load_no_river_scipy_or_pandas() -> None:
    assert _loaded("import labeler.ops.cli\nfrom labeler.config import validate\n"
                   "validate({})") == []


def test_a_worker_with_drift_on_loads_river_while_it_starts() -> None:
    # not on its first poll batch, inside the loop (and inside the bench's clock)
    code = ("from collections import Counter\nfrom drift.settings import DriftSettings\n"
            "from labeler.runtime.drift_hub import build_hub\n"
            "build_hub(DriftSettings(), 'drift', Counter(), [])")
    assert "river" in _loaded(code)
    assert "river" not in _loaded(code.replace("DriftSettings()",
                                               "DriftSettings(enabled=False)"))


def test_the_drift_package_names_load_on_first_use() -> None:
    assert _loaded("import drift") == []
    assert "river" in _loaded("import drift\ndrift.make_detector('ADWIN', {})")
