"""Image loading and the pixel pipeline shared by calibration (host) and inference (device).

All functions work on numpy arrays of shape (H, W, 3), dtype uint8, RGB order unless stated.
Resizing uses Pillow's bilinear filter everywhere, so the host calibrates on exactly the pixels
the device will later feed the model.
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgekit.errors import EdgekitError
from edgekit.safeio import open_regular

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def find_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files below ``folder`` (by extension, case-insensitive), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgekitError(f"{folder}: no such image folder", "check the path")
    pattern = "**/*" if recursive else "*"
    return sorted(
        p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


MAX_PIXELS = 50_000_000  # width x height; a 48 MP phone photo fits, a decompression bomb not
_LIMIT_HINT = "images above 50 megapixels are refused; scale it down first"


def _to_uint8_gray(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float grayscale -> 8-bit ``L`` without saturating.

    Pillow's own ``convert("L")`` clips these modes at 255, so a 16-bit PNG (values up to 65535)
    turns white. Here ``I;16*`` maps 0..65535 to 0..255 (``v / 257``, rounded); ``I`` does the
    same unless every value already fits 0..255 (an 8-bit image stored wide); ``F`` is taken as
    0..1 when every value lies there (the float image convention), else clipped to 0..255.
    NaN becomes 0.
    """
    a = np.asarray(img)
    if img.mode == "F":
        a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if a.size and a.min() >= 0.0 and a.max() <= 1.0:
            a = a * 255.0
        out = np.clip(np.rint(a), 0, 255)
    else:
        a = a.astype(np.int64)
        if img.mode == "I" and a.size and a.min() >= 0 and a.max() <= 255:
            out = a
        else:
            out = (np.clip(a, 0, 65535) * 255 + 32767) // 65535  # round(v / 257)
    return Image.fromarray(out.astype(np.uint8), "L")


def to_rgb(img: Image.Image) -> np.ndarray:
    """Pillow image of any mode -> (H, W, 3) uint8 RGB.

    Transparent pixels are composited over black: a photo with transparent borders (augmented
    data sets often have them) then looks the same whether the alpha was honoured or, as OpenCV's
    ``imread`` does, simply dropped from a black-backed image. Wide grayscale (16-bit, 32-bit,
    float) is scaled to 8 bits, not clipped (see :func:`_to_uint8_gray`).
    """
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_uint8_gray(img)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode in ("P", "L", "RGB") and "transparency" in img.info
    ):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _check_pixels(path: Path, img: Image.Image) -> None:
    w, h = img.size
    if w < 1 or h < 1:
        raise EdgekitError(f"{path}: image has no pixels ({w}x{h})", "is it a valid image?")
    if w * h > MAX_PIXELS:
        raise EdgekitError(f"{path}: image is too large ({w}x{h} pixels)", _LIMIT_HINT)


def _open_errors(path: Path, e: BaseException) -> EdgekitError:
    if isinstance(e, Image.DecompressionBombError):  # Pillow's own limit, hit inside open()
        return EdgekitError(f"{path}: image is too large (over {MAX_PIXELS} pixels)", _LIMIT_HINT)
    if isinstance(e, Image.UnidentifiedImageError):  # its text names Pillow's file object
        return EdgekitError(f"{path}: cannot read image (unknown or damaged format)",
                            "is it a valid JPEG, PNG, BMP or GIF?")  # fmt: skip
    return EdgekitError(f"{path}: cannot read image ({e})", "is it a valid image?")


@contextlib.contextmanager
def _open_image(path: Path) -> Iterator[Image.Image]:
    """The image in a regular file, opened (header read, pixels not yet decoded) and checked
    against :data:`MAX_PIXELS`; Pillow's errors in the block become one EdgekitError line."""
    with open_regular(path, "image") as f:
        try:
            with warnings.catch_warnings():
                # Our own limit applies (MAX_PIXELS); Pillow's warnings would only be noise.
                warnings.simplefilter("ignore")  # Pillow warns about odd files it still decodes
                with Image.open(f) as img:
                    _check_pixels(path, img)
                    yield img
        except EdgekitError:
            raise
        except _DECODE_ERRORS as e:
            raise _open_errors(path, e) from None


def check_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """Cheap check of an image file before decoding it: a regular file whose header Pillow
    recognises, at most :data:`MAX_PIXELS` pixels. Reads only the header. Returns
    (width, height); raises EdgekitError otherwise (a folder source skips and counts those)."""
    with _open_image(Path(path)) as img:
        return img.size


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB. Raises EdgekitError if it cannot be decoded,
    is not a regular file, or has more than :data:`MAX_PIXELS` pixels (checked from the header,
    before any pixel is decoded)."""
    path = Path(path)
    if path.is_dir():
        raise EdgekitError(
            f"{path}: is a folder, not an image", f"pass the images, e.g. {path}/*.jpg"
        )
    try:
        with _open_image(path) as img:
            img.load()
            return to_rgb(img)
    except MemoryError:
        raise EdgekitError(f"{path}: not enough memory to decode it", _LIMIT_HINT) from None


_DECODE_ERRORS = (
    UnidentifiedImageError,
    Image.DecompressionBombError,
    OSError,
    ValueError,
    SyntaxError,
    TypeError,
    IndexError,
    KeyError,
    struct.error,
    ZeroDivisionError,
    EOFError,
)


def resize(rgb: np.ndarray, size: tuple[int, int], mode: str = "stretch") -> np.ndarray:
    """Resize (H, W, 3) uint8 to ``size`` = (height, width).

    Modes: ``stretch`` ignores the aspect ratio (what Keras' ``image_dataset_from_directory`` and
    Coral's examples do); ``crop`` takes the largest centred crop of the target aspect first;
    ``pad`` letterboxes the whole image into the target with black bars.
    """
    h, w = int(size[0]), int(size[1])
    if rgb.shape[0] == h and rgb.shape[1] == w:
        return rgb
    img = Image.fromarray(rgb)
    if mode == "stretch":
        return np.asarray(img.resize((w, h), Image.BILINEAR))
    src_h, src_w = rgb.shape[:2]
    if mode == "crop":
        scale = max(w / src_w, h / src_h)
        cw, ch = round(w / scale), round(h / scale)
        left, top = (src_w - cw) // 2, (src_h - ch) // 2
        return np.asarray(img.resize((w, h), Image.BILINEAR, box=(left, top, left + cw, top + ch)))
    if mode == "pad":
        scale = min(w / src_w, h / src_h)
        nw, nh = max(1, round(src_w * scale)), max(1, round(src_h * scale))
        out = np.zeros((h, w, 3), dtype=np.uint8)
        top, left = (h - nh) // 2, (w - nw) // 2
        out[top : top + nh, left : left + nw] = np.asarray(img.resize((nw, nh), Image.BILINEAR))
        return out
    raise EdgekitError(f"unknown resize mode {mode!r}", "use one of: stretch, crop, pad")


def prepare(
    rgb: np.ndarray,
    size: tuple[int, int],
    resize_mode: str = "stretch",
    color: str = "rgb",
    channels: int = 3,
) -> np.ndarray:
    """RGB frame -> (H, W, channels) uint8 pixels in the model's size and channel order.

    ``channels=1`` (a grayscale model) gives ITU-R 601 luma, with the weights and rounding of
    Pillow's ``convert("L")``, whatever ``color`` says.
    """
    out = resize(rgb, size, resize_mode)
    if color not in ("rgb", "bgr"):
        raise EdgekitError(f"unknown color order {color!r}", "use rgb or bgr")
    if channels == 1:
        luma = out.astype(np.uint32) @ np.array([299, 587, 114], dtype=np.uint32)
        return ((luma + 500) // 1000).astype(np.uint8)[..., None]
    if channels != 3:
        raise EdgekitError(f"{channels}-channel input is not an image", "use 1 or 3 channels")
    if color == "bgr":
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


def to_float(pixels: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """uint8 pixels -> float32 in ``value_range``: ``lo + p * (hi - lo) / 255``."""
    lo, hi = float(value_range[0]), float(value_range[1])
    return (pixels.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)).astype(
        np.float32
    )


@dataclass(frozen=True)
class Letterbox:
    """How :func:`letterbox` placed an original ``src_size`` = (width, height) image into the
    model input: resized to ``new_size`` = (width, height) pixels, its top-left corner at
    ``pad`` = (left, top). Original pixel coordinate ``x`` lands on ``pad[0] + x * sx`` with
    ``sx = new_size[0] / src_size[0]`` (Pillow resizes edge to edge, so this holds for box
    coordinates exactly), likewise for y. A plain stretch is the case ``pad == (0, 0)``,
    ``new_size`` = the input size."""

    src_size: tuple[int, int]
    new_size: tuple[int, int]
    pad: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy): input pixels per original pixel along x and y."""
        return self.new_size[0] / self.src_size[0], self.new_size[1] / self.src_size[1]

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) x0, y0, x1, y1 in original pixels -> model input pixels."""
        sx, sy = self.scale
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        mul = np.array([sx, sy, sx, sy])
        add = np.array([self.pad[0], self.pad[1], self.pad[0], self.pad[1]], dtype=np.float64)
        return b * mul + add

    def to_original(self, boxes: np.ndarray, clip: bool = True) -> np.ndarray:
        """(N, 4) x0, y0, x1, y1 in model input pixels -> original pixels: the exact inverse of
        :meth:`to_input`, clipped to the original image unless ``clip`` is False."""
        sx, sy = self.scale
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        add = np.array([self.pad[0], self.pad[1], self.pad[0], self.pad[1]], dtype=np.float64)
        out = (b - add) / np.array([sx, sy, sx, sy])
        if clip:
            w, h = self.src_size
            out = np.clip(out, 0.0, np.array([w, h, w, h], dtype=np.float64))
        return out


def letterbox(
    rgb: np.ndarray, size: tuple[int, int], fill: int = 114
) -> tuple[np.ndarray, Letterbox]:
    """Fit (H, W, 3) uint8 into ``size`` = (height, width) keeping its aspect ratio, centred on a
    ``fill`` grey background (Ultralytics' letterbox: gray 114, padding split evenly with the odd
    pixel at the bottom/right). Returns the (height, width, 3) image and its :class:`Letterbox`.
    """
    h, w = int(size[0]), int(size[1])
    if not 0 <= int(fill) <= 255:
        raise EdgekitError(f"letterbox fill {fill} is not a pixel value", "use 0..255")
    src_h, src_w = rgb.shape[:2]
    scale = min(w / src_w, h / src_h)
    nw, nh = max(1, min(w, round(src_w * scale))), max(1, min(h, round(src_h * scale)))
    left, top = (w - nw) // 2, (h - nh) // 2
    box = Letterbox((int(src_w), int(src_h)), (nw, nh), (left, top))
    if (nw, nh) == (w, h) and (src_w, src_h) == (w, h):
        return rgb, box
    out = np.full((h, w, 3), int(fill), dtype=np.uint8)
    resized = (
        rgb if (nw, nh) == (src_w, src_h) else Image.fromarray(rgb).resize((nw, nh), Image.BILINEAR)
    )
    out[top : top + nh, left : left + nw] = np.asarray(resized)
    return out, box


def stretch_box(rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """:func:`resize` with ``stretch`` plus the :class:`Letterbox` record that undoes it."""
    src_h, src_w = rgb.shape[:2]
    h, w = int(size[0]), int(size[1])
    return resize(rgb, size, "stretch"), Letterbox((int(src_w), int(src_h)), (w, h), (0, 0))
