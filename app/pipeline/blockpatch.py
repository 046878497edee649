"""The lossless transform's custom filter: new coefficients for the blocks of some rectangles, the rest untouched."""
from __future__ import annotations

import ctypes

import numpy as np

from app.pipeline import turbo

Rect = tuple[int, int, int, int]
_BLOCK = 64 * 2  # bytes of one block's coefficients (JCOEF: 16 bits)


class BlockPatch:
    """Write each component's blocks under `rects` (written pixels, on the MCU grid) from `planes`.

    `planes[c]` holds component c's quantised blocks, (rows, cols, 64) in natural order, of
    the rectangles' bounding box whose top-left corner is `origin`. libjpeg-turbo calls the
    filter once per row of blocks of each component; `written` counts the blocks replaced, so
    that a filter that was not called (or not everywhere) is noticed against `expected`.
    """

    def __init__(self, rects: list[Rect], origin: tuple[int, int], planes: list[np.ndarray],
                 sampling: list[tuple[int, int]], size: tuple[int, int]) -> None:
        hmax, vmax = max(h for h, _ in sampling), max(v for _, v in sampling)
        self.planes = [np.ascontiguousarray(p, np.int16) for p in planes]
        self.corners: list[tuple[int, int]] = []
        self.spans: list[list[tuple[int, int, int, int]]] = []  # per component: rows r0-r1, cols c0-c1 (blocks)
        self.expected = self.written = 0
        for h, v in sampling:
            bw, bh = 8 * hmax // h, 8 * vmax // v  # pixels per block of this component
            cols, rows = -(-size[0] * h // (8 * hmax)), -(-size[1] * v // (8 * vmax))  # width/height_in_blocks
            spans = [(y // bh, min(rows, (y + hh) // bh), x // bw, min(cols, (x + ww) // bw)) for x, y, ww, hh in rects]
            self.corners.append((origin[0] // bw, origin[1] // bh))
            self.spans.append(spans)
            self.expected += sum(max(0, r1 - r0) * max(0, c1 - c0) for r0, r1, c0, c1 in spans)
        self.callback = turbo.CustomFilter(self._filter)

    def _filter(self, coeffs, array: turbo.TJRegion, plane: turbo.TJRegion, component: int,
                _index: int, _transform) -> int:
        """tjtransform.customFilter: one row of blocks of one component (`array.y` // 8), copied in place."""
        try:
            row, width = array.y // 8, array.w // 8
            if row >= plane.h // 8:
                return 0
            left, top = self.corners[component]
            source = self.planes[component]
            for r0, r1, c0, c1 in self.spans[component]:
                c1 = min(c1, width)
                if r0 <= row < r1 and c1 > c0:
                    start = source.ctypes.data + ((row - top) * source.shape[1] + c0 - left) * _BLOCK
                    ctypes.memmove(ctypes.cast(coeffs, ctypes.c_void_p).value + c0 * _BLOCK, start, (c1 - c0) * _BLOCK)
                    self.written += c1 - c0
            return 0
        except Exception:  # noqa: BLE001 - never let an exception cross into C; the count tells
            return -1
