"""Weight download / verify / cache / offline against a loopback HTTP server serving files in the
real formats (BigGAN's pytorch_model.bin + config.json, open_clip safetensors; random values, real
key names and shapes of small configs)."""
import hashlib
import http.server
import io
import json
import threading
from pathlib import Path

import pytest
import torch

from conftest import no_network
from musivid.config import ModelConfig
from musivid.errors import ModelUnavailableError, WeightsMismatchError
from musivid.images.models import registry as reg
from musivid.images.models.load import load_biggan, load_clip


class Server:
    """Serves `files` {path: bytes}; `mode` {path: "404" | "hang" | "ok"}; counts requests."""

    def __init__(self):
        self.files, self.mode, self.hits = {}, {}, []
        self.release = threading.Event()  # ends every hanging request (set when the server closes)
        self.hanging = 0  # requests being held without an answer right now
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                mode = outer.mode.get(self.path, "ok")
                if mode == "hang":  # no answer until the test lets go (60 s at most)
                    outer.hanging += 1
                    outer.release.wait(60)
                    outer.hanging -= 1
                    return
                if mode == "404" or self.path not in outer.files:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = outer.files[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = Server()
    yield s
    s.close()


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(scope="module")
def weight_files():
    """Real-format files of the tiny configs: BigGAN state dict (spectral-norm keys) + config.json,
    and an open_clip CLIP state dict as safetensors."""
    from safetensors.torch import save as st_save

    from musivid.images.models import biggan as bg
    from musivid.images.models import clip as cm

    torch.manual_seed(0)
    model = bg.new_model(bg.tiny_config())
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    cfg = json.dumps(bg.tiny_config().to_dict()).encode()
    clip_model, _, _ = cm.build("musivid-tiny", untrained=False)
    clip_bytes = st_save({k: v.contiguous() for k, v in clip_model.state_dict().items()})
    assert any(k.endswith("weight_orig") for k in model.state_dict())  # the real format
    return {"biggan.bin": buf.getvalue(), "config.json": cfg, "clip.safetensors": clip_bytes}


def entries(server, files, pinned=True, mirrors=("/a", "/b")):
    def wf(name, fn):
        return reg.WeightFile(fn, tuple(f"{server.url}{m}/{name}" for m in mirrors),
                              sha(files[name]) if pinned else None, len(files[name]))

    for m in mirrors:
        for name, data in files.items():
            server.files[f"{m}/{name}"] = data
    clip = reg.ModelEntry("test-clip", "clip", "musivid-tiny", (wf("clip.safetensors", "t-clip.safetensors"),), "MIT", "t")
    gan = reg.ModelEntry("test-biggan-64", "biggan", "biggan-deep-64",
                         (wf("biggan.bin", "t-biggan.bin"), wf("config.json", "t-biggan-config.json")), "Apache", "t")
    return clip, gan


@pytest.fixture()
def registered(server, weight_files, monkeypatch, tmp_path):
    clip, gan = entries(server, weight_files)
    monkeypatch.setitem(reg.REGISTRY, clip.name, clip)
    monkeypatch.setitem(reg.REGISTRY, gan.name, gan)
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MUSIVID_OFFLINE", raising=False)
    return ModelConfig(clip=clip.name, biggan=gan.name)


def test_first_load_downloads_and_verifies_second_makes_no_request(server, registered, tmp_path):
    gen = load_biggan(registered)
    clip = load_clip(registered)
    assert len(server.hits) == 3  # weights + config + clip, each once, from the first mirror
    assert all(h.startswith("/a/") for h in server.hits)
    cache = tmp_path / "cache"
    assert (cache / "t-biggan.bin").is_file() and not list(cache.glob("*.part"))
    img = gen(torch.randn(1, gen.z_dim), torch.rand(1, 1000), 1.0)
    assert img.shape == (1, 3, 64, 64) and torch.isfinite(img).all()
    assert not any(p.requires_grad for p in gen.model.parameters()) and not gen.model.training
    assert clip.encode_text(["hello"]).shape == (1, 32)
    load_biggan(registered)
    load_clip(registered)
    assert len(server.hits) == 3  # cached and verified: no network call


def test_loaded_weights_are_the_served_ones(server, registered, weight_files):
    gen = load_biggan(registered)
    sd = torch.load(io.BytesIO(weight_files["biggan.bin"]), weights_only=True)
    assert torch.equal(gen.model.embeddings.weight, sd["embeddings.weight"])
    # spectral norm baked in: the plain weight is weight_orig / sigma, sigma = u^T W v
    w = sd["generator.gen_z.weight_orig"]
    sigma = sd["generator.gen_z.weight_u"] @ w @ sd["generator.gen_z.weight_v"]
    assert torch.allclose(gen.model.generator.gen_z.weight, w / sigma, atol=1e-6)
    assert gen.model.generator.conv_to_rgb.out_channels == 3


def test_tampered_download_fails_checksum_then_next_mirror(server, registered):
    server.files["/a/biggan.bin"] = b"tampered" + server.files["/a/biggan.bin"][8:]
    load_biggan(registered)  # /a fails its sha256, /b serves the right bytes
    assert "/a/biggan.bin" in server.hits and "/b/biggan.bin" in server.hits


def test_tampered_everywhere_is_a_clear_error(server, registered, tmp_path):
    for m in ("/a", "/b"):
        server.files[f"{m}/biggan.bin"] = b"x" * 100
    with pytest.raises(ModelUnavailableError) as e:
        load_biggan(registered)
    msg = str(e.value)
    assert "sha256 mismatch" in msg and "t-biggan.bin" in msg and server.url in msg and "\n" not in msg
    assert not (tmp_path / "cache" / "t-biggan.bin").exists()


def test_corrupt_cached_file_is_refetched(server, registered, tmp_path, caplog):
    load_biggan(registered)
    n = len(server.hits)
    path = tmp_path / "cache" / "t-biggan.bin"
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="musivid"):
        load_biggan(registered)
    assert len(server.hits) == n + 1 and server.hits[-1].endswith("biggan.bin")
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("t-biggan.bin fails its checksum" in m and "deleted" in m for m in said), said  # the user is told


def test_corrupt_cached_file_offline_is_reported(server, registered, tmp_path, monkeypatch):
    load_biggan(registered)
    path = tmp_path / "cache" / "t-biggan.bin"
    path.write_bytes(b"garbage")
    monkeypatch.setenv("MUSIVID_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="offline"):
        load_biggan(registered)


def test_404_and_hanging_mirror_fall_through(server, registered, monkeypatch):
    server.mode["/a/clip.safetensors"] = "404"
    load_clip(registered)
    assert server.hits[-2:] == ["/a/clip.safetensors", "/b/clip.safetensors"]
    # a hanging server is bounded by the timeout, then the next mirror answers
    wf = reg.get_entry("test-biggan-64").files[1]
    server.mode["/a/config.json"] = "hang"
    path = reg.resolve_file(wf, Path(reg.cache_dir()) / "h", reg.FetchOptions(timeout_s=0.5))
    # the file came from mirror b while mirror a still had not answered: the timeout gave up on it
    assert path.is_file() and server.hanging == 1
    assert server.hits[-2:] == ["/a/config.json", "/b/config.json"]


def test_all_mirrors_failing_names_file_urls_and_fix(server, registered):
    server.mode["/a/clip.safetensors"] = server.mode["/b/clip.safetensors"] = "404"
    with pytest.raises(ModelUnavailableError) as e:
        load_clip(registered)
    msg = str(e.value)
    assert "t-clip.safetensors" in msg and f"{server.url}/a/clip.safetensors" in msg
    assert f"{server.url}/b/clip.safetensors" in msg and "by hand" in msg and "--untrained" in msg


def test_offline_fails_fast_without_network(server, registered, monkeypatch):
    monkeypatch.setenv("MUSIVID_OFFLINE", "1")
    tried = no_network(monkeypatch)
    with pytest.raises(ModelUnavailableError) as e:
        load_clip(registered)
    assert tried == [] and server.hits == []
    assert "offline" in str(e.value) and "models fetch" in str(e.value)


def test_state_dict_with_a_missing_key_is_rejected(server, weight_files, monkeypatch, tmp_path):
    sd = torch.load(io.BytesIO(weight_files["biggan.bin"]), weights_only=True)
    del sd["generator.gen_z.weight_orig"]
    buf = io.BytesIO()
    torch.save(sd, buf)
    files = dict(weight_files, **{"biggan.bin": buf.getvalue()})
    clip, gan = entries(server, files)
    monkeypatch.setitem(reg.REGISTRY, gan.name, gan)
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path / "c2"))
    with pytest.raises(WeightsMismatchError, match="missing key.*gen_z.weight_orig"):
        load_biggan(ModelConfig(biggan=gan.name))


def test_unpinned_file_is_pinned_on_first_download(server, weight_files, monkeypatch, tmp_path, caplog):
    clip, gan = entries(server, weight_files, pinned=False)
    monkeypatch.setitem(reg.REGISTRY, clip.name, clip)
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path / "c3"))
    with caplog.at_level("WARNING", logger="musivid"):
        load_clip(ModelConfig(clip=clip.name))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "pins no checksum" in warnings[0]
    pin = tmp_path / "c3" / "t-clip.safetensors.sha256"
    assert pin.read_text().split()[0] == sha(weight_files["clip.safetensors"])
    (tmp_path / "c3" / "t-clip.safetensors").write_bytes(b"changed")
    n = len(server.hits)
    load_clip(ModelConfig(clip=clip.name))  # the recorded pin catches it: re-fetched
    assert len(server.hits) == n + 1


def test_local_path_override(weight_files, tmp_path, monkeypatch):
    d = tmp_path / "biggan"
    d.mkdir()
    (d / "pytorch_model.bin").write_bytes(weight_files["biggan.bin"])
    (d / "config.json").write_bytes(weight_files["config.json"])
    monkeypatch.setenv("MUSIVID_OFFLINE", "1")
    gen = load_biggan(ModelConfig(biggan_path=str(d)))
    assert gen.resolution == 64
    with pytest.raises(ModelUnavailableError, match="no such"):
        load_clip(ModelConfig(clip_path=str(tmp_path / "nope.safetensors")))


def test_registry_entries_are_complete():
    for e in reg.REGISTRY.values():
        assert e.kind in ("clip", "biggan") and e.files and e.licence
        for wf in e.files:
            assert len(wf.urls) >= 2, f"{e.name}: needs a mirror"
            assert wf.sha256 is None or len(wf.sha256) == 64
    assert reg.REGISTRY["ViT-B-32/openai"].weights.sha256
    assert reg.REGISTRY["biggan-deep-256"].weights.sha256
    names = set(reg.REGISTRY)
    assert {"biggan-deep-128", "biggan-deep-256", "biggan-deep-512"} <= names
    assert any("xlm" in n for n in names) and "ViT-L-14/openai" in names
