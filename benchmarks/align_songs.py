"""Line-start accuracy of the lyric alignment on every test song of samples/songs (the synthetic
spoken and sung ones, and the real recordings `*_real`), through the product's own API
(`musivid.song.timing.aligner`), with one Whisper model.

Per song: the median absolute error of the line starts that were placed, the fraction of sung
lines whose start is within 0.3 s and within 1.0 s of the truth (a sung line left out counts as
a miss), the sung lines left out, the lines placed although the song never sings them, and the
seconds taken (decode + alignment; the model is loaded once, before). Prints a markdown table
ready for benchmarks/RESULTS.md; `--json PATH` writes the figures too.

    .venv/bin/python benchmarks/align_songs.py [--whisper-model PATH] [--json out.json] [NAME ...]

Default model: the multilingual Whisper base as the tests assemble it (musivid[asr-offline],
joined into the test cache by tests/conftest.py). Offline: nothing is downloaded.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SONGS = ROOT / "samples" / "songs"


def default_model() -> Path:
    """The multilingual base where the tests keep it (tests/conftest.py: assemble_whisper_base)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import assemble_whisper_base

    return assemble_whisper_base()


def score(truth_lines: list[dict], res) -> dict:
    """Errors of one alignment against its truth: per sung line, the placed start or a miss."""
    placed = {i: seg.start for i, seg in zip(res.lines, res.segments)}
    sung = [(i, r["start"]) for i, r in enumerate(truth_lines) if r["start"] is not None]
    errors = [abs(placed[i] - t) for i, t in sung if i in placed]
    left_out = [i for i, _ in sung if i not in placed]
    unsung_placed = [i for i, r in enumerate(truth_lines) if r["start"] is None and i in placed]
    n = len(sung)
    return {
        "lines": n,
        "median_abs_error_s": round(statistics.median(errors), 3) if errors else None,
        "within_0.3s": round(sum(e <= 0.3 for e in errors) / n, 3) if n else None,
        "within_1.0s": round(sum(e <= 1.0 for e in errors) / n, 3) if n else None,
        "left_out": left_out,
        "unsung_placed": unsung_placed,
        "errors_s": {i: round(abs(placed[i] - t), 3) for i, t in sung if i in placed},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="songs of samples/songs (default: all)")
    ap.add_argument("--whisper-model", type=Path, help="a CTranslate2 Whisper directory (default: the tests' base)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    from musivid.song.audio import decode
    from musivid.song.lyrics import load
    from musivid.song.timing import aligner

    model = args.whisper_model or default_model()
    names = args.names or sorted(p.name.removesuffix(".truth.json") for p in SONGS.glob("*.truth.json"))
    t0 = time.perf_counter()
    align = aligner("faster-whisper", str(model), offline=True, device=args.device, required=True)
    load_s = time.perf_counter() - t0
    rows = []
    for name in names:
        truth = json.loads((SONGS / f"{name}.truth.json").read_text(encoding="utf-8"))
        lyrics = load(SONGS / f"{name}.txt")
        texts = [ln.text for ln in lyrics.lines]
        assert texts == [r["text"] for r in truth["lines"]], f"{name}: the truth does not list the lyric lines"
        t = time.perf_counter()
        audio = decode(SONGS / f"{name}.mp3")
        res = align(audio, texts, source=SONGS / f"{name}.txt")
        took = time.perf_counter() - t
        row = {"song": name, "kind": "real" if name.endswith("_real") else "synthetic",
               "language": truth["language"], "duration_s": round(audio.duration, 1), "seconds": round(took, 1),
               **score(truth["lines"], res)}
        rows.append(row)
        print(f"{name}: {took:.1f} s", file=sys.stderr)

    def pct(v):
        return "-" if v is None else f"{100 * v:.0f} %"

    print(f"Whisper model: {model} (loaded in {load_s:.1f} s); {platform.processor() or platform.machine()}, "
          f"{datetime.now(timezone.utc):%Y-%m-%d}\n")
    print("| song | kind | lang | lines | median \\|err\\| | within 0.3 s | within 1.0 s | left out | unsung placed "
          "| time |")
    print("|---|---|---|---:|---:|---:|---:|---|---|---:|")
    for r in rows:
        med = "-" if r["median_abs_error_s"] is None else f"{r['median_abs_error_s']:.2f} s"
        print(f"| {r['song']} | {r['kind']} | {r['language']} | {r['lines']} | {med} | {pct(r['within_0.3s'])} | "
              f"{pct(r['within_1.0s'])} | {', '.join(map(str, r['left_out'])) or '-'} | "
              f"{', '.join(map(str, r['unsung_placed'])) or '-'} | {r['seconds']:.1f} s |")
    for kind in ("synthetic", "real"):
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            continue
        n = sum(r["lines"] for r in sel)
        w3 = sum(r["within_0.3s"] * r["lines"] for r in sel) / n
        w10 = sum(r["within_1.0s"] * r["lines"] for r in sel) / n
        errs = [e for r in sel for e in r["errors_s"].values()]
        med = f"{statistics.median(errs):.2f} s" if errs else "-"
        print(f"| **all {kind}** | | | {n} | {med} | {pct(w3)} | {pct(w10)} | "
              f"{sum(len(r['left_out']) for r in sel)} | {sum(len(r['unsung_placed']) for r in sel)} | "
              f"{sum(r['seconds'] for r in sel):.1f} s |")
    if args.json:
        out = {"model": str(model), "load_s": round(load_s, 1), "songs": rows}
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
