"""The cost census counts what it says: hand-computed FLOPs, bytes and kernels for a convolution,
a matrix product and element-wise ops; CUDA's autocast rules; fused attention; saved tensors."""
import pytest
import torch
import torch.nn.functional as F

from conftest import musivid
from musivid.perf import census as cs


def _count(fn, autocast=None):
    mode = cs.CostMode()
    with mode:
        if autocast:
            with cs.CudaAutocast(autocast):
                out = fn()
        else:
            out = fn()
    return [o for o in mode.ops if o.kernels], out


def meta(*shape, dtype=torch.float32, grad=False):
    return torch.empty(*shape, device="meta", dtype=dtype, requires_grad=grad)


def test_convolution_by_hand():
    x, w, b = meta(2, 3, 8, 8), meta(4, 3, 3, 3), meta(4)
    ops, out = _count(lambda: F.conv2d(x, w, b, padding=1))
    op, bias = ops  # cuDNN convolves without the bias, then adds it in a kernel of its own
    assert op.op == "convolution" and op.matmul and op.kernels == 1
    assert op.flops == 2 * (2 * 4 * 8 * 8) * (3 * 3 * 3)  # 2 x outputs x (C_in x k x k) = 27,648
    assert op.bytes_read == 4 * (2 * 3 * 64 + 4 * 27)  # input, weight in fp32
    assert op.bytes_written == 4 * (2 * 4 * 64)
    assert (bias.op, bias.kernels, bias.matmul) == ("cudnn_bias_add", 1, False)
    assert (bias.bytes_read, bias.bytes_written) == (4 * (2 * 4 * 64 + 4), 4 * (2 * 4 * 64))
    (op,), _ = _count(lambda: F.conv2d(x, w, padding=1))  # no bias: no extra kernel
    assert op.op == "convolution"


def test_cudnn_layout_copies():
    """A channels-last convolution gets its output channels-last (as cuDNN writes it), and a
    channels-first gradient reaching it is copied into channels-last first: one kernel, its bytes."""
    cl = torch.channels_last
    x = meta(2, 8, 16, 16).to(memory_format=cl).requires_grad_(True)
    w = meta(8, 8, 3, 3).to(memory_format=cl)
    ops, out = _count(lambda: F.conv2d(x, w, padding=1))
    assert [o.op for o in ops] == ["convolution"] and out.is_contiguous(memory_format=cl)
    c = cs.count_step(lambda: F.conv2d(x, w, padding=1).contiguous().sum((1, 2, 3)), batch=1, cutouts=1, label="t",
                      weights=[w])
    copies = [o for o in c.ops if o.op == "cudnn_layout_copy"]
    assert len(copies) == 1 and copies[0].phase == "backward"
    assert copies[0].bytes_read == copies[0].bytes_written == 4 * 2 * 8 * 16 * 16
    y = meta(2, 8, 16, 16).to(memory_format=cl)
    c = cs.count_step(lambda: (F.conv2d(x, w, padding=1) * y).sum((1, 2, 3)), batch=1, cutouts=1, label="t",
                      weights=[w, y])
    assert not [o for o in c.ops if o.op == "cudnn_layout_copy"]  # a channels-last gradient: no copy


def test_matrix_product_by_hand():
    a, b = meta(64, 32, dtype=torch.bfloat16), meta(32, 16, dtype=torch.bfloat16)
    (op,), _ = _count(lambda: a @ b)
    assert (op.op, op.flops, op.bytes_read, op.bytes_written, op.kernels) == ("mm", 2 * 64 * 32 * 16,
                                                                             2 * (64 * 32 + 32 * 16), 2 * 64 * 16, 1)
    # the estimate: max(FLOPs / matmul rate, bytes / bandwidth)
    p = cs.H100
    assert op.seconds(p) == max(65536 / p.matmul_flops, (4096 + 1024 + 2048) / p.bandwidth)


def test_elementwise_broadcast_views_and_in_place():
    x, y, row = meta(10, 100), meta(10, 100), meta(100)
    (op,), _ = _count(lambda: x + y)
    assert (op.flops, op.bytes_read, op.bytes_written, op.kernels) == (1000, 8000, 4000, 1)
    (op,), _ = _count(lambda: x * row)  # the row is read once, not ten times
    assert op.bytes_read == 4000 + 400 and op.bytes_written == 4000
    ops, _ = _count(lambda: x.view(1000).unsqueeze(0).t().detach())  # views: no kernel, no bytes
    assert ops == []
    (op,), _ = _count(lambda: x.copy_(y))  # an overwritten destination is not read
    assert op.bytes_read == 4000 and op.bytes_written == 4000
    (op,), _ = _count(lambda: x.add_(y))  # an updated one is
    assert op.bytes_read == 8000 and op.bytes_written == 4000
    (op,), _ = _count(lambda: y.to(torch.bfloat16))
    assert (op.op, op.bytes_read, op.bytes_written, op.dtype) == ("_to_copy", 4000, 2000, "bfloat16")


def test_cuda_autocast_rules():
    x, w = meta(8, 16), meta(32, 16)
    ops, out = _count(lambda: F.linear(x, w), torch.bfloat16)
    assert [o.op for o in ops] == ["_to_copy", "_to_copy", "mm"] and out.dtype == torch.bfloat16
    h = meta(8, 16, dtype=torch.bfloat16)
    ops, out = _count(lambda: F.layer_norm(h, (16,)), torch.bfloat16)  # fp32 list: upcast, fp32 out
    assert out.dtype == torch.float32 and ops[0].op == "_to_copy"
    img, grid = meta(1, 3, 8, 8, dtype=torch.bfloat16), meta(1, 4, 4, 2)
    _, out = _count(lambda: F.grid_sample(img, grid, align_corners=False), torch.bfloat16)  # promote
    assert out.dtype == torch.float32
    _, out = _count(lambda: torch.tanh(h), torch.bfloat16)  # on no list: the input's dtype
    assert out.dtype == torch.bfloat16
    _, out = _count(lambda: h * meta(16), torch.bfloat16)  # type promotion with an fp32 buffer
    assert out.dtype == torch.float32


def test_attention_counts_as_the_fused_kernel():
    q, k, v = (meta(2, 12, 50, 64, dtype=torch.bfloat16) for _ in range(3))
    (op,), out = _count(lambda: F.scaled_dot_product_attention(q, k, v), torch.bfloat16)
    assert op.op == "_scaled_dot_product_flash_attention" and op.matmul
    assert op.flops == 2 * 2 * 12 * 50 * 50 * 64 * 2  # QK^T and PV
    assert op.bytes_read == 3 * q.numel() * 2  # q, k, v once: no attention matrix in memory
    assert op.bytes_written == q.numel() * 2 + 2 * 12 * 50 * 4 + 8 * 3  # output, fp32 logsumexp, rng state
    v = meta(2, 1, 50, 256, dtype=torch.bfloat16)
    k = meta(2, 1, 50, 64, dtype=torch.bfloat16)
    (op,), out = _count(lambda: F.scaled_dot_product_attention(k, k, v), torch.bfloat16)
    assert op.op == "_scaled_dot_product_efficient_attention" and out.shape == (2, 1, 50, 256)


def test_saved_tensors_and_backward_are_counted():
    w = meta(1000)
    x = meta(1000, grad=True)

    def fwd():
        return (x * w).sigmoid()

    c = cs.count_step(fwd, batch=1, cutouts=1, label="t", weights=[])
    names = [(o.op, o.phase) for o in c.ops if o.kernels]
    assert ("mul", "forward") in names and ("sigmoid_backward", "backward") in names
    assert c.saved_bytes == 2 * 4000  # w (for x's gradient) and the sigmoid's output
    c = cs.count_step(fwd, batch=1, cutouts=1, label="t", weights=[w])
    assert c.saved_bytes == 4000  # weights are resident anyway: not activation memory


def test_census_of_the_full_size_step():
    """BigGAN-deep-256 + ViT-B/32, 32 cutouts, batch 16, on the meta device in seconds."""
    c = cs.census_step()
    j = c.to_json()
    print(cs.format_census(c))
    assert 650e9 < j["flops_per_latent_step"] < 720e9  # DESIGN.md §6: 77.7 + 32 x 8.8 GFLOP forward, ~2x
    assert j["kernels_per_step"] > 100 and j["bytes_per_latent_step"] > 1e9
    assert 0 < j["estimated_fraction_of_ceiling"] < 1
    # cuDNN's extras (issue 26, checked by another counter on the same step): 50 of the 53 convolutions
    # carry a bias (+194 MB per latent-step), 14 backward gradients arrive channels-first (+76 MB)
    assert j["cudnn_bias_adds_per_step"] == 50 and j["cudnn_layout_copies_per_step"] == 14
    assert 0.26e9 < j["cudnn_extra_bytes_per_latent_step"] < 0.28e9
    # the H200's measured rates by default, the H100's as a second column, each with its data sheet
    assert j["device"] == cs.H200.name and j["peaks"]["matmul_flops"] == 788e12 and j["peaks"]["bandwidth"] == 4.3e12
    h100 = j["estimates"][cs.H100.name]
    assert h100["peaks"]["matmul_flops"] == 798e12 and h100["datasheet"]["hbm_bandwidth"] == 3.35e12
    assert j["datasheet"]["hbm_bandwidth"] == 4.8e12
    assert h100["estimated_latent_steps_per_s"] < j["estimated_latent_steps_per_s"]  # less bandwidth
    assert j["ceiling_latent_steps_per_s"] == pytest.approx(788e12 / j["model_flops_per_latent_step"])


def test_bench_census_cli_writes_json(tmp_path):
    out = tmp_path / "c.json"
    r = musivid("bench", "--census", "--batch", "2", "--cutouts", "2", "--json", out)
    assert r.returncode == 0, r.stderr
    import json

    c = json.loads(out.read_text())["census"]
    for k in ("flops_per_latent_step", "bytes_per_latent_step", "kernels_per_step", "saved_bytes_per_latent",
              "estimated_latent_steps_per_s", "estimated_fraction_of_ceiling"):
        assert c[k] > 0, k
    assert c["batch"] == 2 and "top ops by estimated time" in r.stdout
    assert "estimate for NVIDIA H200" in r.stdout and "estimate for NVIDIA H100" in r.stdout
    assert set(c["estimates"]) == {cs.H200.name, cs.H100.name}
