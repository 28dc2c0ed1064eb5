"""The video frame: its size (RenderConfig.aspect and .size, the short side), the square generated
image placed in its middle on a fill, and the UNTRAINED PREVIEW mark; batched, on the device.

    --aspect 16:9 --size 720   1280 x 720: the 720 px image in the middle, 280 px of fill each side

Sizes (config.frame_size): the long side is size x ratio rounded to the nearest even number
(H.264's 4:2:0 needs even sides): 16:9 of 720 is 1280, of 480 854, of 256 456; 4:3 of 256 is 342.
The image's offset is
rounded down to an even number of pixels (at most a pixel left of centre), so the chroma planes
(half resolution) hold the same picture as the luma plane, block for block.

Fills (the frame outside the image):
  blur    the image scaled to cover the whole frame, blurred (shrunk to 1/BLUR_DIV of the frame
          with antialiasing, a 5-tap binomial filter, then enlarged bilinearly: a soft backdrop at
          any size, for the cost of a thumbnail) and darkened to DARKEN of its brightness;
  mirror  the image reflected at its edges (the edge pixel repeated: a true mirror), as bright;
  black   black.
Every function works on any planes: RGB in [0, 1] (black 0), or Y'CbCr levels (black 16, 128, 128);
darkening moves a value towards the plane's black, which is the same picture in both.

The mark: a dark translucent box with "UNTRAINED PREVIEW" in a corner of every frame of an
untrained preview, the top-left one (the bottom-left one when the captions are at the top), with
the captions kept clear of its band (captions.layout's `clear`). A frame too small for the words
to be legible at MARK_MIN_PX gets the shorter "UNTRAINED", and below that none (the video's
metadata says it all the same).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

BLUR_DIV = 24  # the blur fill is computed at 1/BLUR_DIV of the frame's long side
DARKEN = 0.5  # the blur fill's brightness, relative to the image's
MARK_MIN_PX = 8  # the mark's smallest font size (px): below it the words are not legible
MARK_WIDTH = 0.5  # the mark takes at most this fraction of the frame's width
MARK_TEXTS = ("UNTRAINED PREVIEW", "UNTRAINED")


@dataclass(frozen=True)
class FrameSpec:
    """A video frame: width x height, the square image of side min(width, height) at (x, y), and
    what fills the rest."""

    width: int
    height: int
    fill: str = "blur"  # blur | mirror | black

    @classmethod
    def of(cls, cfg) -> "FrameSpec":
        """The frame a RenderConfig asks for."""
        w, h = cfg.frame
        return cls(w, h, cfg.fill)

    @classmethod
    def square(cls, size: int) -> "FrameSpec":
        return cls(size, size)

    @property
    def side(self) -> int:
        return min(self.width, self.height)

    @property
    def x(self) -> int:
        return (self.width - self.side) // 4 * 2  # even: the chroma planes line up

    @property
    def y(self) -> int:
        return (self.height - self.side) // 4 * 2

    @property
    def is_square(self) -> bool:
        return self.width == self.height

    def bytes_per_frame(self, rgb: bool) -> int:
        """About how much memory one frame takes while it is made and encoded (float planes, the
        resized image, the fill, the uint8 result, the encoder's copy): for choosing a batch."""
        return self.width * self.height * (56 if rgb else 24)


def resize(x: torch.Tensor, h: int, w: int, chroma: bool = False) -> torch.Tensor:
    """(B, C, H0, W0) -> (B, C, h, w): bicubic, antialiased when shrinking; for `chroma` planes an
    exact halving is the 2x2 mean (how 4:2:0 chroma is taken from full-size planes)."""
    if x.shape[-2:] == (h, w):
        return x
    if chroma and x.shape[-2:] == (2 * h, 2 * w):
        return F.avg_pool2d(x, 2)
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=h < x.shape[-2])


def backdrop(img: torch.Tensor, spec: FrameSpec) -> torch.Tensor:
    """The blur fill before it is enlarged: the image scaled to cover the frame, at 1/BLUR_DIV of
    its size, smoothed. img (B, C, R, R) -> (B, C, h, w), the frame's aspect."""
    long = max(spec.width, spec.height)
    side = max(4, round(long / BLUR_DIV))
    small = F.interpolate(img, size=(side, side), mode="bilinear", align_corners=False, antialias=side < img.shape[-1])
    h, w = max(2, round(side * spec.height / long)), max(2, round(side * spec.width / long))
    y, x = (side - h) // 2, (side - w) // 2
    small = small[..., y:y + h, x:x + w]
    c = small.shape[1]
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=img.device, dtype=img.dtype) / 16
    small = F.conv2d(F.pad(small, (2, 2, 0, 0), mode="replicate"), k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(F.pad(small, (0, 0, 2, 2), mode="replicate"), k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def place(img: torch.Tensor, spec: FrameSpec, black: torch.Tensor, half: bool = False,
          small: torch.Tensor | None = None) -> torch.Tensor:
    """The frame from the generator's images img (B, C, R, R): resized to the frame's image side
    and placed on spec.fill. `black` (C,): the planes' black; `half`: chroma planes at half
    resolution; `small`: backdrop(img) for the blur fill (computed once for every plane).
    Returns (B, C, height, width), or halved."""
    d = 2 if half else 1
    side, w, h, x, y = spec.side // d, spec.width // d, spec.height // d, spec.x // d, spec.y // d
    image = resize(img, side, side, half)  # (B, C, side, side)
    if spec.is_square:
        return image
    if spec.fill == "mirror":  # the image's edge strips, flipped (the fills are narrower than the image)
        if x:
            image = torch.cat([image[..., :x].flip(-1), image, image[..., side - (w - side - x):].flip(-1)], -1)
        if y:
            image = torch.cat([image[..., :y, :].flip(-2), image, image[..., side - (h - side - y):, :].flip(-2)], -2)
        return image
    b, c = image.shape[:2]
    black = black.to(image.device, image.dtype).view(1, c, 1, 1)
    if spec.fill == "blur":
        if small is None:
            small = backdrop(img, spec)
        canvas = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        canvas = canvas.sub_(black).mul_(DARKEN).add_(black)
    else:  # black
        canvas = black.expand(b, c, h, w).clone()
    canvas[..., y:y + side, x:x + side] = image
    return canvas


def compose_rgb(img: torch.Tensor, spec: FrameSpec, mark: "Sprite | None" = None) -> torch.Tensor:
    """RGB frames (B, 3, height, width) in [0, 1] from the generator's images (B, 3, R, R)."""
    out = place(img, spec, torch.zeros(3))
    if mark is not None:
        mark.draw_rgb(out)
    return out


def compose_yuv(yuv: torch.Tensor, spec: FrameSpec, matrix_off: tuple[torch.Tensor, torch.Tensor],
                mark: "Sprite | None" = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Y (B, 1, height, width) and CbCr (B, 2, height/2, width/2) levels of the frames, from the
    generator's images converted to Y'CbCr levels (B, 3, R, R); matrix_off: the conversion
    (render._yuv_weights), for the mark's colours and the planes' black."""
    m, off = matrix_off
    small = backdrop(yuv, spec) if spec.fill == "blur" and not spec.is_square else None
    y = place(yuv[:, :1], spec, off[:1], False, None if small is None else small[:, :1])
    uv = place(yuv[:, 1:], spec, off[1:], True, None if small is None else small[:, 1:])
    if mark is not None:
        mark.draw_yuv(y, uv, m, off)
    return y, uv


# ---- sprites: the untrained mark and the captions -----------------------------------------------------

@dataclass(frozen=True, eq=False)
class Sprite:
    """A picture drawn over frames at (x, y): premultiplied RGB and alpha, even sides at an even
    place (the chroma planes' 2x2 blocks). Drawn with the same blend in RGB and in Y'CbCr (a
    colour's levels are m @ rgb + off, so a premultiplied one's m @ p + off x alpha)."""

    x: int
    y: int
    premult: np.ndarray  # (h, w, 3) float32 in [0, 1]: colour x alpha
    alpha: np.ndarray  # (h, w) float32 in [0, 1]

    @classmethod
    def from_rgba(cls, x: int, y: int, rgba: np.ndarray) -> "Sprite":
        """From an (h, w, 4) uint8 picture with straight alpha."""
        a = rgba[..., 3].astype(np.float32) / 255
        return cls(x, y, rgba[..., :3].astype(np.float32) / 255 * a[..., None], a)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in frame pixels."""
        h, w = self.alpha.shape
        return self.x, self.y, self.x + w, self.y + h

    def _tensors(self, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.from_numpy(self.premult).to(device, dtype).permute(2, 0, 1)  # (3, h, w)
        return p, torch.from_numpy(self.alpha).to(device, dtype)[None]  # (1, h, w)

    def draw_rgb(self, frames: torch.Tensor) -> None:
        """Over RGB frames (B, 3, H, W) in [0, 1], in place."""
        p, a = self._tensors(frames.device, frames.dtype)
        x0, y0, x1, y1 = self.box
        frames[..., y0:y1, x0:x1].mul_(1 - a).add_(p)

    def draw_yuv(self, y: torch.Tensor, uv: torch.Tensor, m: torch.Tensor, off: torch.Tensor) -> None:
        """Over Y (B, 1, H, W) and CbCr (B, 2, H/2, W/2) levels, in place; the chroma planes take
        the 2x2 means of the sprite."""
        p, a = self._tensors(y.device, y.dtype)
        pyuv = torch.einsum("ij,jhw->ihw", m.to(y.dtype), p) + off.to(y.dtype)[:, None, None] * a  # (3, h, w)
        x0, y0, x1, y1 = self.box
        y[..., y0:y1, x0:x1].mul_(1 - a).add_(pyuv[:1])
        a2, p2 = F.avg_pool2d(a[None], 2)[0], F.avg_pool2d(pyuv[None, 1:], 2)[0]
        uv[..., y0 // 2:y1 // 2, x0 // 2:x1 // 2].mul_(1 - a2).add_(p2)

    def blend_planes(self, planes: np.ndarray, m: np.ndarray, off: np.ndarray) -> None:
        """Over one frame's yuv420p planes ((H·3/2, W) uint8, on the host), in place, clipped to
        the frame: what the encoder thread does with a caption."""
        h, w = planes.shape[0] * 2 // 3, planes.shape[1]
        x0, y0, x1, y1 = max(0, self.x), max(0, self.y), min(w, self.box[2]), min(h, self.box[3])
        if x1 <= x0 or y1 <= y0:
            return
        flat = planes.reshape(-1)
        a = self.alpha[y0 - self.y:y1 - self.y, x0 - self.x:x1 - self.x]
        m, off = np.asarray(m, np.float32), np.asarray(off, np.float32)
        p = self.premult[y0 - self.y:y1 - self.y, x0 - self.x:x1 - self.x] @ m.T + a[..., None] * off  # levels
        luma = flat[:h * w].reshape(h, w)
        luma[y0:y1, x0:x1] = np.clip(luma[y0:y1, x0:x1] * (1 - a) + p[..., 0] + 0.5, 0, 255)  # (truncated: rounded)

        def quarter(v):  # 2x2 means
            return (v[0::2, 0::2] + v[1::2, 0::2] + v[0::2, 1::2] + v[1::2, 1::2]) * 0.25

        a2 = quarter(a)
        q = h * w // 4
        for k, lo in enumerate((h * w, h * w + q)):
            plane = flat[lo:lo + q].reshape(h // 2, w // 2)[y0 // 2:y1 // 2, x0 // 2:x1 // 2]
            plane[...] = np.clip(plane * (1 - a2) + quarter(p[..., 1 + k]) + 0.5, 0, 255)


def untrained_mark(width: int, height: int, caption_position: str = "bottom") -> Sprite | None:
    """The UNTRAINED PREVIEW mark for a width x height frame, in the corner away from the captions
    (top-left; bottom-left when they are at the top); None when not even "UNTRAINED" fits legibly."""
    short = min(width, height)
    fs = max(MARK_MIN_PX, round(short / 40))
    for text in MARK_TEXTS:
        img = _mark_picture(text, fs)
        if img.shape[1] <= MARK_WIDTH * width and img.shape[0] <= 0.25 * height:
            margin = max(2, short // 64) // 2 * 2
            top = caption_position != "top"
            return Sprite.from_rgba(margin, margin if top else height - margin - img.shape[0], img)
    return None


def mark_clear(mark: Sprite | None, height: int) -> tuple[int, int]:
    """(top, bottom): the bands of a frame's height the captions keep clear of for `mark`."""
    if mark is None:
        return 0, 0
    x0, y0, x1, y1 = mark.box
    gap = max(2, (y1 - y0) // 4)
    return (y1 + gap, 0) if y0 < height - y1 else (0, height - y0 + gap)


@functools.lru_cache(maxsize=16)
def _mark_picture(text: str, size: int) -> np.ndarray:
    """(h, w, 4) uint8: `text` in white on a rounded dark translucent box; even sides."""
    from PIL import Image, ImageDraw

    from .fonts import FontFinder

    fnt = FontFinder().font(text, size)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    x0, y0, x1, y1 = probe.textbbox((0, 0), text, font=fnt)
    pad = max(2, size // 3)
    w, h = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    w, h = w + w % 2, h + h % 2
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=max(1, pad // 2), fill=(0, 0, 0, 165))
    draw.text((pad - x0, pad - y0), text, font=fnt, fill=(255, 255, 255, 255))
    return np.asarray(img).copy()
