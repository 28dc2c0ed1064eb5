"""Make the bundled demo song from license-clean material: numpy-synthesized music (drums, bass,
pads at 100 BPM) plus espeak-ng speech of the lyric lines at known times.

Writes demo.mp3, demo.txt (plain lyrics), demo.lrc (timed lyrics) and demo.truth.json (each line's
measured speech start and the beat times) beside this script. Needs espeak-ng (apt-get install
espeak-ng), numpy and av. Deterministic: the committed files are its output.

    python samples/make_sample.py
"""
from __future__ import annotations

import json
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

SR = 44100
BPM = 100.0
BEAT = 60.0 / BPM
FIRST_BEAT = 0.6
DURATION = 31.2
LINES = [  # (text, beat index at which the line is sung)
    ("a red fox runs through the snow", 2),
    ("waves crash on a golden beach", 8),
    ("the city lights burn through the night", 14),
    ("a lighthouse stands against the storm", 20),
    ("mountains rise above the clouds", 26),
    ("waves crash on a golden beach", 32),  # a repeated chorus line
    ("fireworks bloom in the summer sky", 38),
    ("the old train rolls into the station", 44),
]
HERE = Path(__file__).resolve().parent


def speak(text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "s.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "145", "-a", "180", "-w", str(wav), text], check=True)
        with wave.open(str(wav)) as w:
            rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768
    t_new = np.arange(int(len(x) * SR / rate)) / SR
    return np.interp(t_new, np.arange(len(x)) / rate, x)


def music(n: int) -> np.ndarray:
    t = np.arange(n) / SR
    out = np.zeros(n)
    rng = np.random.default_rng(7)
    beats = FIRST_BEAT + BEAT * np.arange(int((DURATION - FIRST_BEAT) / BEAT) + 1)
    kick_t = np.arange(int(0.25 * SR)) / SR
    kick = np.sin(2 * np.pi * (50 + 90 * np.exp(-kick_t * 25)) * kick_t) * np.exp(-kick_t * 12)
    hat_n = int(0.05 * SR)
    hat = rng.standard_normal(hat_n) * np.exp(-np.arange(hat_n) / (0.008 * SR))
    for b in beats:
        i = int(b * SR)
        seg = kick[: max(0, min(len(kick), n - i))]
        out[i : i + len(seg)] += 0.55 * seg
        j = int((b + BEAT / 2) * SR)
        seg = hat[: max(0, min(hat_n, n - j))]
        out[j : j + len(seg)] += 0.12 * seg
    chords = [(220.0, 277.18, 329.63), (196.0, 246.94, 293.66), (174.61, 220.0, 261.63), (196.0, 246.94, 329.63)]
    bar = 4 * BEAT
    for k in range(int(DURATION / bar) + 1):
        lo, hi = int(k * bar * SR), min(n, int((k + 1) * bar * SR))
        if lo >= n:
            break
        tt = t[lo:hi] - k * bar
        env = np.minimum(1, tt / 0.3) * np.minimum(1, (bar - tt) / 0.3)
        ch = chords[k % len(chords)]
        out[lo:hi] += 0.05 * env * sum(np.sin(2 * np.pi * f * t[lo:hi]) for f in ch)
        out[lo:hi] += 0.12 * env * np.sin(2 * np.pi * ch[0] / 2 * t[lo:hi])  # bass
    return out


def main() -> None:
    import av

    n = int(DURATION * SR)
    voice = np.zeros(n)
    truth = []
    for text, beat in LINES:
        s = speak(text)
        at = FIRST_BEAT + beat * BEAT
        i = int(at * SR)
        voice[i : i + len(s)] += s[: n - i]
        loud = np.flatnonzero(np.abs(s) > 0.02)  # measured start of the speech itself
        truth.append({"text": text, "start": round(at + loud[0] / SR, 3), "end": round(at + loud[-1] / SR, 3)})
    mix = music(n) + 0.9 * voice
    mix = (mix / np.max(np.abs(mix)) * 0.89).astype(np.float32)
    stereo = np.stack([mix, mix])
    out = av.open(str(HERE / "demo.mp3"), "w")
    st = out.add_stream("libmp3lame", rate=SR)
    st.layout = "stereo"
    st.bit_rate = 128000
    for lo in range(0, n, 1152 * 8):
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, lo : lo + 1152 * 8]), format="fltp", layout="stereo")
        fr.sample_rate = SR
        for p in st.encode(fr):
            out.mux(p)
    for p in st.encode(None):
        out.mux(p)
    out.close()
    (HERE / "demo.txt").write_text("\n".join(t for t, _ in LINES) + "\n")
    lrc = ["[ti:musivid demo]", "[ar:musivid]"]
    for (text, _), tr in zip(LINES, truth):
        m, s = divmod(tr["start"], 60)
        lrc.append(f"[{int(m):02d}:{s:05.2f}]{text}")
    (HERE / "demo.lrc").write_text("\n".join(lrc) + "\n")
    beats = [round(FIRST_BEAT + BEAT * k, 4) for k in range(int((DURATION - FIRST_BEAT) / BEAT) + 1)]
    (HERE / "demo.truth.json").write_text(json.dumps({"bpm": BPM, "duration": DURATION, "lines": truth,
                                                      "beats": beats}, indent=1) + "\n")


if __name__ == "__main__":
    main()
