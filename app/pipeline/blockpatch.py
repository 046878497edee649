"""The lossless transform's custom filter: new coefficients for some blocks of a box, the rest untouched."""
from __future__ import annotations

import ctypes

import numpy as np

from app.pipeline import turbo

Rect = tuple[int, int, int, int]
_BLOCK = 64 * 2  # bytes of one block's coefficients (JCOEF: 16 bits)


def block_masks(box: Rect, mcus: np.ndarray, sampling: list[tuple[int, int]],
                size: tuple[int, int]) -> list[np.ndarray]:
    """Per component, which of its blocks within `box` are to be written.

    `box` (written pixels, on the MCU grid) holds `mcus`, one cell per MCU, set where a region
    reaches. An MCU holds h x v blocks of a component sampled (h, v); blocks past the
    component's own edge (its *_in_blocks, `size` being the written photo's) are left alone.
    """
    hmax, vmax = max(h for h, _ in sampling), max(v for _, v in sampling)
    masks = []
    for hs, vs in sampling:
        bw, bh = 8 * hmax // hs, 8 * vmax // vs  # pixels per block of this component
        cols, rows = -(-size[0] * hs // (8 * hmax)), -(-size[1] * vs // (8 * vmax))
        mask = np.repeat(np.repeat(mcus, vs, axis=0), hs, axis=1)
        mask[max(0, rows - box[1] // bh):] = False
        mask[:, max(0, cols - box[0] // bw):] = False
        masks.append(mask)
    return masks


class BlockPatch:
    """Write each component's blocks that `masks` marks within `box`, from `planes`.

    `planes`: per component, the marked blocks' quantised coefficients, (n, 64) int16 in
    natural order, row by row (as `dct.coefficients` gives them). libjpeg-turbo calls the
    filter once per row of blocks of each component; `written` counts the blocks replaced, so
    that a filter that was not called (or not everywhere) is noticed against `expected`.
    """

    def __init__(self, box: Rect, masks: list[np.ndarray], planes: list[np.ndarray],
                 sampling: list[tuple[int, int]]) -> None:
        hmax, vmax = max(h for h, _ in sampling), max(v for _, v in sampling)
        self.keep = [np.ascontiguousarray(p, np.int16) for p in planes]
        # per component: block row -> [(first column, end column, address of the run's first block)]
        self.rows: list[dict[int, list[tuple[int, int, int]]]] = []
        self.expected = self.written = 0
        for mask, plane, (hs, vs) in zip(masks, self.keep, sampling):
            if len(plane) != np.count_nonzero(mask):
                raise ValueError("one block of coefficients per marked block is needed")
            top, left = box[1] // (8 * vmax // vs), box[0] // (8 * hmax // hs)
            self.rows.append(_runs(mask, top, left, plane.ctypes.data))
            self.expected += len(plane)
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


def _runs(mask: np.ndarray, top: int, left: int, address: int) -> dict[int, list[tuple[int, int, int]]]:
    """Each row's runs of marked blocks, in the component's block grid, with where their coefficients start.

    The coefficients are the marked blocks one after another, row by row: a run's first block
    is preceded by every marked block before it in that order.
    """
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    (rows, starts), (_, ends) = np.nonzero(edges == 1), np.nonzero(edges == -1)
    before = np.concatenate(([0], np.cumsum(mask.ravel())))[rows * mask.shape[1] + starts]
    runs: dict[int, list[tuple[int, int, int]]] = {}
    for row, start, end, offset in zip((rows + top).tolist(), (starts + left).tolist(), (ends + left).tolist(),
                                       before.tolist()):
        runs.setdefault(row, []).append((start, end, address + offset * _BLOCK))
    return runs
