"""Import shims for the installed torch stack, kept in one place.

torchvision 0.28.0's wheel here is a CUDA build whose compiled ops cannot be loaded against the
CPU torch 2.13.0 build: `import torchvision` (and so open_clip and timm) dies with
"operator torchvision::nms does not exist" while registering fake kernels for nms/qnms. We never
call those ops; declaring their schemas lets the import finish (DESIGN.md §6). The shim applies only
when that exact failure happens, so a healthy torchvision (a user's CUDA machine) is untouched.
"""
from __future__ import annotations

import sys

_done = False


def import_open_clip():
    """Import and return open_clip, applying the torchvision schema shim if needed."""
    global _done
    if not _done:
        _ensure_torchvision()
        _done = True
    import open_clip

    return open_clip


def _ensure_torchvision() -> None:
    import torch

    try:
        import torchvision  # noqa: F401

        return
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBS.append(lib)  # the schemas live as long as the Library object
    import torchvision  # noqa: F401,F811


_LIBS: list = []
