"""The cost census of one optimizer step, counted without a GPU.

The full-size models are built on the meta device (shapes and dtypes, no memory, no weights) and
one step runs there, forward and backward, under a TorchDispatchMode that sees every aten op with
its input and output tensors. For each op it counts:
- FLOPs: matrix products, convolutions and attention by torch's own formulas
  (torch.utils.flop_counter), other ops one FLOP per element they produce or reduce;
- bytes: each input read once and each output written once, at the dtypes the op really has
  (a broadcast input counts only the elements it holds; views, detaches and empties move nothing);
- kernel launches: one per op that moves data, plus what cuDNN adds on CUDA (`cudnn_extras`):
  a convolution's bias is added by a separate kernel, and an input or gradient that is not in the
  convolution's memory layout (channels-last when its input or weight is) is copied first;
- activation memory kept for backward: the tensors autograd saves, weights excluded.

Where the step runs under CUDA's bf16 autocast, `CudaAutocast` applies CUDA's autocast op lists
(lower precision, fp32, promote) to the meta tensors, so casts, promotions and per-forward weight
casts show up as the ops they are on the GPU; attention is counted as the fused kernel CUDA
picks (flash attention, or memory-efficient attention where the value width differs).

The time estimate is the sum over ops of max(FLOPs / peak rate, bytes / bandwidth), with the
H200's rates as measured on the device machine (`H200`, the default) and the H100's (`H100`) as a
second column. Launch overhead, L2 reuse and overlap are not modelled.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

aten = torch.ops.aten


@dataclass(frozen=True)
class Peaks:
    """The rates the estimate divides by, with where each comes from."""

    name: str
    matmul_flops: float  # dense bf16 tensor-core FLOP/s (matrix products, convolutions, attention)
    vector_flops_fp32: float  # FLOP/s of plain (non-tensor-core) fp32 arithmetic
    vector_flops_bf16: float  # FLOP/s of plain bf16/fp16 arithmetic
    bandwidth: float  # device-memory bytes/s, reads plus writes
    source: str


# NVIDIA H100 SXM5 80 GB (the second column). Data sheet (SXM5): dense bf16 tensor 989.4 TFLOP/s, fp32 66.9,
# bf16/fp16 non-tensor 133.8 TFLOP/s, HBM3 3.35 TB/s. Measured on an H100 this project was once lent
# (2026-11-13): 8192^3 bf16 matrix product 798 TFLOP/s, copy ~3.0 TB/s (read + written).
H100_DATASHEET = {"matmul_bf16_dense": 989.4e12, "vector_fp32": 66.9e12, "vector_bf16": 133.8e12,
                  "hbm_bandwidth": 3.35e12}
H100 = Peaks("NVIDIA H100 SXM5 80GB", matmul_flops=798e12, vector_flops_fp32=66.9e12, vector_flops_bf16=133.8e12,
             bandwidth=3.0e12, source="bf16 matmul 798 TFLOP/s and copy 3.0 TB/s measured on the device "
             "machine (2026-11-13); vector rates from the data sheet")

# NVIDIA H200 SXM 141 GB (lent here). Data sheet: the H100's compute, HBM3e 4.8 TB/s. Measured on the device
# machine (2026-10-28): 8192^3 bf16 matrix product 788 TFLOP/s, device-to-device copy ~4.3 TB/s
# (read + written). The bench divides by the matrix rate it measures: estimate and measurement share a ceiling.
H200_DATASHEET = {"matmul_bf16_dense": 989.4e12, "vector_fp32": 66.9e12, "vector_bf16": 133.8e12,
                  "hbm_bandwidth": 4.8e12}
H200 = Peaks("NVIDIA H200 SXM 141GB", matmul_flops=788e12, vector_flops_fp32=66.9e12, vector_flops_bf16=133.8e12,
             bandwidth=4.3e12, source="bf16 matmul 788 TFLOP/s and copy 4.3 TB/s measured on the device "
             "machine (2026-10-28); vector rates from the data sheet")
DATASHEETS = {H200.name: H200_DATASHEET, H100.name: H100_DATASHEET}

# ops that launch nothing and move nothing (besides views, which OpOverload.is_view knows)
FREE = {aten.empty, aten.empty_strided, aten.empty_like, aten.new_empty, aten.new_empty_strided, aten.detach,
        aten.alias, aten.lift_fresh, aten.lift_fresh_copy, aten._unsafe_view, aten.view, aten._reshape_alias,
        aten.sym_size, aten.sym_stride, aten.sym_numel, aten.sym_storage_offset, aten.is_same_size,
        aten._local_scalar_dense}
# ops that overwrite their mutated argument without reading it
WRITE_ONLY = {aten.copy_, aten.fill_, aten.zero_, aten.zeros_like, aten.ones_like, aten.full_like, aten.normal_,
              aten.uniform_, aten.random_}
MATMUL_LIKE = {aten.mm, aten.addmm, aten.bmm, aten.baddbmm, aten.convolution, aten._convolution,
               aten.convolution_backward, aten.cudnn_convolution, aten._scaled_dot_product_flash_attention,
               aten._scaled_dot_product_flash_attention_backward, aten._scaled_dot_product_efficient_attention,
               aten._scaled_dot_product_efficient_attention_backward, aten._scaled_dot_product_cudnn_attention,
               aten._scaled_dot_product_cudnn_attention_backward, aten._flash_attention_forward,
               aten._flash_attention_backward, aten._efficient_attention_forward, aten._efficient_attention_backward}


def touched_bytes(t: torch.Tensor) -> int:
    """Bytes of the distinct elements a tensor addresses: a broadcast (stride-0) dimension is read
    once, not once per repeat."""
    n = 1
    for size, stride in zip(t.shape, t.stride()):
        if stride != 0:
            n *= size
    return n * t.element_size() if t.numel() else 0


@dataclass
class OpCost:
    op: str  # aten op name, e.g. "convolution"
    phase: str  # "forward", "backward" or "optimizer"
    flops: float
    bytes_read: float
    bytes_written: float
    kernels: int
    matmul: bool  # counted against the tensor-core rate
    dtype: str  # dtype of the op's first floating output (or input)
    calls: int = 1

    @property
    def bytes(self) -> float:
        return self.bytes_read + self.bytes_written

    def seconds(self, peaks: Peaks) -> float:
        """max(FLOPs / rate, bytes / bandwidth): the op's time if it ran at the better roof."""
        if self.matmul:
            rate = peaks.matmul_flops
        else:
            rate = peaks.vector_flops_fp32 if self.dtype in ("float32", "float64") else peaks.vector_flops_bf16
        return max(self.flops / rate, self.bytes / peaks.bandwidth)


def _tensors(tree) -> list[torch.Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


def op_cost(func, args: tuple, kwargs: dict, out: Any, phase: str) -> OpCost:
    """The census of one aten op call (see the module docstring for what is counted)."""
    from torch.utils.flop_counter import flop_registry

    packet = func.overloadpacket
    name = packet.__name__
    outs = _tensors(out)
    first = next((t for t in outs + _tensors((args, kwargs)) if t.is_floating_point()), None)
    dtype = str(first.dtype).removeprefix("torch.") if first is not None else "int"
    if func.is_view or packet in FREE:
        return OpCost(name, phase, 0.0, 0.0, 0.0, 0, False, dtype)
    # inputs, each once; an argument the op overwrites without reading is not read
    schema_args = func._schema.arguments
    skip: set[int] = set()
    for i, a in enumerate(schema_args):
        if packet in WRITE_ONLY and a.alias_info is not None and a.alias_info.is_write and i < len(args):
            skip.add(id(args[i]))
    if packet is aten.convolution_backward and not args[10][1]:
        skip.add(id(args[1]))  # no weight gradient: the data gradient reads grad_output and weight only
    if packet is aten.grid_sampler_2d_backward and not args[6][1]:
        skip.add(id(args[1]))  # no grid gradient: the input's values are not read
    if packet is aten.convolution and args[2] is not None:
        skip.add(id(args[2]))  # cuDNN convolves without the bias: `cudnn_extras` adds it
    seen: dict[int, torch.Tensor] = {}
    for t in _tensors((args, kwargs)):
        if id(t) not in skip:
            seen.setdefault(id(t), t)
    read = sum(touched_bytes(t) for t in seen.values())
    written = sum(touched_bytes(t) for t in {id(t): t for t in outs}.values())
    if packet in flop_registry:
        flops = float(flop_registry[packet](*args, **kwargs, out_val=out))
    else:
        flops = float(max([t.numel() for t in outs + list(seen.values())] or [0]))
    kernels = 2 if packet is aten.grid_sampler_2d_backward else 1  # its gradient buffer is zeroed first
    return OpCost(name, phase, flops, float(read), float(written), kernels, packet in MATMUL_LIKE, dtype)


class CostMode(TorchDispatchMode):
    """Records the OpCost of every aten op that runs while it is active; `phase` labels them."""

    def __init__(self, cudnn: bool = True) -> None:
        super().__init__()
        self.ops: list[OpCost] = []
        self.phase = "forward"
        self.cudnn = cudnn  # count the bias additions and layout copies cuDNN makes (CUDA)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.cudnn:  # layout copies run before the convolution
            self.ops += cudnn_extras(func, args, self.phase)
        out = func(*args, **kwargs)
        if self.cudnn:
            out = _cudnn_layout(func, args, out)
        self.ops.append(op_cost(func, args, kwargs, out, self.phase))
        if self.cudnn:  # the bias addition after it
            self.ops += cudnn_extras(func, args, self.phase, out)
        return out


def _layout(*ts: torch.Tensor) -> torch.memory_format:
    """The memory format cuDNN convolves in (cudnn_conv_suggest_memory_format): channels-last if
    the input or the weight is channels-last, else contiguous."""
    def cl(t):
        return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()

    return torch.channels_last if any(cl(t) for t in ts) else torch.contiguous_format


def _cudnn_layout(func, args: tuple, out: Any) -> Any:
    """A meta convolution's output (and its backward's input gradient) in the layout cuDNN writes
    it in on CUDA: channels-last when the input or the weight is (the meta kernels write
    channels-first, which would hide or invent layout copies further on)."""
    packet = func.overloadpacket
    if packet not in (aten.convolution, aten.convolution_backward):
        return out
    x, w = (args[0], args[1]) if packet is aten.convolution else (args[1], args[2])
    fmt = _layout(x, w)
    if fmt is torch.contiguous_format or x.device.type != "meta":
        return out
    if packet is aten.convolution:
        return out.contiguous(memory_format=fmt)
    return (out[0].contiguous(memory_format=fmt) if out[0] is not None else None, *out[1:])


def _copy(t: torch.Tensor, phase: str) -> OpCost:
    b = float(t.numel() * t.element_size())
    return OpCost("cudnn_layout_copy", phase, 0.0, b, b, 1, False, str(t.dtype).removeprefix("torch."))


def cudnn_extras(func, args: tuple, phase: str, out: Any = None) -> list[OpCost]:
    """What cuDNN adds to a convolution on CUDA (aten/src/ATen/native/Convolution.cpp). Before the
    op (`out` None): the input made contiguous in the layout it convolves in (a copy when it is
    not); in the backward, grad_output (and the input, for a weight gradient) likewise, e.g. a
    gradient that reaches a channels-last convolution channels-first. After the op (`out` given):
    the bias, added by a separate kernel (reads the output and the bias, writes the output)."""
    packet = func.overloadpacket
    if packet is aten.convolution:
        x, w, bias = args[0], args[1], args[2]
        if out is not None:
            b = touched_bytes(out)
            return [OpCost("cudnn_bias_add", phase, float(out.numel()), float(b + touched_bytes(bias)), float(b),
                           1, False, str(out.dtype).removeprefix("torch."))] if bias is not None else []
        return [] if x.is_contiguous(memory_format=_layout(x, w)) else [_copy(x, phase)]
    if packet is aten.convolution_backward and out is None:
        g, x, w, mask = args[0], args[1], args[2], args[10]
        fmt = _layout(x, w)
        copies = [t for t, need in ((g, True), (x, mask[1])) if need and not t.is_contiguous(memory_format=fmt)]
        return [_copy(t, phase) for t in copies]
    return []


# CUDA's autocast op lists (torch docs "Automatic Mixed Precision package", CUDA op-specific
# behaviour; aten/src/ATen/autocast_mode.cpp), by the Python-level name of the function or method
AUTOCAST_LOWER = {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                  "convolution", "_convolution", "conv_tbc", "prelu", "addmm", "addmv", "addr", "matmul",
                  "__matmul__", "__rmatmul__", "einsum", "mm", "mv", "linear", "addbmm", "baddbmm", "bmm",
                  "chain_matmul", "multi_dot", "linalg_vecdot", "scaled_dot_product_attention",
                  "_native_multi_head_attention",
                  # a Python composite whose inner ops (for need_weights=False) are linear,
                  # scaled_dot_product_attention and views: casting its inputs once is what the
                  # per-op casts amount to
                  "multi_head_attention_forward"}
AUTOCAST_FP32 = {"acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p", "reciprocal",
                 "rsqrt", "sinh", "tan", "pow", "__pow__", "__rpow__", "__rtruediv__", "__rdiv__", "softplus",
                 "layer_norm", "native_layer_norm", "group_norm", "frobenius_norm", "nuclear_norm",
                 "cosine_similarity", "poisson_nll_loss", "cosine_embedding_loss", "nll_loss", "nll_loss2d",
                 "hinge_embedding_loss", "kl_div", "l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss",
                 "margin_ranking_loss", "multilabel_margin_loss", "soft_margin_loss", "triplet_margin_loss",
                 "multi_margin_loss", "binary_cross_entropy_with_logits", "dist", "pdist", "cdist", "renorm",
                 "logsumexp", "softmax", "log_softmax", "softmin", "cumprod", "cumsum", "prod", "sum", "norm",
                 "normalize", "cross_entropy"}
AUTOCAST_PROMOTE = {"addcdiv", "addcmul", "atan2", "bilinear", "cross", "dot", "grid_sample", "grid_sampler",
                    "index_put", "scatter_add", "tensordot", "stack", "cat"}


def _cast(tree, pick: Callable[[torch.Tensor], torch.dtype | None]):
    flat, spec = torch.utils._pytree.tree_flatten(tree)
    out = []
    for x in flat:
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != torch.float64:
            d = pick(x)
            x = x.to(d) if d is not None and d != x.dtype else x
        out.append(x)
    return torch.utils._pytree.tree_unflatten(out, spec)


class CudaAutocast(TorchFunctionMode):
    """CUDA's `torch.autocast("cuda", dtype)` applied to tensors on another device (meta): the
    inputs of ops on the lower-precision list are cast to `dtype`, those on the fp32 list to fp32,
    those on the promote list to their widest float type. Frozen weights (requires_grad False) are
    re-cast at every use, as autocast's cache only keeps casts of leaves that require grad.
    Functions called inside a listed op run without autocast, as on CUDA."""

    def __init__(self, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.dtype = dtype

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in AUTOCAST_LOWER:
            args, kwargs = _cast((args, kwargs), lambda t: self.dtype)
        elif name in AUTOCAST_FP32:
            args, kwargs = _cast((args, kwargs), lambda t: torch.float32 if t.element_size() < 4 else None)
        elif name in AUTOCAST_PROMOTE:
            floats = [t for t in _tensors((args, kwargs)) if t.is_floating_point()]
            widest = max(floats, key=lambda t: t.element_size()).dtype if floats else None
            args, kwargs = _cast((args, kwargs), lambda t: widest)
        if name == "scaled_dot_product_attention":
            return fused_attention(*args, **kwargs)
        return func(*args, **kwargs)


def fused_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """scaled_dot_product_attention as the fused CUDA kernel it dispatches to for bf16 inputs
    (the meta device would otherwise count the unfused math path): flash attention when q, k and v
    have one head width <= 256 and no mask, else memory-efficient attention (it allows a value
    width that differs from the query/key width, as in BigGAN's attention)."""
    d = q.shape[-1]
    if attn_mask is None and k.shape[-1] == d and v.shape[-1] == d and d <= 256 and q.dtype != torch.float32:
        return aten._scaled_dot_product_flash_attention(q, k, v, dropout_p, is_causal, False, scale=scale)[0]
    return aten._scaled_dot_product_efficient_attention(q, k, v, attn_mask, True, dropout_p, is_causal,
                                                        scale=scale)[0]


@contextlib.contextmanager
def _torch_attention_as_fused():
    """Inside torch's own Python composites (nn.MultiheadAttention), route
    F.scaled_dot_product_attention to `fused_attention` too (restored on exit)."""
    import torch.nn.functional as F

    old, F.scaled_dot_product_attention = F.scaled_dot_product_attention, fused_attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = old


@dataclass
class Census:
    """The counted cost of one optimizer step of `batch` latents, and its estimate at `peaks`
    (the H200's measured rates by default; `at(H100)` gives the same count at the H100's)."""

    label: str
    batch: int
    cutouts: int
    ops: list[OpCost] = field(default_factory=list)
    saved_bytes: float = 0.0  # activation memory autograd keeps for backward (weights excluded)
    peaks: Peaks = H200
    model_flops: float | None = None  # matrix FLOPs of the same step by the original modules

    def at(self, peaks: Peaks) -> "Census":
        """The same count estimated at other rates (e.g. H100, or the matrix rate a bench measured)."""
        return dataclasses.replace(self, peaks=peaks)

    def estimate(self) -> dict[str, Any]:
        """The estimate at `peaks`: the figures a measurement at the same ceiling sits beside."""
        return {"device": self.peaks.name, "estimated_step_seconds": self.step_seconds,
                "estimated_latent_steps_per_s": self.latent_steps_per_s, "ceiling_latent_steps_per_s": self.ceiling,
                "estimated_fraction_of_ceiling": self.fraction_of_ceiling,
                "estimated_flop_utilisation": self.flop_utilisation, "peaks": dataclasses.asdict(self.peaks),
                "datasheet": DATASHEETS.get(self.peaks.name)}

    def total(self, what: str, phase: str | None = None) -> float:
        return sum(getattr(o, what) for o in self.ops if phase is None or o.phase == phase)

    @property
    def matmul_flops(self) -> float:
        return sum(o.flops for o in self.ops if o.matmul)

    @property
    def step_seconds(self) -> float:
        return sum(o.seconds(self.peaks) for o in self.ops)

    @property
    def latent_steps_per_s(self) -> float:
        return self.batch / self.step_seconds

    @property
    def ceiling(self) -> float:
        """DESIGN.md §3's ceiling: latent-steps/s if the model's matrix FLOPs (the original modules'
        count, or this step's when not given) ran at the tensor-core rate and nothing else cost."""
        return self.peaks.matmul_flops * self.batch / (self.model_flops or self.matmul_flops)

    @property
    def fraction_of_ceiling(self) -> float:
        return self.latent_steps_per_s / self.ceiling

    @property
    def flop_utilisation(self) -> float:
        """This step's own matrix FLOPs over the tensor-core rate, divided by its estimated time."""
        return self.matmul_flops / self.peaks.matmul_flops / self.step_seconds

    def grouped(self) -> list[OpCost]:
        """Ops summed by (name, phase, dtype, matmul), the most expensive (estimated time) first."""
        acc: dict[tuple, OpCost] = {}
        for o in self.ops:
            key = (o.op, o.phase, o.dtype, o.matmul)
            if key not in acc:
                acc[key] = dataclasses.replace(o, calls=0, flops=0.0, bytes_read=0.0, bytes_written=0.0, kernels=0)
            g = acc[key]
            g.calls, g.flops, g.kernels = g.calls + 1, g.flops + o.flops, g.kernels + o.kernels
            g.bytes_read, g.bytes_written = g.bytes_read + o.bytes_read, g.bytes_written + o.bytes_written
        return sorted(acc.values(), key=lambda g: -_seconds(self, g))

    def to_json(self, top: int = 15) -> dict[str, Any]:
        n = self.batch
        return {
            "label": self.label, "batch": n, "cutouts": self.cutouts,
            "flops_per_latent_step": self.matmul_flops / n,
            "model_flops_per_latent_step": (self.model_flops or self.matmul_flops) / n,
            "vector_flops_per_latent_step": (self.total("flops") - self.matmul_flops) / n,
            "bytes_per_latent_step": self.total("bytes") / n,
            "bytes_forward_per_latent_step": self.total("bytes", "forward") / n,
            "bytes_backward_per_latent_step": self.total("bytes", "backward") / n,
            "kernels_per_step": int(self.total("kernels")),
            "cudnn_bias_adds_per_step": sum(o.kernels for o in self.ops if o.op == "cudnn_bias_add"),
            "cudnn_layout_copies_per_step": sum(o.kernels for o in self.ops if o.op == "cudnn_layout_copy"),
            "cudnn_extra_bytes_per_latent_step": sum(o.bytes for o in self.ops if o.op.startswith("cudnn_")) / n,
            "saved_bytes_per_latent": self.saved_bytes / n,
            **self.estimate(),
            "estimates": {p.name: self.at(p).estimate() for p in dict.fromkeys((self.peaks, H200, H100))},
            "top_ops": [{"op": g.op, "phase": g.phase, "dtype": g.dtype, "calls": g.calls,
                         "gflop_per_latent": g.flops / n / 1e9, "mb_per_latent": g.bytes / n / 1e6,
                         "kernels": g.kernels, "estimated_ms": _seconds(self, g) * 1e3}
                        for g in self.grouped()[:top]],
        }


def _seconds(c: Census, g: OpCost) -> float:
    return sum(o.seconds(c.peaks) for o in c.ops if (o.op, o.phase, o.dtype, o.matmul) == (g.op, g.phase, g.dtype, g.matmul))


def format_census(c: Census, top: int = 15) -> str:
    j = c.to_json(top)
    lines = [
        f"census: {c.label}",
        f"one step of {c.batch} latents x {c.cutouts} cutouts, counted on the meta device (no GPU, no weights)",
        f"FLOPs per latent-step (matrix products, convolutions, attention): {j['flops_per_latent_step'] / 1e9:.1f} GFLOP"
        f" (+ {j['vector_flops_per_latent_step'] / 1e9:.2f} GFLOP element-wise); the original modules: "
        f"{j['model_flops_per_latent_step'] / 1e9:.1f} GFLOP",
        f"bytes read + written per latent-step: {j['bytes_per_latent_step'] / 1e9:.2f} GB "
        f"(forward {j['bytes_forward_per_latent_step'] / 1e9:.2f}, backward {j['bytes_backward_per_latent_step'] / 1e9:.2f})",
        f"kernel launches per step: {j['kernels_per_step']} (cuDNN's bias additions {j['cudnn_bias_adds_per_step']} "
        f"and layout copies {j['cudnn_layout_copies_per_step']} included: "
        f"{j['cudnn_extra_bytes_per_latent_step'] / 1e6:.0f} MB per latent-step)",
        f"activation memory kept for backward: {j['saved_bytes_per_latent'] / 2**20:.0f} MiB per latent",
    ]
    for e in j["estimates"].values():
        q = e["peaks"]
        sheet = e["datasheet"] or {}
        lines += [
            f"estimate for {e['device']}: {e['estimated_latent_steps_per_s']:.0f} latent-steps/s "
            f"({e['estimated_step_seconds'] * 1e3:.2f} ms per step), {e['estimated_fraction_of_ceiling']:.1%} of the "
            f"FLOP ceiling ({e['ceiling_latent_steps_per_s']:.0f} latent-steps/s for the model's FLOPs); the step's "
            f"own FLOPs at {e['estimated_flop_utilisation']:.1%} of the tensor-core rate",
            f"  rates: matmul {q['matmul_flops'] / 1e12:.0f} TFLOP/s, vector fp32 {q['vector_flops_fp32'] / 1e12:.1f} / "
            f"bf16 {q['vector_flops_bf16'] / 1e12:.1f} TFLOP/s, memory {q['bandwidth'] / 1e12:.2f} TB/s ({q['source']})"
            + (f"; data sheet {sheet['matmul_bf16_dense'] / 1e12:.0f} TFLOP/s, {sheet['hbm_bandwidth'] / 1e12:.2f} TB/s"
               if sheet else "")]
    lines += [
        f"top ops by estimated time (per step of {c.batch}):",
        f"  {'op':44s} {'phase':9s} {'dtype':9s} {'calls':>5s} {'GFLOP/lat':>10s} {'MB/lat':>8s} {'ms':>7s}",
    ]
    for t in j["top_ops"]:
        lines.append(f"  {t['op'][:44]:44s} {t['phase']:9s} {t['dtype']:9s} {t['calls']:5d} "
                     f"{t['gflop_per_latent']:10.2f} {t['mb_per_latent']:8.1f} {t['estimated_ms']:7.3f}")
    return "\n".join(lines)


class _SavedTensors:
    """Storage bytes of the tensors autograd saves for backward (each storage once), except
    those of `exclude` (the models' weights and buffers, resident anyway)."""

    def __init__(self, exclude: Iterator[torch.Tensor]) -> None:
        self.exclude = {t.untyped_storage()._cdata for t in exclude}
        self.storages: dict[int, int] = {}
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s._cdata not in self.exclude:
            self.storages[s._cdata] = s.nbytes()
        return t

    @property
    def bytes(self) -> int:
        return sum(self.storages.values())


def count_step(forward: Callable[[], torch.Tensor], *, batch: int, cutouts: int, label: str,
               weights: list[torch.Tensor], autocast: torch.dtype | None = None,
               after: Callable[[CostMode], None] | None = None) -> Census:
    """Count one step: `forward()` returns the (N,) loss; its sum is backpropagated; `after(mode)`
    counts the optimizer's bookkeeping (phase "optimizer"). `autocast` emulates CUDA's autocast
    around the forward."""
    mode = CostMode()
    saved = _SavedTensors(iter(weights))
    with mode:
        with saved.hooks, _torch_attention_as_fused():
            if autocast is not None:
                with CudaAutocast(autocast):
                    loss = forward()
            else:
                loss = forward()
        mode.phase = "backward"
        loss.sum().backward()
        if after is not None:
            mode.phase = "optimizer"
            after(mode)
    return Census(label, batch, cutouts, mode.ops, float(saved.bytes))


def adam_cost(params: list[torch.Tensor], phase: str = "optimizer") -> OpCost:
    """Fused Adam (torch.optim.Adam(fused=True)) over `params` as one multi-tensor kernel: reads
    the parameter, its gradient and both moments, writes the parameter and both moments."""
    b = sum(p.numel() * p.element_size() for p in params)
    n = sum(p.numel() for p in params)
    return OpCost("_fused_adam_", phase, 12.0 * n, 4.0 * b, 3.0 * b, 1, False, "float32")


def meta_models(clip_name: str, biggan_name: str):
    """Full-size CLIP and prepared BigGAN on the meta device (architecture only, no weights)."""
    from ..images.models import biggan as bg
    from ..images.models import clip as cm
    from ..images.models.registry import get_entry

    entry = get_entry(clip_name)
    root = logging.getLogger()
    quiet = logging.Filter()
    quiet.filter = lambda record: "No pretrained weights" not in record.getMessage()  # meta: no weights, by design
    root.addFilter(quiet)
    try:
        model, tok, size = cm.build(entry.arch, untrained=False, quick_gelu=entry.quick_gelu, device="meta")
    finally:
        root.removeFilter(quiet)
    with torch.device("meta"):
        from pytorch_pretrained_biggan import BigGAN

        raw = BigGAN(bg.full_config(int(get_entry(biggan_name).arch.rsplit("-", 1)[1])))
    raw = raw.to_empty(device="meta")  # a few parameters are made by legacy constructors on the CPU
    clip = cm.Clip(model, tok, size, f"{clip_name} (meta)", True)
    gen = bg.Generator(bg.prepare(raw), f"{biggan_name} (meta)", True)
    return clip, gen


def model_flops(biggan: torch.nn.Module, visual: torch.nn.Module, image_size: int, cutouts: int,
                batch: int = 1) -> float:
    """Matrix FLOPs of one step of `batch` latents computed by the original modules (a prepared
    pytorch-pretrained-biggan BigGAN, open_clip's image tower with every token in every block),
    forward and input-gradient backward: the work of the objective itself, whatever an
    implementation skips (DESIGN.md §3's ceiling). Counted on the meta device: the modules run
    with meta copies of their weights (torch.func.functional_call), wherever they live."""
    from torch.func import functional_call

    from ..images import cutouts as cut

    def meta(m: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.to("meta") for k, v in list(m.named_parameters()) + list(m.named_buffers())}

    z = torch.empty(batch, biggan.config.z_dim, device="meta", requires_grad=True)
    c = torch.empty(batch, biggan.config.num_classes, device="meta", requires_grad=True)
    mode = CostMode(cudnn=False)  # matrix FLOPs only
    with mode, _torch_attention_as_fused():
        img = functional_call(biggan, meta(biggan), (z, c, 1.0))  # (N, 3, R, R)
        pieces = cut.make_cutouts(img, torch.empty(batch, cutouts, 4, device="meta"), image_size)
        functional_call(visual, meta(visual), (pieces,)).float().sum().backward()
    return sum(o.flops for o in mode.ops if o.matmul)


def census_step(clip_name: str = "ViT-B-32/openai", biggan_name: str = "biggan-deep-256", cutouts: int = 32,
                batch: int = 16, dtype: torch.dtype = torch.bfloat16) -> Census:
    """The census of musivid's eager optimizer step as it runs on CUDA, full size: the fast
    forwards with weights stored in `dtype` (bf16 on CUDA), channels-last convolutions."""
    from ..config import OptimizeConfig
    from ..images.optimize import Objective, init_state, track_best

    clip, gen = meta_models(clip_name, biggan_name)
    gnet = gen.fast(dtype, torch.channels_last)  # what Generator.fast builds on a CUDA device
    vnet = clip.fast(dtype, torch.channels_last)
    cfg = OptimizeConfig(cutouts=cutouts, steps=1)
    st = init_state(list(range(batch)), gen.z_dim, gen.num_classes, cfg, gen.n_z_rows, "meta")
    z, cls = st.z.clone().requires_grad_(True), st.cls.clone().requires_grad_(True)
    text = torch.empty(batch, 512, device="meta")
    objective = Objective(gen, clip, cfg, dtype)
    score, step_loss = torch.empty(batch, device="meta"), torch.empty(batch, device="meta")
    out = {}

    def forward():
        loss, sc = objective(z, cls, text, st.seeds, torch.zeros((), dtype=torch.long, device="meta"))
        out["score"], out["loss"] = sc, loss
        return loss

    def after(mode: CostMode):
        score.copy_(out["score"].detach())
        step_loss.copy_(out["loss"].detach())
        with torch.no_grad():  # the step's undo copy (optimize.py: OOM), best-tracking, fused Adam
            kept = [z, cls, st.best_z, st.best_cls, st.best_score] + [torch.empty_like(t) for t in (z, cls) * 2]
            torch._foreach_copy_([torch.empty_like(t) for t in kept], kept)
            track_best(st, z, cls, score, cfg)
        mode.ops.append(adam_cost([z, cls]))
        torch._foreach_zero_([z.grad, cls.grad])

    weights = [t for m in (gnet, vnet) for t in list(m.parameters()) + list(m.buffers())]
    c = count_step(forward, batch=batch, cutouts=cutouts, after=after, weights=weights,
                   label=f"{clip_name} + {biggan_name}, CUDA path (weights in {str(dtype)[6:]})")
    c.model_flops = model_flops(gen.model, clip.model.visual, clip.image_size, cutouts, batch)
    return c


__all__ = ["H100", "H100_DATASHEET", "H200", "H200_DATASHEET", "Census", "CostMode", "CudaAutocast", "OpCost", "Peaks",
           "census_step", "count_step", "cudnn_extras", "format_census", "fused_attention", "meta_models", "op_cost",
           "touched_bytes"]
