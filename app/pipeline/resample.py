"""Resampling for detection: shrink, enlarge, turn and cut images into the frames engines look at."""
from __future__ import annotations

import cv2
import numpy as np

from app.pipeline.redact import squeeze


def shrink(image: np.ndarray, longest: int) -> tuple[np.ndarray, int]:
    """Shrink by an integer factor k so the longest side is at most `longest`; return the copy and k.

    The last width % k columns and height % k rows, fewer than k pixels, are left out;
    small pixel (i, j) stands for pixels [i*k, (i+1)*k) x [j*k, (j+1)*k) of the image.
    From k = 4 on, `squeeze` samples a grid twice as fine as the result (the 2x2 pixels at
    the centre of each k/2 block) and averages that: on a 1080p frame this costs a sixth of
    averaging every pixel (0.35 vs 2.3 ms) and differs from it by 0.6 grey levels on average.
    """
    height, width = image.shape[:2]
    k = max(1, -(-max(height, width) // longest))
    if k == 1:
        return image, 1
    return squeeze(image[: height // k * k, : width // k * k], (width // k, height // k), fine=2), k


def rescale(image: np.ndarray, scale: float) -> np.ndarray:
    """Resize by `scale`: bilinear to enlarge or for mild shrinking, block averages below 1/2."""
    if abs(scale - 1) < 1e-3:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR)


def tiles(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Cut a frame into tiles of at most `tile` x `tile` pixels, neighbours overlapping by `overlap`.

    A frame that fits in one tile is one tile. Tiles are spread evenly, so none is a sliver.
    """
    def spans(length: int) -> list[tuple[int, int]]:
        if length <= tile:
            return [(0, length)]
        count = -(-(length - overlap) // (tile - overlap))
        step = (length - tile) / (count - 1)
        return [(round(i * step), tile) for i in range(count)]

    return [(x, y, w, h) for y, h in spans(height) for x, w in spans(width)]


def turn(image: np.ndarray, quarters: int) -> np.ndarray:
    """The image turned `quarters` quarter turns counter-clockwise (a contiguous copy)."""
    return np.ascontiguousarray(np.rot90(image, quarters)) if quarters % 4 else image


def tilted_cut(image: np.ndarray, centre: tuple[float, float], degrees: float, scale: float,
               side: int) -> tuple[np.ndarray, np.ndarray]:
    """A side x side square cut around `centre`, turned `degrees` counter-clockwise and resized by `scale`.

    Returns the cut and the 2x3 matrix that maps its pixels back onto the image. Past the
    image's edge the cut repeats the edge's pixels.
    """
    forward = cv2.getRotationMatrix2D(centre, degrees, scale)
    forward[:, 2] += np.array([side / 2, side / 2]) - np.array(centre)
    cut = cv2.warpAffine(image, forward, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cut, cv2.invertAffineTransform(forward)


def tilted_whole(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The whole image turned `degrees` counter-clockwise on a grey canvas grown to hold it.

    Returns the turned image and the 2x3 matrix that maps its pixels back onto the image.
    """
    height, width = image.shape[:2]
    forward = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(forward[0, 0]), abs(forward[0, 1])
    grown = (round(height * sin + width * cos), round(height * cos + width * sin))
    forward[:, 2] += np.array(grown) / 2 - np.array([width, height]) / 2
    turned = cv2.warpAffine(image, forward, grown, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=(128, 128, 128))
    return turned, cv2.invertAffineTransform(forward)


def unturn_box(box: tuple[float, float, float, float], quarters: int, width: int,
               height: int) -> tuple[float, float, float, float]:
    """Map an [x, y, w, h] box found in `turn(image, quarters)` back onto the image (width x height)."""
    x, y, w, h = box
    quarters %= 4
    if quarters == 1:
        return width - y - h, x, h, w
    if quarters == 2:
        return width - x - w, height - y - h, w, h
    if quarters == 3:
        return y, height - x - w, h, w
    return box


NOISY = 6.0  # noise is smoothed from this estimated standard deviation (grey levels) up


def noise_level(colour: np.ndarray, patch: int = 64, grid: int = 4) -> float:
    """An estimate of the standard deviation of an 8-bit BGR image's noise, in grey levels.

    The median response to a mask that cancels flat areas, ramps and most edges (Immerkaer's),
    over `grid` x `grid` patches of full-resolution pixels: a 48 MP photo costs what a small one does.
    """
    height, width = colour.shape[:2]
    ys = sorted(set(np.linspace(0, max(0, height - patch), grid).astype(int)))
    xs = sorted(set(np.linspace(0, max(0, width - patch), grid).astype(int)))
    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    grey = [cv2.cvtColor(colour[y:y + patch, x:x + patch], cv2.COLOR_BGR2GRAY).astype(np.float32)
            for y in ys for x in xs]
    values = np.concatenate([np.abs(cv2.filter2D(part, -1, mask)[1:-1, 1:-1]).ravel() for part in grey])
    return float(np.median(values)) / (0.6745 * 6) if values.size else 0.0  # the mask's gain on noise is 6


def _quietened(colour: np.ndarray) -> np.ndarray:
    """The 8-bit BGR image smoothed in proportion to its noise where that is heavy; others as they are.

    Grain of 25 grey levels (a small sensor at night with no noise reduction, a CCTV still) took
    `balanced` from 97.8 % of the recall photos' faces of 20 px and more to 91.4 %; smoothed so,
    94.7 % (benchmarks/recall.py `noisy`). Grain of 12 grey levels cost 1 point unsmoothed. The
    recall photos as they are estimate at 1.2 in the median photo; 2 of 162 reach 6 (fine
    texture, 6.7 at most), and are smoothed by less than a pixel. The smoothing is a Gaussian of a
    tenth of the estimate, at most 1.6 px (the estimate of that grain: 16 in the median photo):
    uncapped, 94.5 %; 0.07 of it, 93.9 %; 0.15, only 83.9 % (crowd faces of 10 px and more: 82.4 %
    instead of 99.1 %).
    """
    level = noise_level(colour)
    return colour if level < NOISY else cv2.GaussianBlur(colour, (0, 0), min(0.1 * level, 1.6))


DIM = 0.6  # a channel whose brightest tones stay under this share of full scale is dim: a strong colour cast
LIFT = 2.0  # the most a dim channel is lifted


def _sample(colour: np.ndarray) -> np.ndarray:
    """About 256 x 256 pixels spread over the image, as a contiguous copy."""
    return np.ascontiguousarray(colour[:: max(1, colour.shape[0] // 256), :: max(1, colour.shape[1] // 256)])


def _lifted(colour: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """The 8-bit BGR image with a dim channel stretched from its own darkest tones, at most `LIFT` times.

    A strong cast (underwater, a white balance gone wrong: red 0.35x and green 0.7x) took `balanced`
    from 97.8 % of the recall photos' faces of 20 px and more to 95.3 %, and `fast` from 120 to
    113 of the 123 clear close-ups. Lifted so, 96.3 % and 118 (benchmarks/recall.py `cast`,
    `closeup+cast`; `balanced` 117 close-ups instead of 112, `fast` 79.6 % of the faces instead of
    58.7 %); unlimited, 97.4 % and 120, but 3 regions on the 19 face-free photos under the cast
    instead of none, and 21 on a dancer on a stage lit blue instead of 1 (2.5x: 2 regions on the
    face-free photos). Only 1 of the 162 recall photos as they are has a channel that dim (a
    red apple, no face). Balancing every channel to a grey average instead (gray-world) put 17
    regions on that stage as it is: a scene's own colour is not a cast. `sample`: `_sample(colour)`.
    """
    count = sample.shape[0] * sample.shape[1]
    table = np.repeat(np.arange(256, dtype=np.float32)[None, :, None], 3, axis=2)  # one LUT per channel
    dim = False
    for channel in range(3):
        cumulative = np.cumsum(cv2.calcHist([sample], [channel], None, [256], [0, 256]).ravel())
        low, high = np.searchsorted(cumulative, (0.005 * count, 0.995 * count))
        if high < DIM * 255:
            table[0, :, channel] = (table[0, :, channel] - low) * min(LIFT, 255.0 / max(high - low, 8))
            dim = True
    return cv2.LUT(colour, np.clip(table, 0, 255).astype(np.uint8)) if dim else colour


def for_detection(pixels: np.ndarray, smallest: int = 64) -> np.ndarray:
    """The decoded pixels as 8-bit BGR in the form detectors see best; the pixels themselves are not changed.

    Colour under transparency is kept (alpha is dropped, never applied). Deep images (12/16
    bit), dark, grey or washed-out ones are stretched to the full range from their own darkest
    and brightest tones; a channel left dim by a strong colour cast is lifted (`_lifted`); dithered
    1-bit images are smoothed into grey; heavy grain is smoothed (`_quietened`); images narrower
    than `smallest` pixels are padded (a 1x4000 strip is a valid photo with nothing to find).
    """
    colour = np.ascontiguousarray(pixels[:, :, :3]) if pixels.ndim == 3 else cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    sample = _sample(colour)
    luma = sample.max(axis=2)
    low, high = (float(v) for v in np.percentile(luma, (0.5, 99.5)))
    top = 65535.0 if colour.dtype == np.uint16 else 255.0
    flat = high - low < 0.03 * top  # one tone: nothing to stretch
    if colour.dtype != np.uint8 or (not flat and (high - low < 0.5 * top or high < 0.6 * top)):
        low, high = (0.0, top) if flat else (low, high)
        gain = 255.0 / (high - low)
        colour = cv2.convertScaleAbs(colour, alpha=gain, beta=-low * gain)
        sample = _sample(colour)
    if not flat:
        colour = _lifted(colour, sample)
    if not np.count_nonzero((luma > 0) & (luma < 255)) and min(colour.shape[:2]) >= 16:  # black and white only
        colour = cv2.GaussianBlur(colour, (0, 0), 1.5)
    else:
        colour = _quietened(colour)
    pad_y, pad_x = max(0, smallest - colour.shape[0]), max(0, smallest - colour.shape[1])
    if pad_y or pad_x:
        colour = cv2.copyMakeBorder(colour, 0, pad_y, 0, pad_x, cv2.BORDER_CONSTANT, value=0)
    return colour
