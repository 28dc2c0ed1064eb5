"""Creative direction (musivid/images/targets.py): what the optimizer's objective is handed for a
line's style, own image prompt, texts to avoid, image prompts and classes, checked on the
objective's inputs (tiny random models), and the lyric syntax that carries a line's prompt."""
import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from musivid.config import DirectionConfig, OptimizeConfig
from musivid.errors import InputError
from musivid.images import optimize as opt_mod
from musivid.images import targets as T
from musivid.rng import seed_for
from musivid.song.lyrics import lrc_with_prompts, parse_lrc, parse_plain

CFG = OptimizeConfig(steps=2, cutouts=2)


def run_capturing(tiny_models, monkeypatch, targets):
    """optimize() on `targets`; returns the result and the inputs of the objective's first call."""
    clip, gen = tiny_models
    seen = []
    real = opt_mod.Objective.__call__

    def spy(self, z, cls, text_emb, seeds, step, weights=None, class_mask=None):
        seen.append({"cls": cls.detach().clone(), "emb": text_emb, "weights": weights, "mask": class_mask})
        return real(self, z, cls, text_emb, seeds, step, weights, class_mask)

    monkeypatch.setattr(opt_mod.Objective, "__call__", spy)
    keys = [t.key if isinstance(t, T.Target) else t for t in targets]
    res = opt_mod.optimize(gen, clip, targets, [seed_for(0, k, 0) for k in keys], CFG)
    return res, seen[0]


def enc(clip, text):
    return clip.encode_text([text])[0]


def test_a_plain_line_is_handed_over_as_before(tiny_models, monkeypatch):
    clip, _ = tiny_models
    t = T.line_target("a red fox", None, DirectionConfig())
    assert t.plain and t.key == "a red fox"  # the key of projects made before directions existed
    _, seen = run_capturing(tiny_models, monkeypatch, [t])
    assert seen["weights"] is None and seen["mask"] is None
    assert torch.equal(seen["emb"][0], enc(clip, "a red fox"))


def test_style_is_a_second_target_with_its_weight(tiny_models, monkeypatch):
    clip, _ = tiny_models
    d = DirectionConfig(style="oil painting", style_weight=0.3)
    lines = [T.line_target(w, None, d) for w in ("a red fox", "a quiet lake")]
    _, seen = run_capturing(tiny_models, monkeypatch, lines)
    assert seen["emb"].shape[:2] == (2, 2)
    for i, words in enumerate(("a red fox", "a quiet lake")):
        assert torch.equal(seen["emb"][i, 0], enc(clip, words))
        assert torch.equal(seen["emb"][i, 1], enc(clip, "oil painting"))
    assert seen["weights"].tolist() == [[1.0, pytest.approx(0.3)]] * 2
    # the style keys the latents (and so their seeds): a new style re-optimizes every line
    assert lines[0].key != T.line_target("a red fox", None, DirectionConfig(style="watercolor")).key
    assert lines[0].key != T.line_target("a red fox", None, dataclasses.replace(d, style_weight=0.5)).key


def test_a_line_prompt_replaces_the_words_and_its_options_apply(tiny_models, monkeypatch):
    clip, _ = tiny_models
    d = DirectionConfig(avoid="people", avoid_weight=0.4)
    t = T.line_target("fire in the sky", "a volcano at night, oil painting [classes: volcano, seashore] "
                      "[avoid: smoke]", d, 3)
    assert t.prompt == "a volcano at night, oil painting"
    assert t.avoid == ("people", "smoke") and t.classes == (978, 980)
    _, seen = run_capturing(tiny_models, monkeypatch, [t])
    emb, w = seen["emb"][0], seen["weights"][0]
    assert torch.equal(emb[0], enc(clip, "a volcano at night, oil painting"))
    assert not torch.allclose(emb[0], enc(clip, "fire in the sky"))
    assert torch.equal(emb[1], enc(clip, "people")) and torch.equal(emb[2], enc(clip, "smoke"))
    assert w.tolist() == [1.0, pytest.approx(-0.4), pytest.approx(-0.4)]
    assert T.Target.from_key(t.key) == t  # what a worker that only has the key optimizes


def test_a_negative_target_is_pushed_away_from():
    """The weighted loss is the sum of each target's own distance times its weight; the score
    counts the positive targets only."""
    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(2, 3, 8, generator=g), dim=-1)
    a, b = (torch.nn.functional.normalize(torch.randn(2, 8, generator=g), dim=-1) for _ in range(2))
    loss_a, score_a = opt_mod.clip_loss(img, a)
    loss_b, _ = opt_mod.clip_loss(img, b)
    loss, score = opt_mod.clip_loss(img, torch.stack([a, b], 1), torch.tensor([[1.0, -0.5]] * 2))
    assert torch.allclose(loss, loss_a - 0.5 * loss_b) and torch.allclose(score, score_a)


def test_classes_start_and_confine_each_class_vector(tiny_models, monkeypatch):
    restricted = T.line_target("the sea", "[classes: seashore, volcano]", DirectionConfig())
    free = T.line_target("a red fox", None, DirectionConfig(style="ink"))
    res, seen = run_capturing(tiny_models, monkeypatch, [restricted, free])
    mask = seen["mask"]
    assert mask[0].nonzero().flatten().tolist() == [978, 980] and bool((mask[1] == 1).all())
    start = seen["cls"]  # the logits the first step starts from
    assert bool((start[0, [978, 980]] > -1).all()) and bool((start[0].sum() - start[0, [978, 980]].sum()) < -9e6)
    assert bool((start[1] < -2).all())  # a line without classes starts as before (big-sleep's init)
    others = torch.ones(1000, dtype=torch.bool)
    others[[978, 980]] = False
    assert bool((res.classes[0, others] == 0).all()) and bool((res.classes[0, [978, 980]] > 0).all())
    # the video's classes apply to every line without its own
    assert T.line_target("x", None, DirectionConfig(classes="volcano")).classes == (980,)


def test_class_names_are_checked_with_a_suggestion():
    assert len(T.class_names()) == 1000 and T.class_names()[978] == "seashore"
    assert T.class_indices("Seashore, volcano") == (978, 980)
    assert T.class_indices("crane") == (134, 517)  # a name two classes share names both
    with pytest.raises(InputError) as e:
        T.class_indices("seashor")
    assert str(e.value) == "--classes 'seashor': not an ImageNet class name: did you mean 'seashore'?"
    with pytest.raises(InputError, match="line 4: \\[classes:\\] 'voclano'.*did you mean 'volcano'"):
        T.line_target("x", "lava [classes: voclano]", DirectionConfig(), 4)


def png(path, size=(48, 32), seed=0):
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def test_an_image_prompt_joins_the_targets_by_its_digest(tiny_models, monkeypatch, tmp_path):
    from PIL import Image

    clip, _ = tiny_models
    f = png(tmp_path / "look.png")
    d = T.check_direction(DirectionConfig(images=((str(f), "", 0.7),)))
    (path, digest, weight), = d.images
    assert digest == hashlib.sha256(f.read_bytes()).hexdigest() and weight == 0.7
    t = T.line_target("a red fox", None, d)
    assert digest in t.key and str(f) not in t.key  # by content, not by place
    _, seen = run_capturing(tiny_models, monkeypatch, [t])
    pixels = T.preprocess(Image.open(f).convert("RGB"), clip.image_size)
    assert pixels.shape == (1, 3, clip.image_size, clip.image_size)  # shorter side resized, centre cropped
    assert torch.allclose(seen["emb"][0, 1], clip.encode_image(pixels)[0], atol=1e-6)
    assert seen["weights"][0].tolist() == [1.0, pytest.approx(0.7)]
    png(f, seed=1)  # the file changed: another digest, another key (the lines are optimized again)
    assert T.check_direction(DirectionConfig(images=((str(f), "", 0.7),))).images[0][1] != digest


@pytest.mark.parametrize("make, problem", [
    (lambda p: p, "no such file"),
    (lambda p: p.mkdir() or p, "is a directory"),
    (lambda p: (p.write_text("not an image"), p)[1], "not an image"),
    (lambda p: (p.write_bytes(png(p).read_bytes()[:60]), p)[1], "damaged image"),
])
def test_a_bad_image_prompt_is_one_line_naming_the_file(tmp_path, make, problem):
    f = make(tmp_path / "look.png")
    with pytest.raises(InputError) as e:
        T.check_direction(DirectionConfig(images=((str(f), "", 1.0),)))
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg and problem in msg and ": " in msg.split(problem, 1)[1]


def test_a_lines_own_image_prompt_joins_that_line_only(tiny_models, monkeypatch, tmp_path):
    from PIL import Image

    clip, _ = tiny_models
    (tmp_path / "covers").mkdir()
    look, own = png(tmp_path / "look.png"), png(tmp_path / "covers" / "volcano.png", seed=2)
    d = T.check_direction(DirectionConfig(images=((str(look), "", 0.7),)))
    stored = T.resolve_line_images("a volcano at night [image: covers/volcano.png:0.5]", tmp_path, "line 1")
    digest = hashlib.sha256(own.read_bytes()).hexdigest()
    assert stored == f"a volcano at night [image: {own}:0.5 sha256={digest}]"  # as the project records it
    t, other = T.line_target("fire", stored, d, 1), T.line_target("calm sea", None, d, 2)
    assert t.prompt == "a volcano at night" and [im.weight for im in t.images] == [0.7, 0.5]
    assert digest in t.key and str(own) not in t.key and digest not in other.key
    _, seen = run_capturing(tiny_models, monkeypatch, [t, other])

    def embedding(f):
        return clip.encode_image(T.preprocess(Image.open(f).convert("RGB"), clip.image_size))[0]

    emb, w = seen["emb"], seen["weights"]
    assert torch.allclose(emb[0, 1], embedding(look), atol=1e-6)
    assert torch.allclose(emb[0, 2], embedding(own), atol=1e-6)  # the line's own, with its weight
    assert w[0].tolist() == [1.0, pytest.approx(0.7), pytest.approx(0.5)]
    assert torch.allclose(emb[1, 1], embedding(look), atol=1e-6) and w[1].tolist() == [1.0, pytest.approx(0.7), 0.0]
    png(own, seed=3)  # the file changed: the recorded digest keys the line until the prompt is set again
    assert T.line_target("fire", stored, d, 1).key == t.key
    again = T.resolve_line_images(stored, tmp_path, "line 1")
    assert T.line_target("fire", again, d, 1).key != t.key and T.line_target("calm sea", None, d, 2) == other


def test_a_bad_per_line_image_is_refused_in_one_line_naming_the_line(tmp_path, monkeypatch):
    from musivid.session import lyric_prompts
    from musivid.song.lyrics import Lyrics
    from musivid.song.segments import Segment

    png(tmp_path / "look.png")
    monkeypatch.chdir(tmp_path.parent)  # relative to the lyrics' folder, not to the current one
    text = "calm sea | a harbour [image: look.png]\nfire in the sky | a volcano [image: gone.png:0.5]"
    lyr = Lyrics(tuple(parse_plain(text)), False, tmp_path / "song.txt")
    with pytest.raises(InputError) as e:
        T.check_direction(DirectionConfig(), lyr)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{tmp_path / 'song.txt'}: line 2: [image:] ")
    assert str(tmp_path / "gone.png") in msg and "no such file: check the path" in msg
    png(tmp_path / "gone.png", seed=1)
    T.check_direction(DirectionConfig(), lyr)
    prompts = lyric_prompts(lyr, [Segment(0, "calm sea", 0.0, 1.0), Segment(1, "fire in the sky", 1.0, 2.0)])
    assert prompts[0].startswith(f"a harbour [image: {tmp_path / 'look.png'}:1 sha256=")
    (tmp_path / "look.png").write_text("not an image")
    with pytest.raises(InputError, match=r"^line 3: \[image:\] .*look.png: not an image .*: give a .png"):
        T.resolve_line_images("x [image: look.png]", tmp_path, "line 3")


def test_the_prompt_after_a_spaced_bar_is_not_part_of_the_words():
    lines = parse_plain("fire in the sky | a volcano at night, oil painting\nrock|paper scissors\nrain (x2) | storm")
    assert [(ln.text, ln.prompt) for ln in lines] == [
        ("fire in the sky", "a volcano at night, oil painting"), ("rock|paper scissors", None),
        ("rain", "storm"), ("rain", "storm")]
    lrc, _ = parse_lrc("[00:01.00]<00:01.00>fire <00:01.50>in the sky | a volcano [avoid: smoke]\n[00:03.00]calm")
    assert [(ln.text, ln.prompt) for ln in lrc] == [("fire in the sky", "a volcano [avoid: smoke]"), ("calm", None)]
    assert [w.text for w in lrc[0].words] == ["fire", "in the sky"]  # the words only were timed
    written = ("[re:musivid align]\n[00:01.00]<00:01.00>fire <00:01.50>in the sky<00:02.00>\n[00:02.00]\n"
               "[00:03.00]calm\n")
    back = parse_lrc(lrc_with_prompts(written, ["a volcano", None]))[0]
    assert [(ln.text, ln.prompt) for ln in back] == [("fire in the sky", "a volcano"), ("calm", None)]


def test_the_directed_step_still_traces_into_one_graph(tiny_models):
    """Weights and a class mask are tensors like the others: the compiled step (CUDA) stays one graph."""
    import torch._dynamo

    clip, gen = tiny_models
    cfg = OptimizeConfig(steps=1, cutouts=2)
    ts = [T.line_target("a red fox", "[classes: red fox]", DirectionConfig(style="ink", avoid="people")),
          T.line_target("a quiet lake", None, DirectionConfig(style="ink"))]
    tt = T.target_tensors(clip, ts, gen.num_classes, opt_mod.text_embeddings)
    st = opt_mod.init_state([1, 2], gen.z_dim, gen.num_classes, cfg, gen.n_z_rows)
    torch._dynamo.reset()
    info = torch._dynamo.explain(opt_mod.Objective(gen, clip, cfg))(st.z, st.cls, tt.emb, st.seeds, torch.tensor(0),
                                                                      tt.weights, tt.class_mask)
    torch._dynamo.reset()
    assert info.graph_break_count == 0 and info.graph_count == 1, info.break_reasons


def test_the_lyrics_prompts_follow_their_lines_when_alignment_leaves_one_out():
    from musivid.session import lyric_prompts
    from musivid.song.lyrics import Lyrics
    from musivid.song.segments import Segment

    lyr = Lyrics(tuple(parse_plain("calm sea | a harbour at dawn\nnot sung\nfire in the sky | a volcano")), False, None)
    segs = [Segment(0, "calm sea", 0.0, 1.0), Segment(1, "fire in the sky", 1.0, 2.0)]
    assert lyric_prompts(lyr, segs) == ["a harbour at dawn", "a volcano"]
    assert lyric_prompts(None, segs) == []  # transcribed: no prompts


def test_the_direction_and_line_prompts_enter_the_settings_digest():
    from musivid.config import RunSettings
    from musivid.project.provenance import settings_digest

    plain = RunSettings()
    styled = dataclasses.replace(plain, direction=DirectionConfig(style="ink"))
    look = dataclasses.replace(plain, direction=DirectionConfig(images=(("/a/look.png", "ab" * 32, 1.0),)))
    moved = dataclasses.replace(plain, direction=DirectionConfig(images=(("/b/look.png", "ab" * 32, 1.0),)))
    assert len({settings_digest(plain), settings_digest(styled), settings_digest(look)}) == 3
    assert settings_digest(look) == settings_digest(moved)  # the image by its content, not its place
    assert settings_digest(plain, [None, None]) == settings_digest(plain)
    assert settings_digest(plain, [None, "a volcano"]) != settings_digest(plain)
