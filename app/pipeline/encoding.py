"""Pixels -> bytes: every frame back into its container, with the colour profile and no other metadata."""
from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
from PIL import Image

from app.errors import ImageError
from app.pipeline.imageio import Picture, written_format, written_profile

_ICC_MARKER = b"ICC_PROFILE\x00"
_ICC_CHUNK = 65519 - len(_ICC_MARKER) - 2  # profile bytes per APP2 segment


def encode(picture: Picture, frames: list[np.ndarray], quality: int) -> bytes:
    """Encode redacted frames as `picture` was stored: same format, frames, timing and profile.

    EXIF, XMP, comments and every other piece of metadata are left behind; the ICC profile
    stays, so the untouched pixels keep their colours (a profile describes the screen, not
    the person). Single JPEGs and PNGs go through OpenCV (faster), the rest through Pillow.
    """
    info, kind = picture.info, written_format(picture.info)
    deep = frames[0].dtype == np.uint16
    if kind in ("JPEG", "MPO", "GIF", "BMP") or kind == "WEBP" and deep:
        frames = [_eight_bits(f) for f in frames]
        deep = False
    if deep and kind == "TIFF" and written_profile(info):
        raise ImageError("A 16-bit TIFF with a colour profile cannot be written back with its profile.", "unsupported")
    if deep and len(frames) > 1:  # pages of a 16-bit TIFF (Pillow writes 8-bit colour only)
        ok, buffer = cv2.imencodemulti(".tiff", frames)
        if not ok:
            raise ImageError("The redacted pages could not be encoded as a 16-bit TIFF.", "unsupported")
        return buffer.tobytes()
    if len(frames) == 1 and (kind in ("JPEG", "PNG") or deep):
        return with_profile(_opencv(frames[0], kind, quality), kind, written_profile(info))
    if kind == "BMP" and frames[0].ndim == 3 and frames[0].shape[2] == 4:
        return _bmp_with_alpha(frames[0])
    return _pillow(picture, frames, kind, quality)


def _eight_bits(frame: np.ndarray) -> np.ndarray:
    return (frame >> 8).astype(np.uint8) if frame.dtype == np.uint16 else frame


def _opencv(frame: np.ndarray, kind: str, quality: int) -> bytes:
    ext = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tiff"}[kind]
    params: list[int] = []
    if ext == ".jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        if frame.ndim == 3 and frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    ok, buffer = cv2.imencode(ext, frame, params)
    if not ok:
        raise ImageError(f"The redacted image could not be encoded as {kind}.", "unsupported")
    return buffer.tobytes()


def with_profile(data: bytes, kind: str, icc: bytes | None) -> bytes:
    """Put an ICC profile into an encoded JPEG (APP2 segments) or PNG (an iCCP chunk)."""
    if not icc:
        return data
    if kind == "JPEG":
        parts = [icc[i:i + _ICC_CHUNK] for i in range(0, len(icc), _ICC_CHUNK)]
        segments = b"".join(b"\xff\xe2" + struct.pack(">H", 2 + len(_ICC_MARKER) + 2 + len(part)) + _ICC_MARKER
                            + bytes([n, len(parts)]) + part for n, part in enumerate(parts, 1))
        start = 2 + (2 + int.from_bytes(data[4:6], "big") if data[2:4] == b"\xff\xe0" else 0)  # after JFIF's APP0
        return data[:start] + segments + data[start:]
    body = b"icc\x00\x00" + zlib.compress(icc)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    return data[:33] + chunk + data[33:]  # right after the signature (8) and IHDR (25)


def _image(frame: np.ndarray) -> Image.Image:
    if frame.ndim == 3 and frame.shape[2] == 4:
        return Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGRA2RGBA))
    return Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def _pillow(picture: Picture, frames: list[np.ndarray], kind: str, quality: int) -> bytes:
    """Write with Pillow: animations, pages, MPO, GIF, WebP, TIFF, BMP."""
    images = [_image(f if kind not in ("JPEG", "MPO") or f.ndim == 2 or f.shape[2] == 3 else f[:, :, :3])
              for f in frames]
    options: dict = {"format": kind, "save_all": len(images) > 1, "append_images": images[1:]}
    profile = written_profile(picture.info)
    if profile and kind != "GIF":
        options["icc_profile"] = profile
    if kind in ("JPEG", "MPO", "WEBP"):
        options["quality"] = int(quality)
    if kind == "WEBP":  # colour under alpha 0 is kept as it is, not cleared (`exact`)
        options.update(exact=True, lossless=picture.info.lossless)
    if kind == "TIFF":
        options["compression"] = "tiff_lzw"
    if picture.durations and len(images) > 1:
        options["duration"] = picture.durations
        if picture.loop is not None:
            options["loop"] = picture.loop
        elif kind == "PNG":
            options["loop"] = 0
    out = io.BytesIO()
    try:
        images[0].save(out, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise ImageError(f"The redacted image could not be written back as {kind} ({exc}).", "unsupported") from exc
    return out.getvalue()


def _bmp_with_alpha(frame: np.ndarray) -> bytes:
    """A 32-bit BMP whose header names the alpha channel (BITMAPV4HEADER, bit fields), so alpha survives."""
    height, width = frame.shape[:2]
    rows = np.ascontiguousarray(frame[::-1]).tobytes()  # bottom-up BGRA rows: 4 bytes a pixel, no padding
    header = struct.pack("<IiiHHIIiiII", 108, width, height, 1, 32, 3, len(rows), 2835, 2835, 0, 0)
    header += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000) + b"BGRs" + bytes(48)
    offset = 14 + len(header)
    return b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + header + rows
