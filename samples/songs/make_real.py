"""Make the real sung test songs (NAME_real.mp3/.txt/.truth.json): excerpts of freely licensed
recordings with their lyric lines and each line's start, checked against the audio.

Sources (see NOTICE.md for the licences): git blobs of two public repositories, given as their
bare git directories. The line starts are written here by hand (see NOTICE.md for how each was
found); `--check` prints, for every line, the evidence in the audio around its start: the start
of the nearest phrase of the separated voice (REPET-SIM, librosa's nn_filter soft mask, energy
of 250-3500 Hz) and Silero VAD's probability, so a changed start can be judged again.

    python samples/songs/make_real.py --librosa-data DIR --ultrastar DIR [--check] [NAME ...]

Needs numpy, av, librosa and faster-whisper (for the VAD), as musivid does.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_songs import SR, encode_mp3, write_truth  # noqa: E402  (mono, 22.05 kHz, 40 kbit/s)


@dataclass
class Real:
    name: str
    lang: str
    repo: str  # "librosa-data" or "ultrastar": which --option's git directory holds the blob
    blob: str  # git blob id of the source audio
    source: str  # for the truth file
    cut: tuple[float, float]  # excerpt of the source (s)
    lines: list[tuple[str, float, float]]  # text, start, end in the SOURCE's time (s)


REALS = [
    # Karissa Hobbs, "Let's Go Fishin'" (CC BY 3.0, Free Music Archive, via librosa's example data):
    # starts from the separated voice's phrase onsets where one is clear, else Whisper's word start
    # (NOTICE.md lists which); ends are approximate (phrase ends, not checked).
    Real("en_fishin_real", "en", "librosa-data", "c058853e327889fd44f31d97c957dfdfba97f959",
         "Karissa Hobbs, Let's Go Fishin' (CC BY 3.0), from 8 s", (8.0, 56.0), [
             ("hey my baby, it's a beautiful day", 11.00, 12.85),
             ("that's calling to work and we'll go out and play, sweet darling", 12.90, 17.10),
             ("'cause I've got nothing but time on my hands", 21.10, 24.05),
             ("I just want to spend a little time with my man", 24.15, 28.00),
             ("we'll grab the rods and the bait", 32.76, 34.70),
             ("we'll do a little fishing, let's make it a day", 38.20, 42.45),
             ("with the blue skies above", 42.60, 44.90),
             ("and the sun on our skin", 45.64, 48.10),
             ("oh sweet darling", 48.45, 51.50),
             ("let's go fishing", 52.40, 53.75),
         ]),
    # Joshua Morin, "On the run" (CC BY-SA 2.5, UltraStar Deluxe's Creative Commons songs): starts
    # from the song's UltraStar karaoke file (#GAP 11250 ms, #BPM 297.5: GAP + beat * 60 / (4 * BPM)),
    # each checked against the separated voice's phrase onsets; ends: the last note's end.
    Real("en_ontherun_real", "en", "ultrastar", "22791e117cc867aa3c2ca006ecab068cf79d3742",
         "Joshua Morin, On the run (CC BY-SA 2.5), from 9 s", (9.0, 53.0), [
             ("so far away from home", 11.25, 13.37),
             ("so far away that I don't know", 13.82, 16.14),
             ("where my home is anymore", 16.80, 18.81),
             ("twenty-one to be someone", 22.04, 24.26),
             ("see the world before it's gone", 24.61, 26.58),
             ("I wish I were back in school", 27.03, 29.65),
             ("on the run", 31.12, 32.07),
             ("down a one way street", 33.79, 35.96),
             ("on the run", 36.36, 37.27),
             ("the road beneath my feet", 38.78, 41.00),
             ("on the run", 41.55, 42.51),
             ("yeah well, I should be seeing you soon", 43.82, 50.93),
         ]),
]


def decode(path: Path, sr: int) -> np.ndarray:
    """Mono float samples of `path` at `sr` (PyAV)."""
    import av

    out = []
    with av.open(str(path)) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=sr)
        for frame in c.decode(audio=0):
            for f in rs.resample(frame):
                out.append(f.to_ndarray().reshape(-1))
        for f in rs.resample(None):
            out.append(f.to_ndarray().reshape(-1))
    return np.concatenate(out).astype(np.float32)


def voice_phrases(x: np.ndarray, sr: int, thr: float = -18.0, gap: float = 0.35, minlen: float = 0.3):
    """Phrases of the separated voice: REPET-SIM (the repeating accompaniment estimated by a 2 s
    nearest-neighbour median filter, a soft mask keeps the rest), energy of 250-3500 Hz smoothed
    over 50 ms, above `thr` dB re its 95th percentile; gaps under `gap` s merged."""
    import librosa

    hop = 220
    S, _ = librosa.magphase(librosa.stft(x, n_fft=2048, hop_length=hop))
    Sf = np.minimum(S, librosa.decompose.nn_filter(S, aggregate=np.median, metric="cosine",
                                                     width=int(librosa.time_to_frames(2, sr=sr, hop_length=hop))))
    V = librosa.util.softmask(S - Sf, 10 * Sf, power=2) * S
    f = librosa.fft_frequencies(sr=sr, n_fft=2048)
    e = 10 * np.log10((V[(f >= 250) & (f <= 3500)] ** 2).sum(0) + 1e-10)
    e = np.convolve(e - np.percentile(e, 95), np.ones(5) / 5, mode="same")
    dt, on, segs = hop / sr, e > thr, []
    i = 0
    while i < len(on):
        if on[i]:
            j = i
            while j < len(on) and on[j]:
                j += 1
            if segs and i * dt - segs[-1][1] < gap:
                segs[-1][1] = j * dt
            else:
                segs.append([i * dt, j * dt])
            i = j
        else:
            i += 1
    return [(a, b) for a, b in segs if b - a >= minlen]


def vad_prob(x: np.ndarray, sr: int) -> np.ndarray:
    """Silero VAD probability per 32 ms (faster-whisper's model) on the 16 kHz signal."""
    import librosa
    from faster_whisper.vad import get_vad_model

    x16 = librosa.resample(x, orig_sr=sr, target_sr=16000).astype(np.float32)
    x16 = np.pad(x16, (0, (-len(x16)) % 512))
    return np.asarray(get_vad_model()(x16), np.float32).reshape(-1)


def check(name: str, x: np.ndarray, lines) -> None:
    """Each line's start against the audio: the nearest onset of a voice phrase and VAD there."""
    phrases = voice_phrases(x, SR)
    vad = vad_prob(x, SR)
    print(f"{name}: voice phrases {', '.join(f'{a:.2f}-{b:.2f}' for a, b in phrases)}")
    for k, (text, start, _) in enumerate(lines):
        near = min((a for a, _ in phrases), key=lambda a: abs(a - start), default=None)
        inside = any(a <= start <= b for a, b in phrases)
        v = vad[int(start / 0.032)] if int(start / 0.032) < len(vad) else float("nan")
        after = vad[int(start / 0.032):int((start + 0.5) / 0.032)].max(initial=0.0)
        where = " inside a phrase" if inside else ""
        print(f"  {k:2d} {start:6.2f}  phrase onset {near:6.2f} ({near - start:+.2f} s){where}"
              f"  VAD {v:.2f} (max {after:.2f} in 0.5 s)  {text}")


def make(r: Real, repos: dict[str, Path], do_check: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "source"
        src.write_bytes(subprocess.run(["git", "-C", str(repos[r.repo]), "cat-file", "-p", r.blob],
                                       check=True, capture_output=True).stdout)
        x = decode(src, SR)
    a, b = r.cut
    x = x[int(a * SR):int(b * SR)]
    fade = int(0.05 * SR)  # no click at the cut
    x[:fade] *= np.linspace(0, 1, fade)
    x[-fade:] *= np.linspace(1, 0, fade)
    x = (0.9 * x / np.max(np.abs(x))).astype(np.float32)
    lines = [(t, round(s - a, 2), round(e - a, 2)) for t, s, e in r.lines]
    if do_check:
        check(r.name, x, lines)
        return
    encode_mp3(HERE / f"{r.name}.mp3", x)
    (HERE / f"{r.name}.txt").write_text("\n".join(t for t, _, _ in lines) + "\n", encoding="utf-8")
    truth = [{"text": t, "start": s, "end": e} for t, s, e in lines]
    meta = {"language": r.lang, "duration": round(b - a, 3), "voice": "real recording", "music": r.source,
            "snr_db": None, "lines": truth}
    write_truth(r.name, meta)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--librosa-data", type=Path, required=True, help="bare git dir of github.com/librosa/data")
    ap.add_argument("--ultrastar", type=Path, required=True, help="bare git dir of github.com/UltraStar-Deluxe/songs")
    ap.add_argument("--check", action="store_true", help="print the evidence for each line start; write nothing")
    args = ap.parse_args()
    repos = {"librosa-data": args.librosa_data, "ultrastar": args.ultrastar}
    for r in REALS:
        if not args.names or r.name in args.names:
            make(r, repos, args.check)
