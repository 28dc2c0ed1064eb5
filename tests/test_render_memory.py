"""Memory stays flat over song length while rendering (the field's tools hold every frame)."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_peak_rss_flat_from_1_to_5_minutes():
    spec = importlib.util.spec_from_file_location("render_memory", ROOT / "benchmarks" / "render_memory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--fps", "4", "--size", "64", "--minutes", "1", "5"])
    assert res["rows"][1]["frames"] == 5 * res["rows"][0]["frames"] == 1200
    assert res["ratio"] < 1.2
