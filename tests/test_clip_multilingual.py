"""The multilingual CLIP for non-English lyrics: chosen from the lyrics' language, built from the
real model's classes (open_clip CustomTextCLIP + an XLM-RoBERTa HFTextEncoder + an XLM-RoBERTa
SentencePiece tokenizer), loaded through the registry path offline, and used by --untrained."""
import json

import numpy as np
import pytest
import torch

from conftest import musivid, write_audio
from musivid.config import DEFAULT_CLIP, MULTILINGUAL_CLIP, ModelConfig
from musivid.images.models import clip as clip_mod
from musivid.images.models.load import choose_clip

clip_mod.import_open_clip()  # the torchvision shim before open_clip/transformers import torchvision
pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")

CORPUS = ["Über den Wolken muss die Freiheit wohl grenzenlos sein", "où es-tu mon cœur", "月亮代表我的心",
          "the quick brown fox jumps over the lazy dog", "la luna brilla en el mar"]
TINY_ARCH = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16,
                                             "patch_size": 8},
             "text_cfg": {"hf_model_name": "xlm-roberta-base", "hf_tokenizer_name": "xlm-roberta-base",
                          "hf_pooler_type": "mean_pooler"}}


@pytest.mark.parametrize("texts,want,why", [
    (["Über den Wolken muss die Freiheit wohl grenzenlos sein", "und ich bin nicht allein"], MULTILINGUAL_CLIP,
     "German (de)"),
    (["月亮代表我的心"], MULTILINGUAL_CLIP, "Chinese (zh)"),
    (["The violin is playing in the dark forest", "and I am waiting for you"], DEFAULT_CLIP, "English"),
    (["la la la"], DEFAULT_CLIP, "unclear"),
    (["The violin is playing in the dark forest", "and I am waiting for you", "la la la", "月亮代表我的心"],
     MULTILINGUAL_CLIP, "line 4 is Chinese (zh)"),
    (["der Wind singt leise über dem Meer", "les étoiles dansent dans la nuit"], MULTILINGUAL_CLIP,
     "line 1 is German (de)"),
])
def test_clip_is_chosen_by_the_lyrics_language(texts, want, why):
    choice = choose_clip(ModelConfig(), texts)
    cfg, msg = choice.models, choice.reason
    assert cfg.clip == want and why in msg and "--clip" in msg
    assert choose_clip(ModelConfig(clip="ViT-B-16/openai"), texts).models.clip == "ViT-B-16/openai"  # --clip wins
    assert choose_clip(ModelConfig(clip_path="/w.pt"), texts).models.clip == DEFAULT_CLIP  # own file: its arch
    assert choose_clip(ModelConfig(), None).models.clip == "auto"  # transcription still to come


def test_tiny_multilingual_clip_has_the_real_models_classes(tmp_path):
    """A tokenizer trained here in well under a second, and a random tiny model of the classes
    open_clip builds for xlm-roberta-base-ViT-B-32: CustomTextCLIP, HFTextEncoder(XLMRobertaModel),
    mean pooling, an MLP projection; the tokenizer is XLM-RoBERTa's (<s> ... </s>, pad 1)."""
    from open_clip.hf_model import HFTextEncoder, MeanPooler
    from open_clip.model import CustomTextCLIP
    from transformers import XLMRobertaModel

    spm = clip_mod.train_tiny_tokenizer(tmp_path / "tok", CORPUS)
    assert spm.is_file()
    d = clip_mod.write_hf_dir(tmp_path / "hf", None, spm)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(d))
    assert type(tok).__name__.startswith("XLMRobertaTokenizer")
    clip_mod.write_hf_dir(d, dict(clip_mod.TINY_XLMR_CFG, vocab_size=len(tok)))
    real = clip_mod.import_open_clip().get_model_config("xlm-roberta-base-ViT-B-32")
    assert real["text_cfg"]["hf_pooler_type"] == TINY_ARCH["text_cfg"]["hf_pooler_type"]
    model, tokenizer = clip_mod.build_hf_clip(TINY_ARCH, d)
    assert type(model) is CustomTextCLIP and type(model.text) is HFTextEncoder
    assert type(model.text.transformer) is XLMRobertaModel and isinstance(model.text.pooler, MeanPooler)
    ids = tokenizer(["月亮代表我的心", "Über den Wolken"])  # (2, 77)
    assert ids.shape == (2, 77) and ids[0, 0] == 0 and (ids[0] == 2).sum() == 1 and ids[0, -1] == 1
    assert 3 not in ids[0, 1:8].tolist()  # every character known: no <unk>
    emb = model.encode_text(ids)
    assert emb.shape == (2, 32) and torch.isfinite(emb).all()


def test_multilingual_entry_loads_offline_from_the_cache_with_strict_keys(tmp_path, monkeypatch):
    """The registry path of the multilingual CLIP (weights + tokenizer files from the verified
    cache, the text tower's config written locally, strict loading, the stale position_ids buffer
    dropped) with a tiny architecture standing in for the full one: the loaded model computes the
    same embeddings as the one saved."""
    from safetensors.torch import save_file

    import musivid.images.models.load as load_mod
    from musivid.files import sha256_file
    from musivid.images.models.registry import REGISTRY, ModelEntry, WeightFile

    open_clip = clip_mod.import_open_clip()
    cfg_dir = tmp_path / "cfgs"
    cfg_dir.mkdir()
    (cfg_dir / "musivid-test-xlmr.json").write_text(json.dumps(TINY_ARCH))
    open_clip.add_model_config(cfg_dir)
    cache = tmp_path / "cache"
    spm = clip_mod.train_tiny_tokenizer(cache, CORPUS)
    src = clip_mod.write_hf_dir(tmp_path / "src", None, spm)
    from transformers import AutoTokenizer

    tiny_cfg = dict(clip_mod.TINY_XLMR_CFG, vocab_size=len(AutoTokenizer.from_pretrained(str(src))))
    monkeypatch.setattr(clip_mod, "XLMR_BASE_CFG", tiny_cfg)  # the full config, shrunk
    clip_mod.write_hf_dir(src, tiny_cfg)
    torch.manual_seed(1)
    ref, tok = clip_mod.build_hf_clip(TINY_ARCH, src)
    sd = {k: v.contiguous() for k, v in ref.state_dict().items()}
    sd["text.transformer.embeddings.position_ids"] = torch.arange(80)[None]  # as older checkpoints have it
    save_file(sd, str(cache / "w.safetensors"))
    entry = ModelEntry("test-xlmr/tiny", "clip", "musivid-test-xlmr",
                       (WeightFile("w.safetensors", ("http://127.0.0.1:9/none",), sha256_file(cache / "w.safetensors")),
                        WeightFile(spm.name, ("http://127.0.0.1:9/none",), sha256_file(spm))),
                       "test", "test", requires=("transformers", "sentencepiece"), quick_gelu=False)
    monkeypatch.setitem(REGISTRY, entry.name, entry)
    clip = load_mod.load_clip(ModelConfig(clip=entry.name, offline=True, cache_dir=str(cache)))
    assert clip.name == entry.name and not clip.untrained
    texts = ["月亮代表我的心", "où es-tu mon cœur"]
    want = torch.nn.functional.normalize(ref.eval().encode_text(tok(texts)).float(), dim=-1)
    assert torch.allclose(clip.encode_text(texts), want, atol=1e-6)


def test_untrained_preview_of_german_lyrics_uses_the_tiny_multilingual_clip(tmp_path):
    sr = 22050
    audio = write_audio(tmp_path / "lied.wav", 0.2 * np.sin(np.arange(3 * sr) / 9.0), sr)
    lyrics = tmp_path / "lied.txt"
    lyrics.write_text("Über den Wolken muss die Freiheit wohl grenzenlos sein\nund ich bin nicht allein\n")
    r = musivid(audio, lyrics, "-o", tmp_path / "v.mp4", "--untrained", "--asr", "none", "--steps", "2", "--cutouts",
                "2", "--fps", "4", "--size", "64")
    assert r.returncode == 0, r.stderr
    assert f"CLIP {MULTILINGUAL_CLIP} (tiny, untrained, same classes): the lyrics look German (de)" in r.stderr
    assert "loading CLIP (untrained tiny CLIP)" in r.stderr
    data = json.loads((tmp_path / "v.musivid" / "project.json").read_text())
    assert data["settings"]["models"]["clip"] == MULTILINGUAL_CLIP  # resolved once, kept by the project
