"""Files the formats tests need, made in code: ICC profiles of wide-gamut spaces, a BMP with an alpha mask."""
from __future__ import annotations

import struct

import numpy as np

_D50 = np.array([0.9642, 1.0, 0.8249])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
# Primaries (x, y of red, green, blue), white point (x, y) and tone curve gamma of each space.
SPACES = {"display-p3": ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.3127, 0.3290), 2.2),
          "prophoto": ((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001), (0.3457, 0.3585), 1.8)}


def _xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1 - x - y) / y])


def _colorants(space: str) -> np.ndarray:
    """Columns: the XYZ of full red, green and blue, adapted to the D50 of ICC's connection space."""
    *primaries, white, _ = SPACES[space]
    corners = np.stack([_xyz(*p) for p in primaries], axis=1)
    matrix = corners * np.linalg.solve(corners, _xyz(*white))
    cone = _BRADFORD @ _xyz(*white)
    adapt = np.linalg.inv(_BRADFORD) @ np.diag(_BRADFORD @ _D50 / cone) @ _BRADFORD
    return adapt @ matrix


def _fixed(values) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def _assembled(colour_space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """A version 2 display profile of a colour space ('RGB ', 'GRAY') from its tags."""
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for signature, data in tags:
        data += bytes(-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (struct.pack(">I", offset + len(body)) + bytes(4) + bytes([2, 0x10, 0, 0]) + b"mntr" + colour_space
              + b"XYZ " + bytes(12) + b"acsp" + bytes(4 + 4 + 4 + 4 + 8 + 4) + _fixed(_D50) + bytes(4 + 16 + 28))
    return header + struct.pack(">I", len(tags)) + table + body


def icc_profile(space: str) -> bytes:
    """A version 2 matrix/TRC display profile of `space`, as a camera or phone would embed it."""
    gamma = SPACES[space][4]
    name = space.encode()
    desc = b"desc" + bytes(4) + struct.pack(">I", len(name) + 1) + name + b"\0" + bytes(4 + 4 + 2 + 1 + 67)
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    columns = _colorants(space)
    tags = [(b"desc", desc), (b"wtpt", b"XYZ " + bytes(4) + _fixed(_D50)),
            (b"rXYZ", b"XYZ " + bytes(4) + _fixed(columns[:, 0])),
            (b"gXYZ", b"XYZ " + bytes(4) + _fixed(columns[:, 1])),
            (b"bXYZ", b"XYZ " + bytes(4) + _fixed(columns[:, 2])),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text" + bytes(4) + b"made in a test\0\0")]
    return _assembled(b"RGB ", tags)


def grey_icc_profile(gamma: float = 2.2) -> bytes:
    """A version 2 grey display profile (a gamma curve and a white point), as scanners embed it."""
    name = b"grey"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(name) + 1) + name + b"\0" + bytes(4 + 4 + 2 + 1 + 67)
    tags = [(b"desc", desc), (b"wtpt", b"XYZ " + bytes(4) + _fixed(_D50)),
            (b"kTRC", b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)),
            (b"cprt", b"text" + bytes(4) + b"made in a test\0\0")]
    return _assembled(b"GRAY", tags)


def bmp_with_alpha_mask(bgra: np.ndarray) -> bytes:
    """A 32-bit top-down BMP with a BITMAPV5HEADER whose bit fields include an alpha mask."""
    height, width = bgra.shape[:2]
    pixels = np.ascontiguousarray(bgra).tobytes()
    header = struct.pack("<IiiHHIIiiII", 124, width, -height, 1, 32, 3, len(pixels), 0, 0, 0, 0)
    header += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000) + b"BGRs" + bytes(36 + 12 + 16)
    offset = 14 + len(header)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + pixels
