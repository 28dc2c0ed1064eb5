"""The project as the page sees it: one JSON document (lines, variants, timing, beats, outputs),
built from the project's accessors and `edit.project_lines` on every request, so what the CLI
changed in between is always shown."""
from __future__ import annotations

import math
from pathlib import Path

from ..actions import project_lines
from ..errors import InputError

from ..project import UNTRAINED_NOTE, Project, index_file, is_project

ENERGY_RATE = 20.0  # energy values per second of song on the timeline


def _num(x: float | None, nd: int = 4) -> float | None:
    """JSON cannot carry NaN or infinity (an untrained score can be NaN)."""
    return round(float(x), nd) if x is not None and math.isfinite(x) else None


def file_url(root: Path, path: Path) -> str:
    """/files/... for a file inside the project, with its mtime so the browser refetches a redrawn one."""
    return f"/files/{path.relative_to(root).as_posix()}?v={path.stat().st_mtime_ns}"


def preview_file(root: Path, line: int) -> Path:
    return root / "previews" / f"line-{line}.mp4"


def project_view(root: Path) -> dict:
    """Everything the page draws, as JSON-able values; `exists` False before the first run."""
    out: dict = {"name": root.name.removesuffix(".musivid"), "root": str(root), "exists": False}
    if not is_project(root):
        return out
    out["version"] = index_file(root).stat().st_mtime_ns  # as in Studio.state: no reload for this one
    try:
        p = Project.open(root)
        settings = p.settings
    except InputError as e:  # a damaged project.json or one a run has not filled yet
        return out | {"error": str(e)}
    lines = project_lines(p)
    rhythm = p.rhythm()
    duration = max([s.segment.end for s in lines] + [0.0])
    energy: list[float] = []
    if rhythm is not None:
        if len(rhythm.strength_t):
            duration = max(duration, float(rhythm.strength_t[-1]))
        import numpy as np

        t = np.arange(0.0, duration, 1.0 / ENERGY_RATE)
        e = np.interp(t, rhythm.strength_t, rhythm.strength) if len(rhythm.strength_t) else np.zeros_like(t)
        peak = float(e.max()) if len(e) else 0.0
        energy = [round(float(v), 3) for v in (e / peak if peak > 0 else e)]
    audio, video = p.input("audio"), p.output("video")
    o, r = settings.optimize, settings.render
    m = settings.models
    return out | {
        "exists": True,
        "untrained": m.untrained,
        "untrained_note": UNTRAINED_NOTE if m.untrained else None,
        "settings": {"steps": o.steps, "variants": o.variants, "cutouts": o.cutouts, "seed": o.seed, "fps": r.fps,
                     "size": r.size, "frame": "{}x{}".format(*r.frame), "captions": r.captions, "style": settings.direction.style,
                     "clip": "untrained" if m.untrained else m.clip_path or m.clip,
                     "biggan": "untrained" if m.untrained else m.biggan_path or m.biggan},
        "duration": _num(duration, 3),
        "tempo": _num(rhythm.tempo, 2) if rhythm is not None else None,
        "beats": [_num(b, 3) for b in rhythm.beats] if rhythm is not None else [],
        "energy": {"rate": ENERGY_RATE, "values": energy},
        "audio": ({"url": f"/media/audio?v={audio.sha256[:12]}", "name": audio.path.name}
                  if audio is not None and audio.path.is_file() else None),
        "video": ({"url": f"/media/video?v={video.stat().st_mtime_ns}", "name": video.name, "path": str(video)}
                  if video is not None and video.is_file() else None),
        "lines": [{
            "line": li.line, "text": li.segment.text, "start": _num(li.segment.start), "end": _num(li.segment.end),
            "keyframe": _num(li.keyframe.time) if li.keyframe else None,
            "snapped": bool(li.keyframe and li.keyframe.snapped), "shown": li.shown, "picked": li.picked,
            "repeats": list(li.repeats),  # the other lines with the same target: their own picks, shared variants
            "prompt": li.prompt,  # its own image prompt (None: its image follows its words)
            "preview": (file_url(root, preview_file(root, li.line)) if preview_file(root, li.line).is_file() else None),
            "variants": [{"variant": v.variant, "score": _num(v.score), "steps": v.steps,
                          "thumb": file_url(root, v.thumbnail) if v.thumbnail else None} for v in li.variants],
        } for li in lines],
        "missing_thumbnails": sum(1 for li in lines for v in li.variants if v.thumbnail is None),
        "missing_lines": [li.line for li in lines if not li.variants],
    }
