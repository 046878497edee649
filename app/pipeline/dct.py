"""Pixels -> quantised DCT coefficients, as a JPEG encoder makes them.

JFIF's full-range BT.601 YCbCr, chroma averaged down by the file's sampling factors, the
level shift, the forward 8x8 DCT and quantisation with the file's own tables.
"""
from __future__ import annotations

import numpy as np

# The orthonormal 8x8 DCT-II: JPEG's F(u, v) = C @ block @ C.T (C(0) = 1/sqrt(2), scale 1/4 in 2-D).
_U, _X = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
BASIS = (np.where(_U == 0, np.sqrt(1 / 8), np.sqrt(2 / 8)) * np.cos((2 * _X + 1) * _U * np.pi / 16)).astype(np.float32)

# B, G, R -> Y, Cb, Cr (JFIF), each level-shifted to be centred on 0.
_YCC = np.array([[0.114, 0.587, 0.299],
                 [0.5, -0.331264, -0.168736],
                 [-0.081312, -0.418688, 0.5]], np.float32)


def planes(pixels: np.ndarray, count: int) -> list[np.ndarray]:
    """The level-shifted float planes of BGR (or grey) pixels: Y, Cb, Cr for 3 components, Y for 1."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None].repeat(3, axis=2)
    ycc = pixels[:, :, :3].astype(np.float32) @ _YCC.T
    ycc[:, :, 0] -= 128.0
    return [ycc[:, :, i] for i in range(count)]


def downsample(plane: np.ndarray, fx: int, fy: int) -> np.ndarray:
    """Average fx x fy cells (the plane's sides are multiples of them)."""
    if fx == fy == 1:
        return plane
    height, width = plane.shape
    return plane.reshape(height // fy, fy, width // fx, fx).mean(axis=(1, 3))


def forward(plane: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Quantised DCT of a plane whose sides are multiples of 8: (rows, cols, 64) int16, natural order."""
    height, width = plane.shape
    blocks = plane.reshape(height // 8, 8, width // 8, 8).transpose(0, 2, 1, 3)
    coefficients = BASIS @ blocks @ BASIS.T
    return np.rint(coefficients / table).astype(np.int16).reshape(height // 8, width // 8, 64)


def coefficients(pixels: np.ndarray, sampling: list[tuple[int, int]], tables: list[np.ndarray]) -> list[np.ndarray]:
    """Each component's quantised blocks of MCU-aligned pixels (sides multiples of 8 x the largest factors)."""
    hmax, vmax = max(h for h, _ in sampling), max(v for _, v in sampling)
    return [forward(downsample(plane, hmax // h, vmax // v), table)
            for plane, (h, v), table in zip(planes(pixels, len(sampling)), sampling, tables)]
