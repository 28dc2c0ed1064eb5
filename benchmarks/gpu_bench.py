"""Every GPU figure in ONE device call: the core of benchmarks/gpu_bench.sh (see there for the call).

    python benchmarks/gpu_bench.py plan          # the stages in order with their time limits
    python benchmarks/gpu_bench.py run [STAGES]  # run them, each in its own process under its limit
    DRY=1 ...                                    # the same on the CPU with tiny models: a check of this script

Stages run in order of value, each in a fresh process under its own time limit (a stage that hangs
or runs long is killed; the next one still runs). The limits add up to at most 480 s, so one call
ends within 8 minutes on an H200 and a rerun still fits a 15-minute session. Every result goes to
$OUT the moment it is measured, in three files (the device returns at most 8):
  results.json  every figure, per stage (rewritten after each measurement)
  results.md    the same as Markdown for benchmarks/RESULTS.md, with the census beside the measurement
  run.log       everything the stages printed, the reference loop's speed as soon as it is measured
The census needs no GPU: it runs here (`gpu_bench.sh fetch` writes .whl/census.json, carried along).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DRY = os.environ.get("DRY", "0") == "1"
OUT = Path(os.environ.get("OUT") or "/tmp/musivid-gpu-out")
CENSUS = Path(os.environ.get("CENSUS_JSON", ROOT / ".whl" / "census.json"))
FILES = ("results.json", "results.md", "run.log")
BUDGET_S = 480  # GPU work in one call: 8 minutes, so that a rerun fits the 15 minutes of a session


@dataclass(frozen=True)
class Stage:
    name: str
    limit_s: int
    what: str


PLAN = (
    Stage("eager", 180, "BigGAN-deep-256 + ViT-B/32 (random weights), 32 cutouts: the reference loop, then the "
                        "batched optimizer at batch 1-256; roofline vs a bf16 matrix product measured in the same "
                        "run; peak memory; the best batch for 24/80/141 GiB cards"),
    Stage("render", 60, "render frames/s at 256 px with H.264 + AAC against the encoder alone, same frames"),
    Stage("compile", 160, "eager against torch.compile at batch 64, same run, with the compile (warm-up) time"),
    Stage("tests", 80, "the @pytest.mark.gpu tests (tests/test_gpu.py)"),
)
assert sum(s.limit_s for s in PLAN) <= BUDGET_S


def settings() -> dict:
    """What each stage measures: full size on CUDA, or tiny models on the CPU for DRY=1."""
    if DRY:
        return dict(device="cpu", untrained=True, full_size=False, batches=(1, 4), steps=2, warmup=1,
                    compile_batch=4, render_s=1.0)
    return dict(device="cuda", untrained=False, full_size=True, batches=(1, 8, 16, 32, 64, 128, 256), steps=10,
                warmup=2, compile_batch=64, render_s=10.0)


def format_plan(stages=PLAN) -> str:
    mode = "DRY=1: CPU, tiny models (a check of the script)" if DRY else "GPU, full-size models"
    lines = [f"plan ({mode}); results in {OUT}: {', '.join(FILES)}"]
    lines += [f"  {i}. {s.name:8s} limit {s.limit_s:4d} s  {s.what}" for i, s in enumerate(stages, 1)]
    lines.append(f"  total limit {sum(s.limit_s for s in stages)} s of GPU work (at most {BUDGET_S} s)")
    return "\n".join(lines)


# ---- results: one JSON and one Markdown file, rewritten after every measurement ------------------

def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")  # never one of the files that come back half-written
    tmp.write_text(text)
    os.replace(tmp, path)


def load() -> dict:
    p = OUT / "results.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def save(stage: str, data: dict, markdown: str) -> None:
    res = load()
    res.setdefault("stages", {})[stage] = data
    res.setdefault("markdown", {})[stage] = markdown
    publish(res)


def publish(res: dict) -> None:
    """Write results.json and results.md from `res`."""
    _write(OUT / "results.json", json.dumps(res, indent=1))
    md = [f"# musivid GPU bench ({res.get('started', '')}, {res.get('device', '')})", ""]
    for s in PLAN:
        if s.name in res.get("markdown", {}):
            md += [f"## {s.name}", "", res["markdown"][s.name], ""]
    if res.get("failed"):
        md += ["## failed or cut", ""] + [f"- {f}" for f in res["failed"]]
    _write(OUT / "results.md", "\n".join(md) + "\n")


# ---- the stages (each runs in its own process) --------------------------------------------------

def _cfg(**kw):
    from musivid.config import BenchConfig

    st = settings()
    base = dict(device=st["device"], untrained=st["untrained"], full_size=st["full_size"], cutouts=32,
                batches=st["batches"], steps=st["steps"], warmup=st["warmup"])
    return BenchConfig(**(base | kw))


def stage_eager() -> None:
    from musivid.perf import bench

    census = json.loads(CENSUS.read_text())["census"] if CENSUS.is_file() else None

    def partial(rep):
        md = bench.format_markdown(rep)
        if census and not DRY:
            md += "\n\nThe census (counted here, no GPU) beside this run:\n\n" + bench.format_beside_census(census, rep)
        save("eager", rep.to_json(), md)

    partial(bench.run_bench(_cfg(), on_row=partial))


def stage_render() -> None:
    from musivid.perf import bench

    r = bench.run_render_bench(_cfg(batches=(1,)), seconds=settings()["render_s"], size=256)
    save("render", r.to_json(), bench.format_render(r))


def stage_compile() -> None:
    from musivid.perf import bench

    def partial(rep):
        save("compile", rep.to_json(), bench.format_markdown(rep))

    partial(bench.run_bench(_cfg(batches=(settings()["compile_batch"],), compile=True), reference=False,
                            on_row=partial))


def stage_tests() -> None:
    rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-rs", "tests/test_gpu.py", "-p", "no:cacheprovider"],
                         cwd=ROOT)
    save("tests", {"exit_code": rc}, f"`pytest tests/test_gpu.py`: exit code {rc} (the log has each test)")


STAGES = {"eager": stage_eager, "render": stage_render, "compile": stage_compile, "tests": stage_tests}


# ---- the driver ---------------------------------------------------------------------------------

def _device() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30).stdout.strip() or "no GPU"
    except (OSError, subprocess.SubprocessError):
        return "no nvidia-smi"


def run_stage(stage: Stage, log) -> int:
    """One stage in a process of its own, its output to the terminal and to run.log as it comes;
    killed (its whole process group) at its time limit. Returns its exit code (-9 if cut)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(
        p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p))
    proc = subprocess.Popen([sys.executable, __file__, "stage", stage.name], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    cut = threading.Event()

    def kill():
        cut.set()
        os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(stage.limit_s, kill)
    timer.start()
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            log.flush()
        rc = proc.wait()
    finally:
        timer.cancel()
    return -9 if cut.is_set() else rc


def run(names: list[str]) -> int:
    stages = [s for s in PLAN if not names or s.name in names]
    unknown = set(names) - {s.name for s in PLAN}
    if unknown:
        print(f"unknown stage(s): {', '.join(sorted(unknown))} (stages: {', '.join(s.name for s in PLAN)})",
              file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    plan = format_plan(stages)
    print(plan, flush=True)
    res = load()
    res.update(started=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), device=_device(), dry=DRY,
               plan=[{"name": s.name, "limit_s": s.limit_s} for s in stages], failed=[])
    publish(res)
    with open(OUT / "run.log", "a") as log:
        log.write(plan + f"\ndevice: {res['device']}\n")
        for s in stages:
            t = time.monotonic()
            head = f"== {s.name} (limit {s.limit_s} s) {time.strftime('%H:%M:%S', time.gmtime())} UTC"
            print(head, flush=True)
            log.write(head + "\n")
            rc = run_stage(s, log)
            tail = f"== {s.name}: exit {rc} after {time.monotonic() - t:.0f} s" + (" (cut at its limit)" if rc == -9 else "")
            print(tail, flush=True)
            log.write(tail + "\n")
            if rc != 0:
                res = load()
                res.setdefault("failed", []).append(tail.removeprefix("== "))
                publish(res)
    return 0


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "plan"
    if cmd == "plan":
        print(format_plan())
        return 0
    if cmd == "run":
        return run(argv[1:])
    if cmd == "stage" and len(argv) == 2 and argv[1] in STAGES:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
        logging.getLogger("musivid").setLevel(logging.INFO)
        STAGES[argv[1]]()
        return 0
    print("usage: gpu_bench.py plan | run [eager] [render] [compile] [tests] | stage NAME", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
