"""Decoding applies EXIF orientation; encoding writes no metadata; bad files fail in plain words."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from app.errors import ImageError
from app.pipeline.encoding import encode
from app.pipeline.imageio import ImageInfo, Picture, probe, read_image
from tests.helpers import jpeg_with_exif


def encode_as(pixels: np.ndarray, kind: str) -> bytes:
    """Encode one frame as a file of format `kind` read from disk would be written back."""
    info = ImageInfo(kind, pixels.shape[1], pixels.shape[0], 1, pixels.ndim == 3 and pixels.shape[2] == 4)
    return encode(Picture(info, [pixels]), [pixels], 92)

# Make, Model, Orientation, XMP, IPTC, Photoshop, EXIF IFD, GPS IFD, maker note.
PRIVATE_TAGS = {0x010F, 0x0110, 0x0112, 700, 33723, 34377, 0x8769, 0x8825, 0x927C}


def marker_image() -> np.ndarray:
    """A landscape image whose corners differ, so any rotation or flip shows."""
    img = np.zeros((60, 100, 3), np.uint8)
    img[:20, :20] = (0, 0, 255)  # red, top left
    img[:20, -20:] = (0, 255, 0)  # green, top right
    img[-20:, :20] = (255, 0, 0)  # blue, bottom left
    return img


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_as_pillow_shows_it(tmp_path, orientation):
    path = tmp_path / "o.jpg"
    path.write_bytes(jpeg_with_exif(marker_image(), orientation))
    picture = read_image(path, 10**8)
    pixels, info = picture.frames[0], picture.info
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))[:, :, ::-1]
    assert info.orientation == orientation
    assert pixels.shape == expected.shape
    assert np.abs(pixels.astype(int) - expected).mean() < 3


def test_output_carries_no_metadata(tmp_path):
    path = tmp_path / "gps.jpg"
    original = jpeg_with_exif(marker_image(), 6)
    assert b"FaceGuardTestCam" in original
    path.write_bytes(original)
    pixels = read_image(path, 10**8).frames[0]
    for suffix in ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF"):
        out = encode_as(pixels, suffix)
        assert b"FaceGuardTestCam" not in out and b"Exif" not in out, suffix
        reread = Image.open(io.BytesIO(out))
        tags = set(reread.getexif())
        assert not tags & PRIVATE_TAGS, (suffix, tags & PRIVATE_TAGS)
        if suffix != "TIFF":  # a TIFF header is itself a tag directory (size, layout)
            assert not tags, suffix
        assert reread.size == (60, 100), suffix  # upright: the pixels were turned, not tagged


def test_alpha_pngs_keep_alpha_and_16_bit_pngs_keep_their_depth(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 3] = 128
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    picture = read_image(tmp_path / "a.png", 10**8)
    pixels, info = picture.frames[0], picture.info
    assert info.has_alpha and pixels.shape == (20, 30, 4)
    deep = np.full((20, 30, 3), 4095, np.uint16)  # 12-bit data in a 16-bit PNG
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    pixels = read_image(tmp_path / "d.png", 10**8).frames[0]
    assert pixels.dtype == np.uint16 and pixels.shape == (20, 30, 3) and np.array_equal(pixels, deep)
    assert cv2.imdecode(np.frombuffer(encode_as(pixels, "PNG"), np.uint8), cv2.IMREAD_UNCHANGED).max() == 4095
    as_jpeg = cv2.imdecode(np.frombuffer(encode_as(pixels, "JPEG"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert as_jpeg.dtype == np.uint8 and abs(int(as_jpeg.max()) - 4095 // 256) <= 1


@pytest.mark.parametrize("payload", [b"", b"hello, not an image", b"\xff\xd8\xff\xe0" + b"\0" * 50])
def test_non_images_fail_with_a_reason(tmp_path, payload):
    path = tmp_path / "x.jpg"
    path.write_bytes(payload)
    with pytest.raises(ImageError, match="not a readable image|could not be decoded"):
        read_image(path, 10**8)


def test_pixel_limit_is_checked_from_the_header(tmp_path):
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), np.zeros((300, 400, 3), np.uint8))
    assert probe(path, 10**6).width == 400
    with pytest.raises(ImageError, match="megapixels"):
        probe(path, 100_000)
