"""JPEGs for the lossless tests, made in code, and their coefficients read back through the library."""
from __future__ import annotations

import ctypes
import io
import struct
from ctypes import POINTER, byref, c_short, c_size_t, c_ubyte

import cv2
import numpy as np
from PIL import Image

from app.pipeline import markers, turbo

SAMPLING = {"444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444, "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
            "420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, "440": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440,
            "411": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_411}


def jpeg(pixels: np.ndarray, sampling: str = "420", quality: int = 90, progressive: bool = False,
         restart: int = 0) -> bytes:
    """Encode with OpenCV's libjpeg-turbo: a chroma sampling ("grey": one component), progressive, restarts."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive),
              cv2.IMWRITE_JPEG_RST_INTERVAL, restart]
    if sampling == "grey":
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    else:
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, SAMPLING[sampling]]
    ok, buffer = cv2.imencode(".jpg", pixels, params)
    assert ok
    return buffer.tobytes()


def compress(pixels: np.ndarray, **params: int) -> bytes:
    """Encode with the bundled library's tj3Compress8/12, with TurboJPEG parameters (twelve=1: 12-bit)."""
    lib, handle = turbo.library(), turbo.library().tj3Init(0)
    buffer, size = POINTER(c_ubyte)(), c_size_t(0)
    try:
        for name, value in {"QUALITY": 90, "SUBSAMP": 2, **params}.items():
            if name != "TWELVE":
                assert lib.tj3Set(handle, getattr(turbo, f"P_{name}"), value) == 0, lib.tj3GetErrorStr(handle)
        height, width = pixels.shape[:2]
        if params.get("TWELVE"):
            deep = np.ascontiguousarray(pixels.astype(np.int16) * 16)
            status = lib.tj3Compress12(handle, deep.ctypes.data_as(POINTER(c_short)), width, 0, height,
                                       turbo.PF_BGR, byref(buffer), byref(size))
        else:
            status = lib.tj3Compress8(handle, np.ascontiguousarray(pixels).ctypes.data_as(POINTER(c_ubyte)),
                                      width, 0, height, turbo.PF_BGR, byref(buffer), byref(size))
        assert status == 0, lib.tj3GetErrorStr(handle)
        return ctypes.string_at(buffer, size.value)
    finally:
        lib.tj3Free(buffer)
        lib.tj3Destroy(handle)


def coefficients(data: bytes, op: int = turbo.XOP_NONE) -> list[np.ndarray]:
    """Every component's quantised blocks, (rows, cols, 64), read back through the library (turned by `op`)."""
    rows: dict[int, dict[int, np.ndarray]] = {}

    def grab(coeffs, array, plane, component, _index, _transform):
        if array.y // 8 < plane.h // 8:
            rows.setdefault(component, {})[array.y // 8] = np.ctypeslib.as_array(
                coeffs, shape=(array.w // 8, 64)).copy()
        return 0

    flags = turbo.XOPT_NOOUTPUT | (turbo.XOPT_PERFECT if op else 0)
    turbo.transform(data, op, flags, turbo.CustomFilter(grab))
    return [np.stack([found[r] for r in sorted(found)]) for _, found in sorted(rows.items())]


def blocks_under(rects: list[tuple[int, int, int, int]], frame: markers.Frame, component: int,
                 shape: tuple[int, ...], turned: bool = False) -> np.ndarray:
    """The blocks of a component under rectangles grown to the MCU grid: the only ones that may change."""
    pairs = [(1, 1)] if len(frame.components) == 1 else [(c.h, c.v) for c in frame.components]
    pairs = [(v, h) for h, v in pairs] if turned else pairs
    hmax, vmax = max(h for h, _ in pairs), max(v for _, v in pairs)
    mw, mh = 8 * hmax, 8 * vmax
    bw, bh = mw // pairs[component][0], mh // pairs[component][1]
    mask = np.zeros(shape[:2], bool)
    for x, y, w, h in rects:
        left, top = x // mw * mw, y // mh * mh
        right, bottom = -(-(x + w) // mw) * mw, -(-(y + h) // mh) * mh
        mask[top // bh:bottom // bh, left // bw:right // bw] = True
    return mask


def decoded(data: bytes) -> np.ndarray:
    """The pixels as a viewer shows them (OpenCV applies the EXIF orientation)."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def assert_only_blocks_under(before: list[np.ndarray], after: list[np.ndarray], rects, frame: markers.Frame,
                             turned: bool = False) -> None:
    assert len(before) == len(after)
    for component, (old, new) in enumerate(zip(before, after)):
        assert old.shape == new.shape
        under = blocks_under(rects, frame, component, old.shape, turned)
        assert np.array_equal(old[~under], new[~under]), f"component {component} changed outside the regions"
        assert (old[under] != new[under]).any(axis=-1).mean() > 0.5, f"component {component} was not redacted"


def within_cells(pixels: np.ndarray, margin: int) -> float:
    """The median spread of the pixels within each cell of `redact`'s pixelation of this area."""
    h, w = pixels.shape[:2]
    block = max(1, round(max(w, h) / 8))
    nx, ny = max(1, w // block), max(1, h // block)
    xs, ys = [round(i * w / nx) for i in range(nx + 1)], [round(j * h / ny) for j in range(ny + 1)]
    cells = [pixels[ys[j] + margin:ys[j + 1] - margin, xs[i] + margin:xs[i + 1] - margin].reshape(-1, 3)
             for j in range(ny) for i in range(nx)]
    return float(np.median([cell.std(axis=0).mean() for cell in cells]))


def exif_with_gps_and_thumbnail(thumbnail: bytes) -> bytes:
    """APP1 EXIF (little-endian TIFF): Make, a GPS IFD with a latitude, and IFD1 with a JPEG thumbnail."""
    make = b"FaceGuardTestCam\x00"
    ifd0 = struct.pack("<H", 2) + struct.pack("<HHII", 0x010F, 2, len(make), 86) + struct.pack("<HHII", 0x8825, 4, 1, 38)
    gps = struct.pack("<H", 1) + struct.pack("<HHI", 1, 2, 2) + b"N\x00\x00\x00" + struct.pack("<I", 0)
    ifd1 = (struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, 103) + struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail))
            + struct.pack("<I", 0))
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd0 + struct.pack("<I", 56) + gps + ifd1 + make + thumbnail
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", 2 + len(payload)) + payload


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", 2 + len(payload)) + payload


def mpo(astronaut: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    frames = [Image.fromarray(astronaut[:, :, ::-1]), Image.fromarray(astronaut[::-1, :, ::-1])]
    frames[0].save(buffer, "MPO", save_all=True, append_images=frames[1:])
    return buffer.getvalue()
