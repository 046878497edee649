"""Pure numpy/OpenCV redaction: grow and clip boxes, then blur, pixelate or fill them."""
from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

METHODS = ("blur", "pixelate", "fill")
OUTLINE_BGR = (0, 200, 255)

Rect = tuple[int, int, int, int]


def expand(box: tuple[float, float, float, float], padding: float,
           width: int, height: int) -> Rect | None:
    """Grow a face box by `padding` of its size on each side (1.5x at the top); clip to the image."""
    x, y, w, h = box
    left, right = x - padding * w, x + w + padding * w
    top, bottom = y - 1.5 * padding * h, y + h + padding * h
    x0, y0 = max(0, int(np.floor(left))), max(0, int(np.floor(top)))
    x1, y1 = min(width, int(np.ceil(right))), min(height, int(np.ceil(bottom)))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def clip(rect: Rect, width: int, height: int) -> Rect | None:
    """The part of a rectangle inside a width x height image (None: none of it).

    Never slice with a rectangle that is not clipped: a negative start counts from the far edge,
    and the face would be left as it was.
    """
    x, y, w, h = rect
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    return (x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None


def covered_share(rects: Iterable[Rect], width: int, height: int) -> float:
    """The share of a width x height image that the union of [x, y, w, h] rectangles covers.

    Counted on a mask of at most 1024 cells a side: exact up to that size, and within a
    fraction of a per cent above it (each rectangle is rounded outwards to the mask's cells).
    """
    if width <= 0 or height <= 0:
        return 0.0
    budget = Budget(width, height, 1.0)
    for rect in rects:
        budget.add(rect)
    return budget.share()


class Budget:
    """How much of a width x height image a set of rectangles covers, counted as they are added."""

    def __init__(self, width: int, height: int, most: float, grid: int = 1024) -> None:
        self.scale = min(1.0, grid / max(width, height, 1))
        self.mask = np.zeros((max(1, round(height * self.scale)), max(1, round(width * self.scale))), bool)
        self.most = most

    def _cells(self, rect: Rect) -> tuple[slice, slice]:
        x, y, w, h = rect
        s = self.scale
        return slice(int(y * s), int(np.ceil((y + h) * s))), slice(int(x * s), int(np.ceil((x + w) * s)))

    def add(self, rect: Rect) -> None:
        self.mask[self._cells(rect)] = True

    def fits(self, rect: Rect) -> bool:
        """Tell whether adding `rect` keeps the covered share at most `most`."""
        rows, cols = self._cells(rect)
        new = np.count_nonzero(~self.mask[rows, cols])
        return (np.count_nonzero(self.mask) + new) / self.mask.size <= self.most

    def share(self) -> float:
        return float(self.mask.mean())


def squeeze(image: np.ndarray, size: tuple[int, int], fine: int = 4) -> np.ndarray:
    """Average an image down to `size`, sampling it first where it is large instead of reading every pixel.

    An image at least twice as large as a grid `fine` times finer than `size` is first sampled
    on that grid (bilinear: 2x2 pixels a sample), and each output pixel averages its samples.
    For the blur (fine 4), averaging every pixel took 80 % of its time (0.44 of 0.52 ms per
    1080p group photo; 0.11 ms sampled), and the result differs from it by about one grey level.
    """
    grid = (fine * size[0], fine * size[1])
    if image.shape[1] >= 2 * grid[0] and image.shape[0] >= 2 * grid[1]:
        image = cv2.resize(image, grid, interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _blur(roi: np.ndarray) -> np.ndarray:
    """Smooth a region to a featureless blob at a cost that grows with its area only.

    The region is squeezed to a grid of about six cells across its longest side,
    softened there, and stretched back with bilinear interpolation. No facial detail
    survives the squeeze, however large the face; a Gaussian with the same reach would
    need a kernel as wide as the face.
    """
    h, w = roi.shape[:2]
    cells = 6
    small = squeeze(roi, (max(1, round(cells * w / max(w, h))), max(1, round(cells * h / max(w, h)))))
    small = cv2.GaussianBlur(small, (3, 3), 0, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _pixelate(roi: np.ndarray) -> np.ndarray:
    """Replace a region by about eight coarse blocks across its longest side."""
    h, w = roi.shape[:2]
    block = max(1, round(max(w, h) / 8))
    small = squeeze(roi, (max(1, w // block), max(1, h // block)))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def _fill(roi: np.ndarray) -> np.ndarray:
    """Cover a region with solid black."""
    return np.zeros_like(roi)


_APPLY = {"blur": _blur, "pixelate": _pixelate, "fill": _fill}


def redact(image: np.ndarray, rects: Iterable[Rect], method: str = "blur",
           outline: bool = False) -> np.ndarray:
    """Return a copy of the image with every rectangle redacted; the input is not changed."""
    return redact_in_place(image.copy(), rects, method, outline)


def outline_thickness(height: int, width: int) -> int:
    """How thick outlines are on a photo of this size (they reach half of it outside their box)."""
    return max(2, round(min(height, width) / 300))


def redact_in_place(image: np.ndarray, rects: Iterable[Rect], method: str = "blur",
                    outline: bool = False, thickness: int | None = None) -> np.ndarray:
    """Redact every rectangle of an image the caller owns, in place (no 6 MB copy per 1080p photo); return it.

    Only colour is redacted, under transparent pixels too (a face under alpha 0 is still in
    the file); an alpha channel is kept exactly as it was. `thickness`: the outlines' when
    `image` is a cut of a larger photo (see `outline_thickness`).
    """
    if method not in _APPLY:
        raise ValueError(f"unknown redaction method {method!r}")
    height, width = image.shape[:2]
    rects = [clipped for rect in rects if (clipped := clip(rect, width, height))]
    colour = image[:, :, :3] if image.ndim == 3 and image.shape[2] == 4 else image  # alpha stays as it was
    for x, y, w, h in rects:
        colour[y:y + h, x:x + w] = _APPLY[method](np.ascontiguousarray(colour[y:y + h, x:x + w]))
    if outline:
        thickness = thickness or outline_thickness(*image.shape[:2])
        full = 65535 if image.dtype == np.uint16 else 255
        color = tuple(c * full // 255 for c in OUTLINE_BGR) + ((full,) if image.ndim == 3 and image.shape[2] == 4 else ())
        for x, y, w, h in rects:
            cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), color, thickness)
    return image
