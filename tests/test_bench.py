"""The speed-up is not bought with another objective: musivid's batched optimizer follows the
reference loop's per-prompt loss trajectory (same cutout boxes and seeds, tiny models, fp32, CPU)."""
import copy

import pytest
import torch

from conftest import musivid
from musivid.config import OptimizeConfig
from musivid.images.models import biggan as bg
from musivid.images.optimize import optimize
from musivid.images.reference import reference_optimize
from musivid.rng import seed_for

TEXTS = ["a red fox runs through the snow", "a lighthouse against the storm", "fireworks in the summer sky"]


def test_batched_optimizer_matches_reference_loop(tiny_models):
    clip, _ = tiny_models
    torch.manual_seed(0)
    raw = bg.new_model(bg.tiny_config()).eval()
    gen = bg.Generator(bg.prepare(copy.deepcopy(raw)), "t", True)
    cfg = OptimizeConfig(steps=12, cutouts=8)
    seeds = [seed_for(0, t, 0) for t in TEXTS]
    batched = []
    optimize(gen, clip, TEXTS, seeds, cfg, callback=lambda i: batched.append(i.loss.clone()))
    batched = torch.stack(batched)  # (steps, N)
    worst = 0.0
    for i, (t, s) in enumerate(zip(TEXTS, seeds)):
        losses, _, _ = reference_optimize(raw, clip, t, s, cfg)
        rel = (torch.tensor(losses) - batched[:, i]).abs() / torch.tensor(losses).abs()
        worst = max(worst, float(rel.max()))
        print(f"prompt {i}: reference {losses[0]:.4f} -> {losses[-1]:.4f}, "
              f"batched {float(batched[0, i]):.4f} -> {float(batched[-1, i]):.4f}, max rel diff {float(rel.max()):.2e}")
    assert worst < 1e-3  # stated tolerance: 0.1 % relative at every step


def test_bench_cli_on_cpu_shows_the_ratio(tmp_path):
    md = tmp_path / "bench.md"
    r = musivid("bench", "--device", "cpu", "--untrained", "--steps", "3", "--batch", "1,8", "--cutouts", "8",
                "--markdown", str(md))
    assert r.returncode == 0, r.stderr
    assert "reference loop" in r.stderr  # progress lines
    assert "reference (one prompt, fp32)" in r.stdout and "speed-up at best batch" in r.stdout
    assert "latent-steps/s" in r.stdout and "random weights" in r.stdout
    assert "| reference (one prompt, fp32) | 1 |" in md.read_text() and "speed-up" in md.read_text()


def _report(rows):
    from musivid.perf.bench import BenchReport, BenchRow

    rep = BenchReport("H100 (synthetic rows)", "m", 32, 7e11, peak_flops=8e14)
    rep.reference = BenchRow("reference (one prompt, fp32)", 1, 2.0)
    rep.rows = [BenchRow(*r[:3], peak_reserved_gb=r[3], micro_batch=r[4], compiled=r[5]) for r in rows]
    return rep


def test_best_batch_per_card_size_compile_gain_and_markdown():
    rep = _report([("eager", 8, 100.0, 10.0, 8, False), ("eager", 32, 300.0, 30.0, 32, False),
                   ("eager", 128, 320.0, 79.0, 64, False),  # split by OOM: never a card's best batch
                   ("compiled", 8, 150.0, 9.0, 8, True), ("compiled", 32, 420.0, 28.0, 32, True)])
    fits = rep.card_fits((24, 80))
    assert (fits[24].batch, fits[24].compiled) == (8, True)  # 9 GiB fits in 24 - 1.5; 28 does not
    assert (fits[80].batch, fits[80].compiled) == (32, True)
    assert rep.compile_gain() == 420.0 / 320.0  # best of each, OOM-split rows included
    assert rep.ratio() == 210.0 and rep.ceiling() == 8e14 / 7e11
    from musivid.perf.bench import format_markdown, format_report

    text = format_report(rep)
    assert "best batch for a 24 GiB card: 8 compiled" in text and "torch.compile: 1.31x eager" in text
    assert "(OOM: micro-batches of 64)" in text and "speed-up at best batch (32, compiled): 210.0x" in text
    md = format_markdown(rep)
    assert md.count("\n| ") == 8 and "- best batch for a 80 GiB card: 32 compiled" in md
    rep2 = _report([("eager", 8, 100.0, 30.0, 8, False)])
    assert rep2.card_fits((24,))[24] is None and rep2.compile_gain() is None
    assert "none measured fits in 22.5 GiB" in format_report(rep2)


def test_optimize_reports_the_micro_batch_it_ended_with(tiny_models):
    clip, gen = tiny_models
    cfg = OptimizeConfig(steps=1, cutouts=2, micro_batch=2)
    res = optimize(gen, clip, TEXTS, [seed_for(0, t, 0) for t in TEXTS], cfg)
    assert res.micro_batch == 2
    assert optimize(gen, clip, TEXTS, [1, 2, 3], OptimizeConfig(steps=1, cutouts=2)).micro_batch == 3


@pytest.mark.parametrize("args,expect", [(["--batch", "0"], "batch sizes must be 1 or more"),
                                         (["--batch", "x"], "comma-separated whole numbers"),
                                         (["--steps", "0"], "--steps"), (["--cutouts", "0"], "--cutouts"),
                                         (["--untrained", "--full-size"], "exclude each other")])
def test_bench_options_are_checked(args, expect):
    r = musivid("bench", "--device", "cpu", *args)
    assert r.returncode == 2 and expect in r.stderr and "Traceback" not in r.stderr


# ---- benchmarks/gpu_bench.py: one prepared device call ----------------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _gpu_bench():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu_bench.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_bench"] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_gpu_bench_plan_fits_one_call():
    """Stages by value (eager bench, render, eager vs compiled, GPU tests), 480 s of limits at most
    (a rerun still fits the 15 minutes of a session), results in at most 8 files."""
    import subprocess
    import sys

    gb = _gpu_bench()
    assert [s.name for s in gb.PLAN] == ["eager", "render", "compile", "tests"]
    assert sum(s.limit_s for s in gb.PLAN) <= 480 and len(gb.FILES) <= 8
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"), "plan"], capture_output=True,
                       text=True, env={**__import__("os").environ, "DRY": "1"})
    assert r.returncode == 0, r.stderr
    lines = [ln.split() for ln in r.stdout.splitlines() if ln.strip()[:2] in ("1.", "2.", "3.", "4.")]
    assert [(ln[1], int(ln[3])) for ln in lines] == [(s.name, s.limit_s) for s in gb.PLAN]
    assert "total limit 480 s" in r.stdout


@pytest.mark.slow
def test_gpu_bench_dry_run(tmp_path):
    """DRY=1 bash benchmarks/gpu_bench.sh run: every stage on the CPU with tiny models (~20 s here),
    in order, each with its limit; at most 8 files; every stage's results in the JSON."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "DRY": "1", "OUT": str(tmp_path), "SITE": str(tmp_path / "site"),
           "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_bench.sh"), "run"], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr + r.stdout
    heads = [ln.split()[1:4] for ln in r.stdout.splitlines() if ln.startswith("== ") and "limit" in ln]
    assert heads == [[s, "(limit", str(t)] for s, t in (("eager", 180), ("render", 60), ("compile", 160), ("tests", 80))]
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert files == ["results.json", "results.md", "run.log"]
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["stages"]) == {"eager", "render", "compile", "tests"} and res["failed"] == []
    assert res["stages"]["eager"]["reference"]["latent_steps_per_s"] > 0
    assert "reference loop: " in (tmp_path / "run.log").read_text()


def test_census_beside_the_measurement():
    from musivid.perf.bench import BenchRow, format_beside_census

    rep = _report([("musivid batched bf16", 16, 500.0, 30.0, 16, False)])
    est = {"device": "H200", "peaks": {"matmul_flops": 788e12}, "ceiling_latent_steps_per_s": 1144.0,
           "estimated_latent_steps_per_s": 568.0, "estimated_fraction_of_ceiling": 0.497}
    census = {"batch": 16, "cutouts": 32, "model_flops_per_latent_step": 689e9, "kernels_per_step": 1243,
              "bytes_per_latent_step": 5.3e9, **est, "estimates": {"H200": est}}
    md = format_beside_census(census, rep)
    assert "| latent-steps/s | 568 | 500.0 |" in md
    assert "| fraction of the ceiling | 49.7% | 43.8% |" in md  # 500 / (8e14 / 7e11)
    assert "| bf16 matrix rate (TFLOP/s) | 788 | 800 |" in md
    rep.rows = [BenchRow("x", 8, 1.0)]
    assert "not measured" in format_beside_census(census, rep)
