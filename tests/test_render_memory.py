"""Memory stays flat over song length while rendering (the field's tools hold every frame)."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_peak_rss_flat_over_a_five_times_longer_song():
    """30 s and 150 s of video (120 and 600 frames at 4 fps): the longer song peaks no higher."""
    spec = importlib.util.spec_from_file_location("render_memory", ROOT / "benchmarks" / "render_memory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--fps", "4", "--size", "64", "--minutes", "0.5", "2.5"])
    assert res["rows"][1]["frames"] == 5 * res["rows"][0]["frames"] == 600
    assert res["ratio"] < 1.2
