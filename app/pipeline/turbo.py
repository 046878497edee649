"""libjpeg-turbo's TurboJPEG 3 API through ctypes: the library the `turbojpeg` 0.0.2 wheel bundles.

No system library is used: the wheel (pinned in pyproject.toml) ships libturbojpeg built from
libjpeg-turbo 2.1.92 (3.0 beta, commit 3a536273), and the structures and constants below are
declared exactly as that version's turbojpeg.h declares them. Where the library cannot be
found or loaded, `problem()` says why and the product writes JPEGs the old way.
"""
from __future__ import annotations

import ctypes
import re
from collections.abc import Iterator
from contextlib import contextmanager
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    byref,
    c_char_p,
    c_int,
    c_short,
    c_size_t,
    c_ubyte,
    c_void_p,
)
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

WHEEL, VERSION = "turbojpeg", "0.0.2"

# enum TJINIT, TJPF, TJCS, TJXOP and the TJXOPT_* flags, as turbojpeg.h (2.1.92) numbers them
INIT_DECOMPRESS, INIT_TRANSFORM = 1, 2
PF_BGR = 1
CS_RGB, CS_YCBCR, CS_GRAY, CS_CMYK, CS_YCCK = 0, 1, 2, 3, 4
XOP_NONE, XOP_HFLIP, XOP_VFLIP, XOP_TRANSPOSE, XOP_TRANSVERSE, XOP_ROT90, XOP_ROT180, XOP_ROT270 = range(8)
XOPT_PERFECT, XOPT_NOOUTPUT, XOPT_PROGRESSIVE, XOPT_COPYNONE = 1 << 0, 1 << 4, 1 << 5, 1 << 6
XOPT_ARITHMETIC, XOPT_OPTIMIZE = 1 << 7, 1 << 8
# enum TJPARAM (no TJPARAM_MAXPIXELS outside fuzzing builds: STOPONWARNING is 0)
(P_STOPONWARNING, P_BOTTOMUP, P_NOREALLOC, P_QUALITY, P_SUBSAMP, P_JPEGWIDTH, P_JPEGHEIGHT, P_PRECISION,
 P_COLORSPACE, P_FASTUPSAMPLE, P_FASTDCT, P_OPTIMIZE, P_PROGRESSIVE, P_SCANLIMIT, P_ARITHMETIC,
 P_LOSSLESS) = range(16)


class TJRegion(Structure):
    """tjregion: x, y, w, h (ints)."""

    _fields_ = [("x", c_int), ("y", c_int), ("w", c_int), ("h", c_int)]


class TJScalingFactor(Structure):
    """tjscalingfactor: num, denom."""

    _fields_ = [("num", c_int), ("denom", c_int)]


class TJTransform(Structure):
    """tjtransform: r, op, options, data, customFilter."""


# int (*customFilter)(short *coeffs, tjregion arrayRegion, tjregion planeRegion, int componentIndex,
#                     int transformIndex, struct tjtransform *transform)
CustomFilter = CFUNCTYPE(c_int, POINTER(c_short), TJRegion, TJRegion, c_int, c_int, POINTER(TJTransform))
TJTransform._fields_ = [("r", TJRegion), ("op", c_int), ("options", c_int), ("data", c_void_p),
                        ("customFilter", CustomFilter)]

_SIGNATURES = {
    "tj3Init": (c_void_p, [c_int]),
    "tj3Destroy": (None, [c_void_p]),
    "tj3Set": (c_int, [c_void_p, c_int, c_int]),
    "tj3Get": (c_int, [c_void_p, c_int]),
    "tj3GetErrorStr": (c_char_p, [c_void_p]),
    "tj3Free": (None, [c_void_p]),
    "tj3DecompressHeader": (c_int, [c_void_p, c_char_p, c_size_t]),
    "tj3SetScalingFactor": (c_int, [c_void_p, TJScalingFactor]),
    "tj3SetCroppingRegion": (c_int, [c_void_p, TJRegion]),
    "tj3Decompress8": (c_int, [c_void_p, c_char_p, c_size_t, POINTER(c_ubyte), c_int, c_int]),
    "tj3Compress8": (c_int, [c_void_p, POINTER(c_ubyte), c_int, c_int, c_int, c_int,
                             POINTER(POINTER(c_ubyte)), POINTER(c_size_t)]),
    "tj3Compress12": (c_int, [c_void_p, POINTER(c_short), c_int, c_int, c_int, c_int,
                              POINTER(POINTER(c_ubyte)), POINTER(c_size_t)]),
    "tj3Transform": (c_int, [c_void_p, c_char_p, c_size_t, c_int, POINTER(POINTER(c_ubyte)),
                             POINTER(c_size_t), POINTER(TJTransform)]),
}


class TurboError(Exception):
    """The library refused a file or a call; the message is the library's."""


def _library_file() -> Path:
    """The libturbojpeg the wheel installed: turbojpeg.libs/ (Linux), .dylibs/ (macOS), a .dll (Windows)."""
    try:
        dist = metadata.distribution(WHEEL)
    except metadata.PackageNotFoundError:
        raise OSError(f"the {WHEEL} package is not installed (pip install {WHEEL}=={VERSION})") from None
    if dist.version != VERSION:
        raise OSError(f"{WHEEL} {dist.version} is installed; this product declares the library of {VERSION}")
    for file in dist.files or []:
        name = file.name.lower()
        if "turbojpeg" in name and (name.endswith((".dll", ".dylib")) or re.search(r"\.so\.\d", name)):
            return Path(file.locate()).resolve()
    raise OSError(f"no libturbojpeg found among the files of {WHEEL} {VERSION}")


@cache
def library() -> ctypes.CDLL:
    """Load the bundled libturbojpeg once per process and declare its functions; OSError says why not."""
    lib = ctypes.CDLL(str(_library_file()))
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(lib, name)  # AttributeError: not a TurboJPEG 3 library
        function.restype, function.argtypes = restype, argtypes
    return lib


@cache
def problem() -> str | None:
    """Why the library cannot be used on this machine (None: it can). Asked once per process."""
    try:
        library()
    except (OSError, AttributeError) as exc:
        return f"libjpeg-turbo could not be loaded ({exc})"
    return None


@dataclass(frozen=True)
class Header:
    """What tj3DecompressHeader tells of a JPEG."""

    width: int
    height: int
    subsamp: int
    colorspace: int
    precision: int
    progressive: bool
    arithmetic: bool
    lossless: bool


@contextmanager
def _handle(kind: int) -> Iterator[int]:
    """A fresh TurboJPEG instance for one call, destroyed after it.

    Never reused: in this library version a transformer that wrote a progressive or optimised
    JPEG carries that into the next transform (a corrupt file), and an instance costs about a
    microsecond to make.
    """
    handle = library().tj3Init(kind)
    if not handle:
        raise TurboError("libjpeg-turbo could not start (out of memory?)")
    try:
        yield handle
    finally:
        library().tj3Destroy(handle)


def _check(handle: int, status: int) -> None:
    if status != 0:
        raise TurboError((library().tj3GetErrorStr(handle) or b"unknown error").decode("utf-8", "replace").strip())


def header(data: bytes) -> Header:
    """Read a JPEG's header (size, sampling, colour space, precision, coding)."""
    lib = library()
    with _handle(INIT_DECOMPRESS) as handle:
        _check(handle, lib.tj3DecompressHeader(handle, data, len(data)))
        get = lambda param: lib.tj3Get(handle, param)  # noqa: E731
        return Header(get(P_JPEGWIDTH), get(P_JPEGHEIGHT), get(P_SUBSAMP), get(P_COLORSPACE), get(P_PRECISION),
                      bool(get(P_PROGRESSIVE)), bool(get(P_ARITHMETIC)), bool(get(P_LOSSLESS)))


def scaled(size: int, denom: int) -> int:
    """TJSCALED: a dimension decoded at 1/denom."""
    return (size + denom - 1) // denom


def decode(data: bytes, denom: int = 1, crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Decode a JPEG as stored (no orientation), BGR, at 1/denom of its size, or only the `crop` (x, y, w, h).

    A crop's x must be a multiple of the (scaled) MCU width.
    """
    lib = library()
    with _handle(INIT_DECOMPRESS) as handle:
        _check(handle, lib.tj3DecompressHeader(handle, data, len(data)))
        _check(handle, lib.tj3SetScalingFactor(handle, TJScalingFactor(1, denom)))
        width, height = scaled(lib.tj3Get(handle, P_JPEGWIDTH), denom), scaled(lib.tj3Get(handle, P_JPEGHEIGHT), denom)
        _, _, w, h = crop or (0, 0, width, height)
        _check(handle, lib.tj3SetCroppingRegion(handle, TJRegion(*(crop or (0, 0, 0, 0)))))
        out = np.empty((h, w, 3), np.uint8)
        pointer = out.ctypes.data_as(POINTER(c_ubyte))
        _check(handle, lib.tj3Decompress8(handle, data, len(data), pointer, 0, PF_BGR))
        return out


def transform(data: bytes, op: int, options: int, custom: CustomFilter | None = None) -> bytes:
    """Transform a JPEG losslessly (tj3Transform, one transform) with an optional custom filter."""
    lib = library()
    spec = TJTransform(TJRegion(0, 0, 0, 0), op, options, None, custom or CustomFilter())
    buffer, size = POINTER(c_ubyte)(), c_size_t(0)
    with _handle(INIT_TRANSFORM) as handle:
        try:
            _check(handle, lib.tj3Transform(handle, data, len(data), 1, byref(buffer), byref(size), byref(spec)))
            return ctypes.string_at(buffer, size.value)
        finally:
            lib.tj3Free(buffer)
