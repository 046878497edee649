"""JPEG in, JPEG out without decoding and encoding it: only the 8x8 blocks under the faces change.

libjpeg-turbo's lossless transform copies every coefficient of the file; a custom filter
replaces those of the blocks under each region (grown outwards to the MCU grid) with the
coefficients of the region redacted in pixels, as `redact` does it, quantised with the file's
own tables. What this cannot take raises `Fallback`, with the reason; the caller then
decodes and encodes the photo as before.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from app.outcomes import Region
from app.pipeline import dct, encoding, imageio, markers, orientation, redact, turbo
from app.pipeline.blockpatch import BlockPatch, block_masks
from app.pipeline.formats import jpeg_end

Rect = tuple[int, int, int, int]
REDUCTIONS = (8, 4, 2)  # libjpeg's DCT scaling: 1/8, 1/4, 1/2
STRIP = 256  # pixels of MCU rows whose blocks are made new together


class Fallback(Exception):
    """The lossless path cannot write this photo; `reason` says why, in plain words.

    `coding`: the JPEG is coded in a way this path does not take (12-bit, arithmetic, ...),
    which the decoder may not read either.
    """

    def __init__(self, reason: str, coding: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.coding = reason, coding
        self.regions: list[Region] | None = None  # the regions found before it gave up


@dataclass(frozen=True)
class Source:
    """A JPEG the lossless path can take: its picture's bytes, tables, size and how it stands."""

    data: bytes  # up to the picture's EOI (trailing data and further pictures left behind)
    frame: markers.Frame
    orientation: int
    turned: bool  # the orientation is applied losslessly; else it is kept in a minimal EXIF
    icc: bytes | None

    @property
    def stored(self) -> tuple[int, int]:
        return self.frame.width, self.frame.height

    @property
    def size(self) -> tuple[int, int]:
        """Width and height upright, as a viewer shows the photo."""
        return orientation.upright_size(*self.stored, self.orientation)

    @property
    def grey(self) -> bool:
        return len(self.frame.components) == 1

    def sampling(self) -> list[tuple[int, int]]:
        """Each component's sampling factors as written (turned with the photo where it is turned)."""
        if self.grey:
            return [(1, 1)]
        pairs = [(c.h, c.v) for c in self.frame.components]
        return [(v, h) for h, v in pairs] if self.turned and orientation.swaps(self.orientation) else pairs

    def tables(self) -> list[np.ndarray]:
        """Each component's quantisation table as written (transposed with the photo where it is turned)."""
        tables = [self.frame.quantisation(i) for i in range(len(self.frame.components))]
        return [t.T.copy() for t in tables] if self.turned and orientation.swaps(self.orientation) else tables

    def mcu(self, written: bool = True) -> tuple[int, int]:
        """The MCU's width and height in pixels, as written or as stored."""
        pairs = self.sampling() if written else [(1, 1)] if self.grey else [(c.h, c.v) for c in self.frame.components]
        return 8 * max(h for h, _ in pairs), 8 * max(v for _, v in pairs)

    def written_size(self) -> tuple[int, int]:
        return self.size if self.turned else self.stored

    def preview(self, longest: int | None) -> np.ndarray:
        """The photo upright, decoded at the smallest DCT scale whose longest side is still >= `longest`."""
        side = max(self.stored)
        denom = next((d for d in REDUCTIONS if longest and turbo.scaled(side, d) >= longest), 1)
        return imageio.orient(_turbo(turbo.decode, self.data, denom), self.orientation)


def _turbo(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except turbo.TurboError as exc:
        raise Fallback(f"libjpeg-turbo refused the file ({exc})") from exc


def _refusal(header: turbo.Header) -> str | None:
    """Why the lossless path cannot take a JPEG with this header, if it cannot."""
    if header.lossless:
        return "lossless (SOF3) coding"
    if header.arithmetic:
        return "arithmetic coding"
    if header.precision != 8:
        return f"{header.precision}-bit samples"
    if header.colorspace in (turbo.CS_CMYK, turbo.CS_YCCK):
        return "CMYK colour"
    if header.colorspace not in (turbo.CS_YCBCR, turbo.CS_GRAY):
        return "colour stored as RGB, not YCbCr"
    return None


def _frame(picture: bytes, grey: bool) -> markers.Frame:
    """The picture's frame and tables, read from the file; Fallback where they are not what is expected."""
    try:
        frame = markers.read_frame(picture)
    except markers.MarkerError as exc:
        raise Fallback(f"unexpected marker segments ({exc})") from exc
    if len(frame.components) != (1 if grey else 3):
        raise Fallback(f"{len(frame.components)} colour components")
    hmax, vmax = max(c.h for c in frame.components), max(c.v for c in frame.components)
    if not grey and any(hmax % c.h or vmax % c.v for c in frame.components):
        raise Fallback("uneven chroma sampling factors")
    return frame


def open_source(data: bytes, max_pixels: int) -> Source:
    """Check a JPEG for the lossless path; ImageError for what no path can read, Fallback for what this one cannot."""
    if turbo.problem():
        raise Fallback(turbo.problem())
    end = jpeg_end(data)
    if end is None:
        raise Fallback("the file ends before the picture does")
    picture = data[:end]
    header = _turbo(turbo.header, picture)
    refusal = _refusal(header)
    if refusal:
        raise Fallback(refusal, coding=True)
    info = imageio.probe(data, max_pixels)
    if info.format == "MPO":
        raise Fallback("several pictures in one file (MPO)")
    frame = _frame(picture, header.colorspace == turbo.CS_GRAY)
    source = Source(picture, frame, info.orientation, False, info.icc)
    turned = info.orientation != 1 and orientation.perfect(info.orientation, *source.stored, source.mcu(False))
    return replace(source, turned=turned)


def write(source: Source, regions: list[Region], method: str, outline: bool,
          upright: np.ndarray | None = None) -> tuple[bytes, str | None]:
    """The photo with every region redacted in its blocks, and a word on its orientation where it is kept.

    `upright`: the whole photo already decoded upright at full size (the preview of a preset that
    looks at all of it), redacted in place; else the regions' area is decoded again.
    """
    rects = _written_rects(source, regions, outline)
    patch = None
    if rects:  # each block under the regions is transformed once, however many regions overlap it
        box = _bounds(rects)
        redacted, corner = _redacted(source, regions, box, (method, outline), upright)
        mcus = _mcus(source, box, rects)
        masks = block_masks(box, mcus, source.sampling(), source.written_size())
        patch = BlockPatch(box, masks, _coefficients(source, redacted, corner, box, mcus, masks), source.sampling())
    turn = orientation.TURNS[source.orientation] if source.turned else turbo.XOP_NONE
    out = _turbo(turbo.transform, source.data, turn, _options(source), patch.callback if patch else None)
    if patch and patch.written != patch.expected:
        raise Fallback(f"the block filter wrote {patch.written} of {patch.expected} blocks")
    out = encoding.with_profile(out, "JPEG", source.icc)
    if source.turned or source.orientation == 1:
        return out, None
    width, height = source.stored
    mcu = source.mcu(False)
    return markers.with_segments(out, markers.orientation_exif(source.orientation)), (
        f"orientation {source.orientation} kept in a minimal EXIF: {width}x{height} is not a whole number "
        f"of its {mcu[0]}x{mcu[1]} blocks, so it cannot be turned losslessly")


def _options(source: Source) -> int:
    """TJXOPT flags: no markers copied; progressive stays progressive; optimised tables where the file had them."""
    flags = turbo.XOPT_COPYNONE | (turbo.XOPT_PERFECT if source.turned else 0)
    if source.frame.progressive:
        return flags | turbo.XOPT_PROGRESSIVE
    return flags | (turbo.XOPT_OPTIMIZE if source.frame.optimised else 0)


def _written_rects(source: Source, regions: list[Region], outline: bool) -> list[Rect]:
    """Each region (and its outline's reach) in written pixels, grown outwards to the MCU grid."""
    width, height = source.size
    reach = redact.outline_thickness(height, width) if outline else 0
    (mw, mh), (ww, wh) = source.mcu(), source.written_size()
    rects = []
    for r in regions:
        x0, y0 = max(0, r.x - reach), max(0, r.y - reach)
        x1, y1 = min(width, r.x + r.w + reach), min(height, r.y + r.h + reach)
        if x1 <= x0 or y1 <= y0:
            continue
        x, y, w, h = _written(source, (x0, y0, x1 - x0, y1 - y0))
        left, top = x // mw * mw, y // mh * mh
        right, bottom = min(-(-(x + w) // mw), -(-ww // mw)) * mw, min(-(-(y + h) // mh), -(-wh // mh)) * mh
        rects.append((left, top, right - left, bottom - top))
    return rects


def _written(source: Source, rect: Rect) -> Rect:
    """An upright rectangle in the pixels as written (stored ones where the orientation is kept)."""
    if source.turned or source.orientation == 1:
        return rect
    return orientation.to_stored(rect, source.orientation, *source.size)


def _upright(source: Source, rect: Rect) -> Rect:
    """A rectangle of the pixels as written, upright."""
    if source.turned or source.orientation == 1:
        return rect
    return orientation.to_upright(rect, source.orientation, *source.stored)


def _bounds(rects: list[Rect]) -> Rect:
    """The rectangles' bounding box (on the MCU grid, as they are)."""
    left, top = min(r[0] for r in rects), min(r[1] for r in rects)
    return left, top, max(r[0] + r[2] for r in rects) - left, max(r[1] + r[3] for r in rects) - top


def _mcus(source: Source, box: Rect, rects: list[Rect]) -> np.ndarray:
    """One cell per MCU of `box`, set where a rectangle covers it."""
    mw, mh = source.mcu()
    cells = np.zeros((box[3] // mh, box[2] // mw), bool)
    for x, y, w, h in rects:
        cells[(y - box[1]) // mh:(y + h - box[1]) // mh, (x - box[0]) // mw:(x + w - box[0]) // mw] = True
    return cells


def _coefficients(source: Source, redacted: np.ndarray, corner: tuple[int, int], box: Rect,
                  mcus: np.ndarray, masks: list[np.ndarray]) -> list[np.ndarray]:
    """Each component's blocks that `masks` marks, quantised, row by row over the box (as `BlockPatch` takes them).

    Strip by strip of MCU rows, each only as wide as its regions reach: a few faces far apart
    in a large photo cost their own blocks, not their bounding box's.
    """
    (mw, mh), sampling, tables = source.mcu(), source.sampling(), source.tables()
    planes: list[list[np.ndarray]] = [[] for _ in sampling]
    step = max(1, STRIP // mh)
    for first in range(0, len(mcus), step):
        cells = mcus[first:first + step]
        columns = np.flatnonzero(cells.any(axis=0))
        if not len(columns):
            continue
        left, right = int(columns[0]), int(columns[-1]) + 1
        strip = (box[0] + left * mw, box[1] + first * mh, (right - left) * mw, len(cells) * mh)
        keep = [mask[first * v:(first + len(cells)) * v, left * h:right * h] for mask, (h, v) in zip(masks, sampling)]
        pixels = _written_pixels(source, redacted, corner, strip)
        for plane, blocks in zip(planes, dct.coefficients(pixels, sampling, tables, keep)):
            plane.append(blocks)
    return [np.concatenate(p) if p else np.empty((0, 64), np.int16) for p in planes]


def _redacted(source: Source, regions: list[Region], box: Rect, how: tuple[str, bool],
              whole: np.ndarray | None) -> tuple[np.ndarray, tuple[int, int]]:
    """The box (written pixels), upright, redacted as `redact` does it; and its upright corner."""
    left, top, right, bottom = box[0], box[1], box[0] + box[2], box[1] + box[3]
    ww, wh = source.written_size()
    visible = (left, top, min(right, ww) - left, min(bottom, wh) - top)
    crop = orientation.to_stored(visible, source.orientation, *source.size) if source.turned else visible
    ux, uy, uw, uh = orientation.to_upright(crop, source.orientation, *source.stored)
    if whole is not None:
        upright = whole[uy:uy + uh, ux:ux + uw]
    else:
        upright = imageio.orient(_decode_crop(source, crop), source.orientation)
    width, height = source.size
    redact.redact_in_place(upright, [(r.x - ux, r.y - uy, r.w, r.h) for r in regions], *how,
                           redact.outline_thickness(height, width))
    return upright, (ux, uy)


def _written_pixels(source: Source, redacted: np.ndarray, corner: tuple[int, int], rect: Rect) -> np.ndarray:
    """A rectangle's redacted pixels as written, padded past the photo's edge as an encoder pads."""
    x, y, w, h = rect
    ww, wh = source.written_size()
    ux, uy, uw, uh = _upright(source, (x, y, min(x + w, ww) - x, min(y + h, wh) - y))
    part = redacted[uy - corner[1]:uy - corner[1] + uh, ux - corner[0]:ux - corner[0] + uw]
    part = part if source.turned else orientation.unorient(part, source.orientation)
    return cv2.copyMakeBorder(part, 0, h - part.shape[0], 0, w - part.shape[1], cv2.BORDER_REPLICATE)


def _decode_crop(source: Source, crop: Rect) -> np.ndarray:
    """The stored pixels of a crop whose left edge is on the MCU grid (a full decode where libjpeg cannot crop)."""
    try:
        return turbo.decode(source.data, 1, crop)
    except turbo.TurboError:
        x, y, w, h = crop
        return np.ascontiguousarray(_turbo(turbo.decode, source.data)[y:y + h, x:x + w])
