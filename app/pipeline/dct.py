"""Pixels -> quantised DCT coefficients, as a JPEG encoder makes them.

JFIF's full-range BT.601 YCbCr, chroma averaged down by the file's sampling factors, the
level shift, the forward 8x8 DCT and quantisation with the file's own tables.
"""
from __future__ import annotations

import cv2
import numpy as np

# The orthonormal 8x8 DCT-II: JPEG's F(u, v) = C @ block @ C.T (C(0) = 1/sqrt(2), scale 1/4 in 2-D).
_U, _X = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
BASIS = (np.where(_U == 0, np.sqrt(1 / 8), np.sqrt(2 / 8)) * np.cos((2 * _X + 1) * _U * np.pi / 16)).astype(np.float32)
KRON = np.kron(BASIS.astype(np.float64), BASIS.astype(np.float64))  # a block's 64 values (row by row) -> F(u, v)


def planes(pixels: np.ndarray, count: int) -> list[np.ndarray]:
    """The 8-bit planes of BGR pixels as an encoder makes them: Y, Cb, Cr for 3 components, Y for 1."""
    colour = np.ascontiguousarray(pixels[:, :, :3]) if pixels.ndim == 3 else cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    if count == 1:
        return [cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)]
    luma, red, blue = cv2.split(cv2.cvtColor(colour, cv2.COLOR_BGR2YCrCb))  # JFIF's full-range BT.601
    return [luma, blue, red]


def downsample(plane: np.ndarray, fx: int, fy: int) -> np.ndarray:
    """Average fx x fy cells (the plane's sides are multiples of them), as libjpeg's downsampling does."""
    if fx == fy == 1:
        return plane
    height, width = plane.shape
    return cv2.resize(plane, (width // fx, height // fy), interpolation=cv2.INTER_AREA)


def forward(plane: np.ndarray, table: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Level shift, DCT and quantise the blocks of a plane (sides multiples of 8) that `keep` marks.

    `keep`: one cell per 8x8 block. Returns (n, 64) int16 in natural order, the kept blocks row by row.
    C @ block @ C.T is kron(C, C) @ the block's 64 values: one product over all the kept blocks,
    with the division by the table folded into it.
    """
    height, width = plane.shape
    cells = plane.reshape(height // 8, 8, width // 8, 8).transpose(0, 2, 1, 3)[keep].reshape(-1, 64)
    quantised = (KRON.T / table.reshape(1, 64)).astype(np.float32)
    return np.rint((cells.astype(np.float32) - 128.0) @ quantised).astype(np.int16)


def coefficients(pixels: np.ndarray, sampling: list[tuple[int, int]], tables: list[np.ndarray],
                 keep: list[np.ndarray]) -> list[np.ndarray]:
    """Each component's quantised blocks of MCU-aligned pixels (sides multiples of 8 x the largest factors).

    `keep`: per component, which of its blocks to transform (see `forward`).
    """
    hmax, vmax = max(h for h, _ in sampling), max(v for _, v in sampling)
    return [forward(downsample(plane, hmax // h, vmax // v), table, mask)
            for plane, (h, v), table, mask in zip(planes(pixels, len(sampling)), sampling, tables, keep)]
