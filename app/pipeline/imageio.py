"""Bytes <-> pixels: probe and decode (EXIF orientation applied), encode with no metadata."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from app.errors import ImageError

# Extensions the product treats as images, and the encoder each one is written with.
IMAGE_EXTENSIONS = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png", ".webp": ".webp",
                    ".bmp": ".bmp", ".tif": ".tiff", ".tiff": ".tiff"}
_KNOWN_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO"}
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    orientation: int
    has_alpha: bool


def is_image_name(name: str) -> bool:
    """Tell whether a file name has one of the image extensions the product handles."""
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def probe(path: Path, max_pixels: int) -> ImageInfo:
    """Read only the header: format, size, orientation; refuse what is not a supported image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                fmt, (width, height), mode = img.format, img.size, img.mode
                orientation = int(img.getexif().get(_ORIENTATION_TAG, 1) or 1)
                has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
    except Image.DecompressionBombError:
        raise ImageError(f"The image has too many pixels (over {max_pixels / 1e6:.0f} megapixels).") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError("This file is not a readable image (unknown format, corrupt or empty).") from exc
    if fmt not in _KNOWN_FORMATS:
        raise ImageError(f"Images in {fmt} format are not supported; use JPEG, PNG, WebP, BMP or TIFF.")
    if width * height > max_pixels:
        raise ImageError(f"The image is {width}x{height} = {width * height / 1e6:.0f} megapixels; "
                         f"the limit is {max_pixels / 1e6:.0f}.")
    return ImageInfo(fmt, width, height, orientation if 1 <= orientation <= 8 else 1, has_alpha)


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) so the pixels stand upright."""
    if orientation == 2:
        return cv2.flip(pixels, 1)
    if orientation == 3:
        return cv2.rotate(pixels, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(pixels, 0)
    if orientation == 5:
        return cv2.transpose(pixels)
    if orientation == 6:
        return cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(pixels), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(pixels, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return pixels


def _to_bgr(pixels: np.ndarray, keep_alpha: bool) -> np.ndarray:
    """Normalise any decoded layout to BGR, or BGRA when alpha is kept; 8 and 16 bits stay as they are.

    The real pixel values are what gets written back: a 12-bit scan in a 16-bit PNG keeps
    its values (detection sees a stretched copy, see `resample.for_detection`).
    """
    if pixels.dtype not in (np.uint8, np.uint16):
        pixels = cv2.convertScaleAbs(pixels, alpha=255.0 / max(float(pixels.max()), 1.0))
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGRA if keep_alpha else cv2.COLOR_GRAY2BGR)
    channels = pixels.shape[2]
    if channels == 1:
        return _to_bgr(pixels[:, :, 0], keep_alpha)
    if channels == 2:
        gray = cv2.cvtColor(pixels[:, :, 0], cv2.COLOR_GRAY2BGR)
        return np.dstack([gray, pixels[:, :, 1]]) if keep_alpha else gray
    if channels == 4 and not keep_alpha:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    return pixels


def jpeg_is_whole(data: bytes) -> bool:
    """Tell whether a JPEG's last scan is closed by an end-of-image marker.

    libjpeg fills a cut-off JPEG with grey and calls it decoded; a truncated file has
    no EOI (FF D9) after its last start-of-scan (FF DA). Inside scan data every FF byte
    is stuffed (FF 00), so neither marker can appear there by accident.
    """
    return data.rfind(b"\xff\xd9") > data.rfind(b"\xff\xda") > 0


def read_image(path: Path, max_pixels: int) -> tuple[np.ndarray, ImageInfo]:
    """Decode an image file to upright BGR(A) pixels (8 or 16 bits), checking its size first."""
    info = probe(path, max_pixels)
    data = np.fromfile(str(path), dtype=np.uint8)
    if info.format in ("JPEG", "MPO") and not jpeg_is_whole(data.tobytes()):
        raise ImageError("The image is truncated (the file ends before the picture does).")
    flags = (cv2.IMREAD_UNCHANGED if info.has_alpha
             else cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    pixels = cv2.imdecode(data, flags) if data.size else None
    if pixels is None or pixels.size == 0:
        raise ImageError("The image could not be decoded (truncated or corrupt).")
    if pixels.shape[0] != info.height or pixels.shape[1] != info.width:
        raise ImageError("The image could not be decoded completely (truncated or corrupt).")
    return orient(_to_bgr(pixels, info.has_alpha), info.orientation), info


def encode_image(pixels: np.ndarray, suffix: str, jpeg_quality: int) -> bytes:
    """Encode pixels in the format a file name's suffix asks for; no metadata is written."""
    ext = IMAGE_EXTENSIONS.get(suffix.lower(), ".png")
    if pixels.dtype == np.uint16 and ext not in (".png", ".tiff"):
        pixels = (pixels >> 8).astype(np.uint8)  # formats without 16-bit samples
    params: list[int] = []
    if ext == ".jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
        if pixels.ndim == 3 and pixels.shape[2] == 4:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    elif ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(jpeg_quality)]
    ok, buffer = cv2.imencode(ext, pixels, params)
    if not ok:
        raise ImageError(f"The redacted image could not be encoded as {ext}.")
    return buffer.tobytes()


def preview_bytes(path: Path, longest: int = 480) -> bytes:
    """A small JPEG of an image the product wrote (already redacted, already upright)."""
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ImageError("The redacted photo could not be read back for a preview.")
    scale = min(1.0, longest / max(pixels.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return encode_image(pixels, ".jpg", 80)


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes so that the file appears whole or not at all."""
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
