"""Make the alignment test songs: real instrumental music with spoken or sung lyric lines at
known times.

Music: excerpts of instrumental tracks by the Battle for Wesnoth project (Debian package
wesnoth-1.16-music, GPL-2+; see NOTICE.md beside this script). Voices: espeak-ng (spoken lines,
several languages) and Festival's singing mode (sung English lines, voice kal_diphone from
festvox-kallpc16k). Each song is written as NAME.mp3 (mono, 22.05 kHz, 40 kbit/s), NAME.txt (the
plain lyrics a user would type, including a line that is never sung and `(x2)` markers where
the song says so) and NAME.truth.json (each lyric line's start and end measured from the
synthesized voice itself, `null` for lines that are not sung; for sung lines also each word's
start as Festival placed it).

Needs: apt-get install espeak-ng festival festvox-kallpc16k wesnoth-1.16-music; numpy and av.
Deterministic for a given set of those packages; the committed files are its output.

    python samples/songs/make_songs.py [NAME ...]
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SR = 22050
HERE = Path(__file__).resolve().parent
MUSIC_DIR = Path("/usr/share/games/wesnoth/1.16/data/core/music")
DTD = Path("/usr/share/sgml/festival/Singing.v0_1.dtd")
LOUD = 0.02  # |sample| above this (voice peak-normalised to 0.9) counts as voice for the truth


@dataclass
class Line:
    text: str
    at: float | None  # seconds; None: right after the previous line (back to back, 0.1 s apart)
    sung: bool = True  # False: in the lyrics file but never heard in the song
    score: str = ""  # sung lines: "word:NOTE[,NOTE]:BEATS[,BEATS] ..." (one note/beat per syllable)
    say: str = ""  # what the voice is given when not the text (Chinese: pinyin with tone numbers)
    voice: str = ""  # espeak-ng voice of this line when not the song's (a song in several languages)
    lang: str = ""  # its language when not the song's (written to the truth)


@dataclass
class Song:
    name: str
    lang: str
    voice: str  # espeak-ng voice, or "festival" for singing
    music: str  # track file in MUSIC_DIR
    music_at: float  # where the excerpt starts in the track (s)
    duration: float
    snr_db: float  # voice RMS over music RMS while the voice sounds
    lines: list[Line]
    lyrics: list[str] = field(default_factory=list)  # the lyrics file; empty: the line texts
    bpm: float = 96.0


CHORUS = "hold on tight we are flying through the night"
SUNG_CHORUS = ("shine:E4:1 on:D4:0.5 me:C4:0.5 sil-ver:D4,E4:0.5,0.5 light:G4:1.5")
SONGS = [
    Song("en_spoken", "en", "en-us", "traveling_minstrels.ogg", 30.0, 56.0, 6.0, [
        Line("the violin is playing in the dark forest", 2.0),
        Line("silver rain is falling on the quiet town", None),  # back to back
        Line(CHORUS, 11.0),
        Line("every lamp is burning brighter than before", 15.5),
        Line(CHORUS, 33.0),  # after a long instrumental gap
        Line("a paper boat is sailing down the river", None, sung=False),
        Line("the morning sun will find us on the road", 38.0),
        Line("we keep on walking", 44.0),
        Line("and we never stop", None),  # back to back, short lines
        Line("until the stars come home", 49.5),
    ]),
    Song("en_sung", "en", "festival", "loyalists.ogg", 12.0, 58.0, 4.0, [
        Line("golden lion walks across the snow", 2.0,
             score="gol-den:G3,A3:0.5,0.5 li-on:B3,A3:0.5,0.5 walks:G3:1 a-cross:E3,G3:0.5,0.5 the:A3:0.5 snow:G3:1.5"),
        Line("ships are sailing far away", 7.5,
             score="ships:C4:1 are:B3:0.5 sail-ing:A3,G3:0.5,0.5 far:A3:1 a-way:B3,G3:0.5,1.5"),
        Line("shine on me silver light", 13.0, score=SUNG_CHORUS),
        Line("shine on me silver light", None, score=SUNG_CHORUS),  # back to back (x2)
        Line("the river carries all my dreams", 32.0,  # after a long instrumental gap
             score="the:E3:0.5 ri-ver:G3,A3:0.5,0.5 car-ries:B3,A3:0.5,0.5 all:G3:1 my:A3:0.5 dreams:G3:1.5"),
        Line("shine on me silver light", 38.0, score=SUNG_CHORUS),
        Line("shine on me silver light", None, score=SUNG_CHORUS),
        Line("a crown of thorns upon the hill", None, sung=False),
        Line("and the night is over now", 49.0,
             score="and:G3:0.5 the:A3:0.5 night:B3:1 is:A3:0.5 o-ver:G3,E3:0.5,0.5 now:G3:2"),
    ], lyrics=["golden lion walks across the snow", "ships are sailing far away",
               "shine on me silver light (x2)", "the river carries all my dreams",
               "shine on me silver light ×2", "a crown of thorns upon the hill", "and the night is over now"]),
    Song("de_spoken", "de", "de", "legends_of_the_north.ogg", 20.0, 46.0, 6.0, [
        Line("der Wind singt leise über dem Meer", 2.5),
        Line("die Sterne leuchten in der kalten Nacht", 7.0),
        Line("wir gehen zusammen durch den dunklen Wald", None),  # back to back
        Line("ein Vogel fliegt hinauf zum Licht", 17.0),
        Line("die Glocken läuten in der Stadt", None, sung=False),
        Line("der Wind singt leise über dem Meer", 30.0),  # chorus after a gap
        Line("und morgen kommt ein neuer Tag", 36.5),
        Line("wir sehen uns am alten Fluss", 41.0),
    ]),
    Song("fr_spoken", "fr", "fr", "elvish-theme.ogg", 25.0, 44.0, 6.0, [
        Line("la lune brille sur la mer tranquille", 2.0),
        Line("les enfants chantent dans le jardin", 7.0),
        Line("le vent emporte les feuilles d'automne", None),  # back to back
        Line("nous marchons ensemble vers la lumière", 16.0),
        Line("la lune brille sur la mer tranquille", 28.0),  # chorus after a gap
        Line("un oiseau danse au-dessus des nuages", 33.5),
        Line("demain sera un jour nouveau", 38.5),
    ]),
    # espeak-ng's cmn dictionary lacks most characters (it reads their pinyin digits in English):
    # the voice is given pinyin with tone numbers
    Song("zh_spoken", "zh", "cmn-latn-pinyin", "wanderer.ogg", 15.0, 42.0, 6.0, [
        Line("月亮代表我的心", 2.0, say="yue4 liang4 dai4 biao3 wo3 de5 xin1"),
        Line("春天的花开满了山坡", 6.0, say="chun1 tian1 de5 hua1 kai1 man3 le5 shan1 po1"),
        Line("小河静静地流向远方", None, say="xiao3 he2 jing4 jing4 de5 liu2 xiang4 yuan3 fang1"),  # back to back
        Line("我们一起走过风雨", 15.0, say="wo3 men5 yi4 qi3 zou3 guo4 feng1 yu3"),
        Line("天上的星星不说话", None, sung=False),
        Line("月亮代表我的心", 27.0, say="yue4 liang4 dai4 biao3 wo3 de5 xin1"),  # chorus after a gap
        Line("明天太阳还会升起", 32.0, say="ming2 tian1 tai4 yang2 hai2 hui4 sheng1 qi3"),
        Line("朋友们在路上唱歌", 37.0, say="peng2 you5 men5 zai4 lu4 shang4 chang4 ge1"),
    ]),
    Song("es_spoken", "es", "es", "journeys_end.ogg", 30.0, 42.0, 6.0, [
        Line("el sol se esconde detrás de las montañas", 2.0),
        Line("las olas cantan una canción antigua", 7.0),
        Line("caminamos juntos bajo la lluvia", None),  # back to back
        Line("la noche llega con su manto de estrellas", 16.0),
        Line("el sol se esconde detrás de las montañas", 28.0),  # chorus after a gap
        Line("mañana será un día nuevo", 34.0),
        Line("la música nunca se termina", 38.0),
    ]),
    # a song in four languages (the voice changes with the line's language; Chinese through
    # pinyin as in zh_spoken), two of them back to back across a change of language
    Song("mix_spoken", "mixed", "de", "knolls.ogg", 10.0, 36.0, 6.0, [
        Line("der Mond scheint hell über dem Wasser", 2.0, voice="de", lang="de"),
        Line("les étoiles dansent dans la nuit", 6.5, voice="fr", lang="fr"),
        Line("我们一起唱歌到天亮", None, say="wo3 men5 yi4 qi3 chang4 ge1 dao4 tian1 liang4",  # back to back
             voice="cmn-latn-pinyin", lang="zh"),
        Line("el viento canta una canción de amor", 14.5, voice="es", lang="es"),
        Line("der Mond scheint hell über dem Wasser", 22.0, voice="de", lang="de"),  # chorus after a gap
        Line("明天我们还会再见", 26.5, say="ming2 tian1 wo3 men5 hai2 hui4 zai4 jian4", voice="cmn-latn-pinyin",
             lang="zh"),
        Line("y la noche se termina", 30.5, voice="es", lang="es"),
    ]),
]


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768
    return np.interp(np.arange(int(len(x) * SR / rate)) / SR, np.arange(len(x)) / rate, x)


def speak(text: str, voice: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)
        return read_wav(wav)


# Festival scheme: synthesize the SINGING file and print each word's start and end from the
# utterance itself (the score's beats are not followed exactly, so the truth is read back)
WORD_TIMES = """
(define (musivid_words utt)
  (mapcar (lambda (w) (format t "WORD %s %f %f\\n" (item.name w) (item.feat w "word_start")
                               (item.feat w "word_end")))
          (utt.relation.items utt 'Word))
  (utt.save.wave utt "out.wav")
  utt)
(set! tts_hooks (list utt.synth musivid_words))
(tts_file "song.xml" 'singing)
"""


def sing(score: str, bpm: float) -> tuple[np.ndarray, list[tuple[str, float]]]:
    """Festival's singing mode on one line; returns the samples and each word's start (s)."""
    parts = []
    for item in score.split():
        word, notes, beats = item.split(":")
        parts.append(f'<PITCH NOTE="{notes}"><DURATION BEATS="{beats}">{word.replace("-", "")}</DURATION></PITCH>')
    xml = ('<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" '
           f'"Singing.v0_1.dtd" []>\n<SINGING BPM="{bpm:g}">\n' + "\n".join(parts) + "\n</SINGING>\n")
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "Singing.v0_1.dtd").write_bytes(DTD.read_bytes())
        (Path(d) / "song.xml").write_text(xml)
        (Path(d) / "words.scm").write_text(WORD_TIMES)
        r = subprocess.run(["festival", "-b", "words.scm"], check=True, cwd=d, capture_output=True, text=True)
        words = [(w, float(a)) for _, w, a, _ in (ln.split() for ln in r.stdout.splitlines()
                                                  if ln.startswith("WORD "))]
        return read_wav(Path(d) / "out.wav"), words


def music(track: str, at: float, duration: float) -> np.ndarray:
    import av

    with av.open(str(MUSIC_DIR / track)) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=SR)
        chunks = []
        for frame in c.decode(audio=0):
            for f in rs.resample(frame):
                chunks.append(f.to_ndarray()[0])
        x = np.concatenate(chunks).astype(np.float64)
    x = x[int(at * SR): int((at + duration) * SR)]
    fade = np.minimum(1.0, np.minimum(np.arange(len(x)), len(x) - 1 - np.arange(len(x))) / (1.5 * SR))
    return x * fade


def encode_mp3(path: Path, x: np.ndarray) -> None:
    import av

    with av.open(str(path), "w") as out:
        st = out.add_stream("libmp3lame", rate=SR)
        st.layout = "mono"
        st.bit_rate = 40000
        for lo in range(0, len(x), 4608):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, lo:lo + 4608], dtype=np.float32),
                                            format="fltp", layout="mono")
            fr.sample_rate = SR
            for p in st.encode(fr):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)


def make(song: Song) -> None:
    n = int(song.duration * SR)
    voice = np.zeros(n)
    truth, prev_end = [], 0.0
    for ln in song.lines:
        if not ln.sung:
            truth.append({"text": ln.text, "start": None, "end": None})
            continue
        words = None
        if song.voice == "festival":
            s, words = sing(ln.score, song.bpm)
        else:
            s = speak(ln.say or ln.text, ln.voice or song.voice)
        s = 0.9 * s / np.max(np.abs(s))
        loud = np.flatnonzero(np.abs(s) > LOUD)
        # back to back: the voice starts 0.1 s after the previous line's voice ends
        at = ln.at if ln.at is not None else prev_end + 0.1 - loud[0] / SR
        i = int(round(at * SR))
        if i + len(s) > n:
            raise SystemExit(f"{song.name}: {ln.text!r} runs past the end of the song")
        voice[i:i + len(s)] += s
        start, end = (i + loud[0]) / SR, (i + loud[-1]) / SR
        prev_end = end
        row = {"text": ln.text, "start": round(start, 3), "end": round(end, 3)}
        if ln.lang:
            row["language"] = ln.lang
        if words is not None:  # Festival's word starts; the first is the voice's measured start
            row["words"] = [[w, round(start if k == 0 else i / SR + t, 3)] for k, (w, t) in enumerate(words)]
        truth.append(row)
    m = music(song.music, song.music_at, song.duration)
    voiced = np.abs(voice) > LOUD
    v_rms = np.sqrt(np.mean(voice[voiced] ** 2))
    m_rms = np.sqrt(np.mean(m[voiced] ** 2))
    mix = voice + m * (v_rms / m_rms) * 10 ** (-song.snr_db / 20)
    mix = mix / np.max(np.abs(mix)) * 0.9
    encode_mp3(HERE / f"{song.name}.mp3", mix)
    lyrics = song.lyrics or [ln.text for ln in song.lines]
    (HERE / f"{song.name}.txt").write_text("\n".join(lyrics) + "\n", encoding="utf-8")
    meta = {"language": song.lang, "duration": song.duration, "voice": song.voice,
            "music": f"Battle for Wesnoth, {song.music} from {song.music_at:g} s (GPL-2+)",
            "snr_db": song.snr_db, "lines": truth}
    write_truth(song.name, meta)


def write_truth(name: str, meta: dict) -> None:
    """NAME.truth.json: the song's facts, one line per lyric line (readable diffs)."""
    text = json.dumps(meta, ensure_ascii=False, indent=1)
    rows = ",\n  ".join(json.dumps(r, ensure_ascii=False) for r in meta["lines"])
    text = text[:text.index('"lines": [') + 10] + "\n  " + rows + "\n ]\n}"
    (HERE / f"{name}.truth.json").write_text(text + "\n", encoding="utf-8")
    print(f"{name}: {len(meta['lines'])} lines, {(HERE / f'{name}.mp3').stat().st_size // 1024} KB")


if __name__ == "__main__":
    wanted = set(sys.argv[1:])
    for song in SONGS:
        if not wanted or song.name in wanted:
            make(song)
