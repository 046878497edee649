"""Bytes -> pixels: probe a file, decode every frame or page upright, keep what writing it back needs."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps, ImageSequence

from app.errors import ImageError
from app.pipeline.formats import CONVERTED, jpeg_end, sniff

_ORIENTATION_TAG = 0x0112
# A file's frames together may hold this many times MAX_PIXELS (an animation of 1080p frames: ~190 frames).
FRAMES_BUDGET = 4
_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}

try:  # HEIC/HEIF: an optional extra (its binary wheels are GPL-2.0), see the README
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_PROBLEM = None
except ImportError:
    HEIF_PROBLEM = "HEIC/HEIF photos need the optional HEIC support: pip install 'faceguard[heic]'."


@dataclass(frozen=True)
class ImageInfo:
    format: str  # as `formats.sniff` names it; Pillow's MPO for a multi-picture JPEG
    width: int  # of the first frame, upright
    height: int
    orientation: int
    has_alpha: bool
    frames: int = 1
    deep: bool = False  # more than 8 bits per sample (written back as 16 bits)
    icc: bytes | None = None  # the colour profile, kept with the pixels untouched
    lossless: bool = False  # a WebP stored losslessly (written back losslessly)


@dataclass
class Picture:
    """A photo's frames (one for most photos), upright BGR or BGRA, 8 or 16 bits, and how to write them back."""

    info: ImageInfo
    frames: list[np.ndarray]
    durations: list[int] = field(default_factory=list)  # ms per frame, for animations
    loop: int | None = None  # animations: times to play (0: for ever); None: the file said nothing


Source = Path | bytes  # a file on disk, or its bytes (what a task carries to a worker)


def _bytes(source: Source) -> bytes:
    return source if isinstance(source, bytes) else Path(source).read_bytes()


def _open(data: bytes) -> Image.Image:
    """Open with Pillow; a huge image is refused by `probe`, not warned about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data))


def _is_deep(img: Image.Image, head: bytes) -> bool:
    """Tell whether samples have more than 8 bits (Pillow would cut 16-bit colour to 8)."""
    if img.mode.startswith(("I", "F")):
        return True
    if img.format == "PNG":
        return head[24] == 16
    if img.format == "TIFF":
        bits = img.tag_v2.get(258, (8,))
        return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    return False


def _webp_is_lossless(data: bytes) -> bool:
    """Tell whether a WebP's pictures are stored losslessly (VP8L chunks, no lossy VP8 ones)."""
    return b"VP8L" in data and b"VP8 " not in data


def probe(source: Source, max_pixels: int) -> ImageInfo:
    """Read only the header: format, size, frames, orientation, profile; refuse what cannot be processed."""
    data = _bytes(source)
    head = data[:32]
    kind = sniff(head)
    if kind == "HEIF" and HEIF_PROBLEM:
        raise ImageError(HEIF_PROBLEM, "needs_heic")
    if kind is None:
        raise ImageError("This file is not a readable image (its content is none of JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF).")
    try:
        with _open(data) as img:
            frames = getattr(img, "n_frames", 1)
            orientation = int(img.getexif().get(_ORIENTATION_TAG, 1) or 1)
            info = ImageInfo("MPO" if img.format == "MPO" else kind, img.width, img.height,
                             orientation if 1 <= orientation <= 8 else 1,
                             img.mode in _ALPHA_MODES or "transparency" in img.info, frames,
                             _is_deep(img, head), img.info.get("icc_profile") or None,
                             kind == "WEBP" and _webp_is_lossless(data))
    except Image.DecompressionBombError:
        raise ImageError(f"The image has too many pixels (over {max_pixels / 1e6:.0f} megapixels).", "too_large") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError("This file is not a readable image (unknown format, corrupt or empty).") from exc
    if info.width * info.height > max_pixels:
        raise ImageError(f"The image is {info.width}x{info.height} = {info.width * info.height / 1e6:.0f} "
                         f"megapixels; the limit is {max_pixels / 1e6:.0f}.", "too_large")
    if info.frames * info.width * info.height > FRAMES_BUDGET * max_pixels:
        raise ImageError(f"The file holds {info.frames} frames of {info.width}x{info.height}: more pixels than "
                         f"{FRAMES_BUDGET}x the limit of {max_pixels / 1e6:.0f} megapixels.", "too_large")
    if info.deep and info.frames > 1 and info.format != "TIFF":
        raise ImageError(f"Animated {info.format} files with 16-bit colour cannot be processed.", "unsupported")
    if info.orientation in (5, 6, 7, 8):  # the upright size
        info = replace(info, width=info.height, height=info.width)
    return info


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) so the pixels stand upright."""
    if orientation in (2, 4):
        return cv2.flip(pixels, 1 if orientation == 2 else 0)
    if orientation == 3:
        return cv2.rotate(pixels, cv2.ROTATE_180)
    if orientation in (5, 7):
        flipped = cv2.transpose(pixels)
        return flipped if orientation == 5 else cv2.rotate(flipped, cv2.ROTATE_180)
    if orientation in (6, 8):
        return cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE if orientation == 6 else cv2.ROTATE_90_COUNTERCLOCKWISE)
    return pixels


def _to_bgr(pixels: np.ndarray, keep_alpha: bool) -> np.ndarray:
    """Normalise a decoded layout to BGR, or BGRA when alpha is kept; 8 and 16 bits stay as they are.

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


def _icc_space(icc: bytes | None) -> bytes | None:
    """The colour space an ICC profile describes ('RGB ', 'GRAY', 'CMYK', ...), from its header."""
    return icc[16:20] if icc and len(icc) >= 20 else None


def written_profile(info: ImageInfo) -> bytes | None:
    """The profile written back with the redacted pixels: the photo's own where it describes RGB.

    Pixels are always written as RGB: a CMYK or grey profile was used to convert them to sRGB
    when they were read (or, for 16-bit grey, they are written as they were, untagged), and
    would tell other programs to read RGB pixels as CMYK or grey.
    """
    return info.icc if _icc_space(info.icc) == b"RGB " else None


def _pillow_frame(img: Image.Image, info: ImageInfo) -> np.ndarray:
    """One Pillow frame as upright BGR(A): profiles that are not RGB are converted to sRGB."""
    img.load()  # Pillow turns a TIFF page upright as it loads it and drops the tag: read it after loading
    orientation = img.tag_v2.get(_ORIENTATION_TAG, 1) if info.format == "TIFF" else info.orientation
    if info.icc and written_profile(info) is None:  # the converted copy has no TIFF tags
        img = ImageCms.profileToProfile(img, ImageCms.ImageCmsProfile(io.BytesIO(info.icc)),
                                        ImageCms.createProfile("sRGB"), outputMode="RGB")
    rgb = np.asarray(img.convert("RGBA" if info.has_alpha else "RGB"))
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA if info.has_alpha else cv2.COLOR_RGB2BGR)
    return orient(bgr, orientation if orientation in range(1, 9) else 1)


def _decode_opencv(data: np.ndarray, info: ImageInfo) -> list[np.ndarray]:
    """Decode a single JPEG, or 16-bit PNG and TIFF, with OpenCV (Pillow cuts 16-bit colour to 8 bits)."""
    flags = cv2.IMREAD_UNCHANGED if info.has_alpha else cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    if info.format == "TIFF":  # OpenCV turns TIFF pages upright itself, whatever the flags say
        ok, pages = cv2.imdecodemulti(data, flags)
        return [_to_bgr(p, info.has_alpha) for p in pages] if ok else []
    pixels = cv2.imdecode(data, flags) if data.size else None
    return [] if pixels is None else [orient(_to_bgr(pixels, info.has_alpha), info.orientation)]


def read_image(source: Source, max_pixels: int) -> Picture:
    """Decode every frame or page of an image (a file, or its bytes), upright, checking its size first."""
    raw = _bytes(source)
    info = probe(raw, max_pixels)
    data = np.frombuffer(raw, dtype=np.uint8)
    if info.format == "JPEG" and info.icc is None or info.format == "JPEG" and _icc_space(info.icc) == b"RGB ":
        end = jpeg_end(raw)
        if end is None:
            raise ImageError("The image is truncated (the file ends before the picture does).", "truncated")
        frames = _decode_opencv(data[:end], info)  # what follows the picture (a motion photo's video) is dropped
        picture = Picture(info, frames)
    elif info.deep:
        picture = Picture(info, _decode_opencv(data, info))
    else:
        picture = _decode_pillow(raw, info)
    if len(picture.frames) != info.frames or any(f.size == 0 for f in picture.frames):
        raise ImageError("The image could not be decoded completely (truncated or corrupt).")
    first = picture.frames[0]
    if first.shape[0] != info.height or first.shape[1] != info.width:
        raise ImageError("The image could not be decoded completely (truncated or corrupt).")
    return picture


def _decode_pillow(data: bytes, info: ImageInfo) -> Picture:
    """Decode every frame with Pillow: animations as whole frames with their timing, pages as they are."""
    frames, durations = [], []
    try:
        with _open(data) as img:
            for frame in ImageSequence.Iterator(img):
                frames.append(_pillow_frame(frame, info))
                durations.append(int(frame.info.get("duration", 0) or 0))
            loop = img.info.get("loop")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError("The image could not be decoded (truncated or corrupt).") from exc
    animated = info.frames > 1 and info.format in ("GIF", "PNG", "WEBP", "AVIF")
    return Picture(info, frames, durations if animated else [], loop if animated else None)


def written_format(info: ImageInfo) -> str:
    """The format a photo is written back in: its own, but JPEG (MPO for several frames) for HEIC and AVIF."""
    if info.format in CONVERTED:
        return "MPO" if info.frames > 1 else "JPEG"
    return info.format


def preview_bytes(source: Source, longest: int = 480) -> bytes:
    """A small JPEG of an image the product wrote (already redacted), upright: its first frame.

    A JPEG written losslessly may keep its orientation in EXIF (see `lossless`): it is applied.
    """
    try:
        with _open(_bytes(source)) as img:
            img.thumbnail((longest, longest), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            ImageOps.exif_transpose(img).convert("RGB").save(out, format="JPEG", quality=80)
            return out.getvalue()
    except (OSError, ValueError) as exc:
        raise ImageError("The redacted photo could not be read back for a preview.") from exc


def viewable_bytes(source: Source, upright: bool = True) -> bytes:
    """A full-size JPEG of a photo's first frame for a browser (`upright`: EXIF orientation applied).

    Upright by default: a JPEG written losslessly may keep its orientation in EXIF.
    """
    try:
        with _open(_bytes(source)) as img:
            img.seek(0)
            shown = ImageOps.exif_transpose(img) if upright else img
            out = io.BytesIO()
            shown.convert("RGB").save(out, format="JPEG", quality=92)
            return out.getvalue()
    except (OSError, ValueError) as exc:
        raise ImageError("The photo could not be read back to be shown.") from exc
