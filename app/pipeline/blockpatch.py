"""The lossless transform's custom filter: new coefficients for the blocks of some rectangles, the rest untouched."""
from __future__ import annotations

import ctypes
from collections import defaultdict

import numpy as np

from app.pipeline import turbo

Rect = tuple[int, int, int, int]
_BLOCK = 64 * 2  # bytes of one block's coefficients (JCOEF: 16 bits)


class BlockPatch:
    """Write each component's blocks under some rectangles (written pixels, on the MCU grid).

    `blocks` pairs each rectangle with its components' quantised blocks, (rows, cols, 64) int16
    in natural order. libjpeg-turbo calls the filter once per row of blocks of each component;
    `written` counts the blocks replaced, so that a filter that was not called (or not
    everywhere) is noticed against `expected`.
    """

    def __init__(self, blocks: list[tuple[Rect, list[np.ndarray]]], sampling: list[tuple[int, int]],
                 size: tuple[int, int]) -> None:
        hmax, vmax = max(h for h, _ in sampling), max(v for _, v in sampling)
        self.keep = [np.ascontiguousarray(p, np.int16) for _, planes in blocks for p in planes]
        # per component: block row -> [(first column, end column, address of the source row's first block)]
        self.rows: list[dict[int, list[tuple[int, int, int]]]] = [defaultdict(list) for _ in sampling]
        self.expected = self.written = 0
        for index, (rect, _) in enumerate(blocks):
            x, y, w, h = rect
            for component, (hs, vs) in enumerate(sampling):
                plane = self.keep[index * len(sampling) + component]
                bw, bh = 8 * hmax // hs, 8 * vmax // vs  # pixels per block of this component
                cols, rows = -(-size[0] * hs // (8 * hmax)), -(-size[1] * vs // (8 * vmax))  # *_in_blocks
                c0, c1 = x // bw, min(cols, (x + w) // bw)
                for row in range(y // bh, min(rows, (y + h) // bh)):
                    if c1 > c0:
                        start = plane.ctypes.data + (row - y // bh) * plane.shape[1] * _BLOCK
                        self.rows[component][row].append((c0, c1, start))
                        self.expected += c1 - c0
        self.callback = turbo.CustomFilter(self._filter)

    def _filter(self, coeffs, array: turbo.TJRegion, plane: turbo.TJRegion, component: int,
                _index: int, _transform) -> int:
        """tjtransform.customFilter: one row of blocks of one component (`array.y` // 8), copied in place."""
        try:
            spans = self.rows[component].get(array.y // 8) if array.y < plane.h else None
            if spans:
                width, destination = array.w // 8, ctypes.cast(coeffs, ctypes.c_void_p).value
                for c0, c1, start in spans:
                    c1 = min(c1, width)
                    ctypes.memmove(destination + c0 * _BLOCK, start, (c1 - c0) * _BLOCK)
                    self.written += c1 - c0
            return 0
        except Exception:  # noqa: BLE001 - never let an exception cross into C; the count tells
            return -1
