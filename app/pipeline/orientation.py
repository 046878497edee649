"""EXIF orientations as geometry: rectangles between stored and upright pixels, and the lossless turn for each."""
from __future__ import annotations

import numpy as np

from app.pipeline import turbo
from app.pipeline.imageio import orient

Rect = tuple[int, int, int, int]

# The lossless transform that stands a stored photo upright, per EXIF orientation.
TURNS = {2: turbo.XOP_HFLIP, 3: turbo.XOP_ROT180, 4: turbo.XOP_VFLIP, 5: turbo.XOP_TRANSPOSE,
         6: turbo.XOP_ROT90, 7: turbo.XOP_TRANSVERSE, 8: turbo.XOP_ROT270}
_INVERSE = {6: 8, 8: 6}  # every other orientation undoes itself


def swaps(orientation: int) -> bool:
    """Tell whether the orientation turns a quarter (width and height trade places)."""
    return orientation in (5, 6, 7, 8)


def upright_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if swaps(orientation) else (width, height)


def _point(x: float, y: float, orientation: int, width: int, height: int) -> tuple[float, float]:
    """Where a point of a stored width x height photo is once the photo stands upright."""
    return {1: (x, y), 2: (width - x, y), 3: (width - x, height - y), 4: (x, height - y), 5: (y, x),
            6: (height - y, x), 7: (height - y, width - x), 8: (y, width - x)}[orientation]


def to_upright(rect: Rect, orientation: int, width: int, height: int) -> Rect:
    """A rectangle of the stored width x height photo, in upright pixels."""
    x, y, w, h = rect
    (ax, ay), (bx, by) = (_point(px, py, orientation, width, height) for px, py in ((x, y), (x + w, y + h)))
    return int(min(ax, bx)), int(min(ay, by)), int(abs(bx - ax)), int(abs(by - ay))


def to_stored(rect: Rect, orientation: int, width: int, height: int) -> Rect:
    """A rectangle of the upright photo (width x height upright), in stored pixels."""
    return to_upright(rect, _INVERSE.get(orientation, orientation), width, height)


def unorient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Undo `imageio.orient`: upright pixels back as the file stores them."""
    return orient(pixels, _INVERSE.get(orientation, orientation))


def perfect(orientation: int, width: int, height: int, mcu: tuple[int, int]) -> bool:
    """Tell whether the turn moves no partial MCU to the top or left (libjpeg's perfect transform)."""
    ragged_x, ragged_y = width % mcu[0] != 0, height % mcu[1] != 0
    op = TURNS.get(orientation, turbo.XOP_NONE)
    if op in (turbo.XOP_HFLIP, turbo.XOP_ROT270):
        return not ragged_x
    if op in (turbo.XOP_VFLIP, turbo.XOP_ROT90):
        return not ragged_y
    if op in (turbo.XOP_TRANSVERSE, turbo.XOP_ROT180):
        return not (ragged_x or ragged_y)
    return True
