"""What a photo's faces are: the boxes every look found, fused by consensus, with the crowd rule on top.

Engine adapters live in `engines`, resampling in `resample`; this module decides which boxes are faces.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from app.pipeline.resample import rescale, tilted_cut, tilted_whole, turn, unturn_box


@dataclass(frozen=True)
class FaceBox:
    """A detected face in pixels of the image it was found in."""

    x: float
    y: float
    w: float
    h: float
    score: float
    engine: str
    margin: float = 1.0  # the share of the usual padding this box gets (looser boxes get more)
    tilted: bool = False  # found only in a cut turned 45 degrees (see `Tilted`)
    vouched: bool = False  # kept only on a crowd's word (see `Crowd`): redacted within a budget


@dataclass(frozen=True)
class Pass:
    """The boxes one look at the image found, and the scale that look had (pass pixels per image pixel)."""

    scale: float
    boxes: list[FaceBox]


class Detector(Protocol):
    """Anything that finds faces in an upright BGR image."""

    def __call__(self, image: np.ndarray) -> list[FaceBox]: ...


def _intersections(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection areas of the rows of `a` and `b` ([x0, y0, x1, y1], broadcast), and the rows' own areas."""
    ix = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    return ix * iy, (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _iou_with(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one [x0, y0, x1, y1] box with each row of `others`."""
    inter, area, areas = _intersections(box[None, :], others)
    return inter / (area + areas - inter + 1e-9)


def _corners(box: FaceBox) -> np.ndarray:
    return np.array([box.x, box.y, box.x + box.w, box.y + box.h])


def _corner_rows(boxes: list[FaceBox], rows: int | None = None) -> np.ndarray:
    """[x0, y0, x1, y1] of each box, in an array with room for `rows` rows (the rest unset)."""
    out = np.empty((max(len(boxes), rows or 0), 4))
    out[:len(boxes)] = [(b.x, b.y, b.x + b.w, b.y + b.h) for b in boxes] if boxes else np.empty((0, 4))
    return out


def _windows(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i, j) with lo[i] <= j < hi[i], as two arrays."""
    counts = np.maximum(hi - lo, 0)
    own = np.repeat(np.arange(len(lo)), counts)
    return own, lo[own] + np.arange(len(own)) - np.repeat(np.cumsum(counts) - counts, counts)


def _meeting(corners: np.ndarray, chunk: int = 1 << 20):
    """Pairs of boxes (rows of `corners`) whose spans across the photo meet, about `chunk` at a time.

    Sorted by left edge, each box is paired with the boxes that start before it ends. Yields the
    pairs' rows, their intersections' areas and each box's own area.
    """
    by_left = np.argsort(corners[:, 0], kind="stable")
    ordered = corners[by_left]
    counts = np.maximum(np.searchsorted(ordered[:, 0], ordered[:, 2]) - np.arange(len(corners)) - 1, 0)
    bounds = np.searchsorted(np.cumsum(counts), np.arange(chunk, int(counts.sum()) + chunk, chunk), "right")
    for lo, hi in zip([0, *bounds[:-1]], bounds):
        rows = np.arange(lo, hi)
        first, other = _windows(rows + 1, rows + 1 + counts[lo:hi])
        own = rows[first]
        yield by_left[own], by_left[other], *_intersections(ordered[own], ordered[other])


def _joined(found: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate([f for f, _ in found] + [np.empty(0, int)]),
            np.concatenate([s for _, s in found] + [np.empty(0, int)]))


def _overlapping_pairs(corners: np.ndarray, overlap: float, chunk: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of boxes (first, second: rows of `corners`, first < second) with IoU > `overlap`."""
    found = []
    for a, b, inter, area_a, area_b in _meeting(corners, chunk):
        hit = inter / (area_a + area_b - inter + 1e-9) > overlap
        found.append((a[hit], b[hit]))
    first, second = _joined(found)
    return np.minimum(first, second), np.maximum(first, second)


def _covering_pairs(corners: np.ndarray, share: float, chunk: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of boxes (covered, covering: rows of `corners`) where the second covers over `share` of the first."""
    found = []
    for a, b, inter, area_a, area_b in _meeting(corners, chunk):
        over_a, over_b = inter / (area_a + 1e-9) > share, inter / (area_b + 1e-9) > share
        found += [(a[over_a], b[over_a]), (b[over_b], a[over_b])]
    return _joined(found)


def _clusters(corners: np.ndarray, overlap: float) -> tuple[np.ndarray, list[int]]:
    """Group boxes ranked best first: each box joins the first face (best first) it overlaps by IoU > `overlap`.

    Returns each box's face and each face's leading box. Taken one by one, a box is a new
    face's lead unless it overlaps an earlier lead; so walking the overlapping pairs in order of
    their later box, each box's leads-or-not is settled before any later box asks.
    """
    earlier, later = _overlapping_pairs(corners, overlap)
    order = np.lexsort((earlier, later))
    claimed = [-1] * len(corners)  # the lead each box joins; -1 for a lead
    for a, b in zip(earlier[order].tolist(), later[order].tolist()):
        if claimed[b] < 0 and claimed[a] < 0:
            claimed[b] = a
    claims = np.array(claimed)
    leads = np.flatnonzero(claims < 0)
    face = np.empty(len(corners), int)
    face[leads] = np.arange(len(leads))
    return face[np.where(claims < 0, np.arange(len(corners)), claims)], leads.tolist()


def fuse(passes: list[Pass], threshold: float, overlap: float = 0.3, min_face: float = 12.0) -> list[FaceBox]:
    """Merge the boxes of several passes by consensus.

    Boxes that overlap (IoU > `overlap`) are one face. Its score is the mean, over the
    passes that could have seen it (where it is at least `min_face` pixels tall at the
    pass's scale), of each pass's best score for it; a pass that missed it counts 0.
    A face one pass saw faintly is dropped; one most passes agree on is kept even if
    each was unsure; a small face only the enlarged pass could see is judged by it alone.
    A crowd photo gives thousands of faint boxes (a 48 MP canvas of 3,385 faces, 38,000):
    each face is compared at once with the boxes near it, and the votes are counted in numpy.
    """
    ranked = sorted(((box, i) for i, p in enumerate(passes) for box in p.boxes), key=lambda t: -t[0].score)
    if not ranked:
        return []
    face_of, leads = _clusters(_corner_rows([b for b, _ in ranked]), overlap)
    which = np.array([i for _, i in ranked])
    best = np.zeros((len(leads), len(passes)))
    np.maximum.at(best, (face_of, which), [b.score for b, _ in ranked])
    voted = np.zeros_like(best, bool)
    voted[face_of, which] = True
    heights = np.array([ranked[j][0].h for j in leads])
    seeing = heights[:, None] * np.array([p.scale for p in passes])[None, :] >= min_face
    scores = best.sum(axis=1) / (seeing | voted).sum(axis=1)
    names = sorted({b.engine for b, _ in ranked})
    used = np.zeros((len(leads), len(names)), bool)
    used[face_of, [names.index(b.engine) for b, _ in ranked]] = True
    fused = []
    for face in np.flatnonzero(scores >= threshold):
        lead = ranked[leads[face]][0]
        engines = "+".join(name for name, on in zip(names, used[face]) if on)
        fused.append(FaceBox(lead.x, lead.y, lead.w, lead.h, float(scores[face]), engines))
    return fused


@dataclass(frozen=True)
class Crowd:
    """How a photo full of people lowers the bar for the faces among them.

    Where at least `need` faces score `support` or more, the photo is a group or a crowd:
    there, a face between `support` and the threshold is kept, and so is a fainter one
    (down to `floor`) whose height is within `sizes` of the median height of the
    `neighbours` sure faces nearest to it up or down the photo (a crowd's faces shrink
    as it recedes, so faces at the same height in the photo are the fair comparison).
    Those faint boxes are looser, so they get `margin` times the usual padding.
    A photo without people (a dog, a galaxy) gets no such help; and there, a face smaller than
    `lone` pixels (below what the preset promises to find) is kept only when `lone_bar` sure: on
    small face-free photos, enlarged for the look, specks of texture scored just over the threshold.
    """

    support: float = 0.5
    need: int = 3
    floor: float = 0.1
    sizes: tuple[float, float] = (0.5, 2.0)
    neighbours: int = 5
    margin: float = 1.5
    overlap: float = 0.3  # a faint box with more than this share of it over a kept face is not another face
    least: float = 9.0  # faint boxes smaller than this (photo pixels) are not vouched for: below 10 px a
    # face is not identifiable, and a dense crowd of specks gave a thousand boxes over 80 % of a photo
    lone: float = 0.0
    lone_bar: float = 0.5

    def bar(self, face: FaceBox, threshold: float) -> float:
        """The score a face needs to be kept on its own, without a crowd's help."""
        return max(threshold, self.lone_bar) if face.h < self.lone else threshold

    def _typical(self, faces: list[FaceBox], heights: np.ndarray, middles: np.ndarray) -> np.ndarray:
        """The median height of the sure faces (`heights`, centred at `middles`) nearest each face up or down."""
        neighbours = min(self.neighbours, len(heights))
        centres = np.array([f.y + f.h / 2 for f in faces])
        typical = np.empty(len(faces))
        rows = max(1, (1 << 18) // len(heights))  # 2 MB of distances at a time
        for start in range(0, len(faces), rows):
            distance = np.abs(middles[None, :] - centres[start:start + rows, None])
            nearest = np.argpartition(distance, neighbours - 1, axis=1)[:, :neighbours]
            typical[start:start + rows] = np.median(heights[nearest], axis=1)
        return typical

    def extra(self, candidates: list[FaceBox], threshold: float) -> list[FaceBox]:
        """The candidates below `threshold` that this photo's crowd vouches for."""
        sure = [f for f in candidates if f.score >= self.support]
        if len(sure) < self.need:
            return []
        heights = np.array([f.h for f in sure])
        middles = np.array([f.y + f.h / 2 for f in sure])
        # A faint box mostly over a face already kept is that face again (or its shoulder): a dense
        # crowd gives thousands of such peaks, which would blur the whole photo. Kept so far: the
        # faces sure on their own, then, in turn, each face the crowd's word keeps.
        taken = [f.score >= max(self.bar(f, threshold), self.support) for f in candidates]
        covered, covering = _covering_pairs(_corner_rows(candidates), self.overlap)
        under: dict[int, list[int]] = {}
        for i, j in zip(covered.tolist(), covering.tolist()):
            under.setdefault(i, []).append(j)
        typical = self._typical(candidates, heights, middles)
        kept = []
        for i, face in enumerate(candidates):  # best first
            if face.score >= self.bar(face, threshold):
                continue
            if face.score >= self.support:
                kept.append(face)
                taken[i] = True
                continue
            usual = typical[i]
            if face.h < self.least or not self.sizes[0] * usual <= face.h <= self.sizes[1] * usual:
                continue
            if any(taken[j] for j in under.get(i, ())):
                continue
            kept.append(replace(face, margin=self.margin, vouched=True))
            taken[i] = True
        return kept


def merge(faces: list[FaceBox], more: list[FaceBox]) -> list[FaceBox]:
    """Add `more` faces to `faces`; one that overlaps a face already there is joined to it (`joined`)."""
    faces = list(faces)
    corners = _corner_rows(faces, len(faces) + len(more))  # the first len(faces) rows: the faces so far
    for box in more:
        hits = np.flatnonzero(_iou_with(_corners(box), corners[:len(faces)]) > 0.3) if faces else ()
        match = int(hits[0]) if len(hits) else None
        if match is None:
            corners[len(faces)] = _corners(box)
            faces.append(box)
        else:
            faces[match] = joined(faces[match], box)
    return faces


def joined(face: FaceBox, other: FaceBox) -> FaceBox:
    """A face seen again by another look: its box as it was, the surer score, and both engines.

    The surer verdict stands: a faint box a crowd vouched for (redacted only where it keeps the
    photo at most half redacted) that another look is sure of is a sure face. A close group
    selfie turned upside down showed it: the photo as it is gave faint boxes, the turn sure faces.
    """
    return replace(face, score=max(face.score, other.score), vouched=face.vouched and other.vouched,
                   engine="+".join(sorted({*face.engine.split("+"), *other.engine.split("+")})))


class Tilted:
    """Faces tilted about 45 degrees: between two quarter turns, where no look is sure of them.

    CenterFace finds faces up to about 20 degrees off upright; at 45 degrees it gives most of
    them only faint boxes (0.05-0.4), as it does specks of texture. So each faint box the looks
    left (scoring at least `low`, at least `least` pixels and `share` of the image's shorter side
    tall, over no face kept; the `most` best of them, `most` more for every `area` pixels of a
    larger photo) is looked at again: a square cut around it, about twice its size, enlarged or
    shrunk to `side` pixels and turned 45 degrees each way. A face found there scoring `bar`,
    `least` pixels tall or more, near the cut's centre and of about the faint box's size, is a
    face: its box is the bounds, on the photo, of what was found in the turned cut (marked
    `tilted`: `Turns` does not count it as an upright face).

    When those faces found turned the same way are `whole` or more, and, in a photo sure of
    many upright faces, one for every `per_sure` of them (or half the boxes looked at), the photo
    itself is tilted (a slanted shot or scan, a group lying down): the whole photo, turned that
    way, gets the full look (`look`), so that faces with no faint box at all are found too. A
    mostly upright photo with a few heads on shoulders does not pay for that look (a 48 MP
    canvas of upright photos did, for 7 s). On the recall photos tilted 45 degrees, `balanced`
    found 489 of 509 faces of 20 px and more (97.8 % upright), and every one of the 426 crowd
    faces of 10 px and more (see the README).
    """

    def __init__(self, model: Detector, low: float = 0.05, bar: float = 0.5, least: float = 12.0,
                 most: int = 16, side: int = 96, degrees: tuple[float, ...] = (45.0, -45.0), whole: int = 2,
                 share: float = 0.0, area: float = 4e6, per_sure: float = 8.0) -> None:
        self.model, self.low, self.bar, self.least, self.most = model, low, bar, least, most
        self.side, self.degrees, self.whole, self.share = side, degrees, whole, share
        self.area, self.per_sure = area, per_sure

    def find(self, image: np.ndarray, candidates: list[FaceBox], kept: list[FaceBox],
             look: Detector | None = None) -> list[FaceBox]:
        """The faint candidates (best first) that are faces once turned, as boxes on `image`.

        With `look`, and enough of them turned the same way (see the class), also what `look` finds
        in the whole image turned that way.
        """
        height, width = image.shape[:2]
        least = max(self.least, self.share * min(height, width))
        most = max(self.most, round(self.most * height * width / self.area))
        faint = sorted((c for c in candidates if self.low <= c.score and c.h >= least), key=lambda c: -c.score)
        found = [hit for box in _apart(faint, kept, most) if (hit := self._look(image, box)) is not None]
        faces = [face for face, _ in found]
        sure = sum(f.score >= self.bar for f in kept)
        needed = max(self.whole, min(sure / self.per_sure, most / 2))
        for degrees in self.degrees if look is not None else ():
            if sum(turned == degrees for _, turned in found) >= needed:
                whole, back = tilted_whole(image, degrees)
                faces += [_mapped_back(face, back) for face in look(whole)]
        return faces

    def _look(self, image: np.ndarray, box: FaceBox) -> tuple[FaceBox, float] | None:
        """The face in the cuts around `box`, on `image`, and the degrees its cut was turned; or None."""
        centre = (box.x + box.w / 2, box.y + box.h / 2)
        scale = self.side / (2.2 * max(box.w, box.h))
        best = None
        for degrees in self.degrees:
            cut, back = tilted_cut(image, centre, degrees, scale, self.side)
            for found in self.model(cut):
                middle = np.array([found.x + found.w / 2, found.y + found.h / 2])
                if (found.score < self.bar or np.abs(middle - self.side / 2).max() > self.side / 4
                        or found.h / scale < self.least or not 0.5 <= found.h / (box.h * scale) <= 2.5):
                    continue
                if best is None or found.score > best[0].score:
                    best = found, back, degrees
        if best is None:
            return None
        found, back, degrees = best
        return _mapped_back(found, back), degrees


def _apart(boxes: list[FaceBox], kept: list[FaceBox], most: int, chunk: int = 1024) -> list[FaceBox]:
    """The first `most` of `boxes` whose centre lies in no kept face and that hold no kept face's centre.

    Taken `chunk` boxes at a time (a crowd's best boxes are mostly its kept faces themselves). Each
    box is compared only with the kept faces near it across the photo: those whose left edge is
    within the widest kept face's width to the left of its centre, and those whose centres lie
    between its sides (both found in the kept faces sorted once); a 48 MP canvas of 8,900 faces
    costs about what a 1080p frame's few dozen did.
    """
    if not kept:
        return boxes[:most]
    others = _corner_rows(kept)
    by_left = others[np.argsort(others[:, 0], kind="stable")]
    widest = float((by_left[:, 2] - by_left[:, 0]).max()) + 1.0  # 1 px more than enough: float rounding
    middles = (others[:, :2] + others[:, 2:]) / 2
    middles = middles[np.argsort(middles[:, 0], kind="stable")]
    apart: list[FaceBox] = []
    for start in range(0, len(boxes), chunk):
        rows = boxes[start:start + chunk]
        corners = _corner_rows(rows)
        centres = (corners[:, :2] + corners[:, 2:]) / 2
        over = np.zeros(len(rows), bool)
        # A centre in a kept face: only faces starting at most `widest` to its left can hold it.
        own, face = _windows(np.searchsorted(by_left[:, 0], centres[:, 0] - widest, "left"),
                             np.searchsorted(by_left[:, 0], centres[:, 0], "right"))
        inside = ((by_left[face, :2] <= centres[own]) & (centres[own] <= by_left[face, 2:])).all(axis=1)
        over[own[inside]] = True
        # A kept face's centre in the box: the centres between its left and right sides.
        own, face = _windows(np.searchsorted(middles[:, 0], corners[:, 0], "left"),
                             np.searchsorted(middles[:, 0], corners[:, 2], "right"))
        holds = (corners[own, 1] <= middles[face, 1]) & (middles[face, 1] <= corners[own, 3])
        over[own[holds]] = True
        apart += [box for box, out in zip(rows, over) if not out]
        if len(apart) >= most:
            break
    return apart[:most]


def _mapped_back(found: FaceBox, back: np.ndarray) -> FaceBox:
    """A box found in a turned image, as the bounds of its corners mapped back by `back` (marked tilted)."""
    corners = np.array([[found.x, found.y, 1], [found.x + found.w, found.y, 1],
                        [found.x, found.y + found.h, 1], [found.x + found.w, found.y + found.h, 1]]) @ back.T
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    return replace(found, x=float(x0), y=float(y0), w=float(x1 - x0), h=float(y1 - y0), tilted=True)


class EnsembleDetector:
    """Looks merged by consensus, plus detectors whose own verdict stands.

    The passes of `members` vote together through `fuse`; a face is kept when its consensus
    score reaches `threshold`, or, with `crowd`, when the photo's crowd vouches for it. Each
    of `independent` (the close-up looks) keeps the boxes it is confident of on its own, merged
    into an overlapping face where there is one. Each of `seconded` (MediaPipe, another engine)
    does so only where the members saw something too, however faintly (a box down to their
    floor): one engine's certainty over a place the other sees nothing at all is not enough.
    """

    def __init__(self, members: list, threshold: float, independent: list | None = None,
                 crowd: Crowd | None = None, tilted: Tilted | None = None, seconded: list | None = None) -> None:
        self.members, self.threshold, self.independent, self.crowd = members, threshold, independent or [], crowd
        self.tilted, self.seconded = tilted, seconded or []

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        faces, candidates = self._looked(image)
        if self.tilted is not None:
            faces = merge(faces, self.tilted.find(image, candidates, faces,
                                                  look=lambda turned: self._looked(turned, image.shape[:2])[0]))
        return faces

    def _looked(self, image: np.ndarray, size: tuple[int, int] | None = None) -> tuple[list[FaceBox], list[FaceBox]]:
        """The faces of one image, and every fused box down to the floor; `size` as in `CenterFaceScan.passes`."""
        faces, candidates = self._decide([p for member in self.members for p in member.passes(image, size)])
        for detector in self.seconded:
            faces = merge(faces, [box for box in detector(image) if _seen(box, candidates)])
        for detector in self.independent:
            faces = merge(faces, detector(image))
        return faces, candidates

    def decide(self, passes: list[Pass]) -> list[FaceBox]:
        """The faces the members' passes agree on, and those the photo's crowd vouches for."""
        return self._decide(passes)[0]

    def _decide(self, passes: list[Pass]) -> tuple[list[FaceBox], list[FaceBox]]:
        """`decide`'s faces, and every fused box (best first), kept or not, down to the floor or the tilted look's."""
        floor = min(self.threshold, self.crowd.floor) if self.crowd else self.threshold
        low = min(floor, self.tilted.low) if self.tilted else floor
        everything = fuse(passes, low)
        candidates = [f for f in everything if f.score >= floor]
        if self.crowd is None:
            return candidates, everything
        faces = [f for f in candidates if f.score >= self.crowd.bar(f, self.threshold)]
        return faces + self.crowd.extra(candidates, self.threshold), everything

    def close(self) -> None:
        for member in self.members + self.seconded + self.independent:
            getattr(getattr(member, "model", member), "close", lambda: None)()


def _seen(box: FaceBox, boxes: list[FaceBox]) -> bool:
    """Tell whether any of `boxes` overlaps `box` (IoU above 0.2) or has its centre inside it."""
    if not boxes:
        return False
    corners = _corner_rows(boxes)
    middles = (corners[:, :2] + corners[:, 2:]) / 2
    inside = ((middles >= [box.x, box.y]) & (middles <= [box.x + box.w, box.y + box.h])).all(axis=1)
    return bool((inside | (_iou_with(_corners(box), corners) > 0.2)).any())


def _centre_in(face: FaceBox, box: FaceBox) -> bool:
    """Tell whether a face's centre lies inside a box (a coarse check's box over faces found finely)."""
    cx, cy = face.x + face.w / 2, face.y + face.h / 2
    return box.x <= cx <= box.x + box.w and box.y <= cy <= box.y + box.h


def _unturned(box: FaceBox, quarters: int, width: int, height: int, scale: float = 1.0) -> FaceBox:
    """A box found in a turned copy (of a width x height image, at `scale`), in the image's own pixels."""
    x, y, w, h = unturn_box((box.x, box.y, box.w, box.h), quarters, width, height)
    return replace(box, x=x / scale, y=y / scale, w=w / scale, h=h / scale)


class Turns:
    """Find faces in photos turned sideways or upside down, and faces lying down in upright ones.

    `detector` looks at the photo as it is. Then `check`, a cheap detector, looks at a copy
    shrunk to `as_is_side` pixels as it is (the detector's own coarse look, where the sizes match),
    and at one shrunk to `check_side` pixels turned a quarter, half and three-quarter turn.
    A turn gets the full look of `detector` too when the check is sure (`sure`) of faces there
    and either one of them holds no face the upright look found (a person lying down) or the turn
    shows at least as much face as the photo as it is, and more than one sure face's worth (a
    photo turned sideways: its large faces may be found sideways, its small ones are not).
    Where neither the upright look nor any check is sure of a face, the photo's orientation
    cannot be told cheaply (a sideways crowd of small faces, or no faces at all), and every
    turn gets the full look. The faces of each turn,
    mapped back, join the upright ones. Upright photos with faces pay for the checks only. With
    `always`, every turn gets the full look (for cheap detectors). With `side`, the turns are cut
    from a copy shrunk to that many pixels (for detectors that look at less than that anyway: a
    1080p photo turned in full costs more than `fast`'s looks at it).
    """

    def __init__(self, detector: Detector, check: Detector | None = None, check_side: int = 480,
                 sure: float = 0.5, always: bool = False, side: int | None = None,
                 as_is_side: int | None = None) -> None:
        self.detector, self.check, self.check_side, self.sure, self.always = detector, check, check_side, sure, always
        self.side, self.as_is_side = side, as_is_side or check_side

    def __call__(self, image: np.ndarray) -> list[FaceBox]:
        height, width = image.shape[:2]
        faces = self.detector(image)
        looks = self._turns_to_look(image, faces)
        source = image if self.side is None else rescale(image, min(1.0, self.side / max(height, width)))
        scale = source.shape[1] / width
        for quarters in looks:
            found = self.detector(turn(source, quarters))
            faces = merge(faces, [_unturned(b, quarters, source.shape[1], source.shape[0], scale) for b in found])
        return faces

    def _turns_to_look(self, image: np.ndarray, upright: list[FaceBox]) -> list[int]:
        """The quarter turns that get the full look, from the cheap checks (see the class)."""
        if self.always:
            return [1, 2, 3]
        # A tilted face's box is the loose bounds of a turned one: over a sideways crowd it would
        # hide the faces a turn's check finds, and the turn would not get the full look it needs.
        upright = [f for f in upright if not f.tilted]
        width, longest = image.shape[1], max(image.shape[:2])
        shrunk = {side: rescale(image, min(1.0, side / longest)) for side in {self.check_side, self.as_is_side}}
        hits = {q: self._sure(shrunk[self.check_side if q else self.as_is_side], q, width) for q in range(4)}
        if not any(f.score >= self.sure for f in upright) and not any(hits.values()):
            return [1, 2, 3]
        as_is = sum(b.score for b in hits[0])
        return [q for q in (1, 2, 3) if hits[q] and (sum(b.score for b in hits[q]) >= max(as_is, 2 * self.sure) or any(
            not any(_centre_in(face, hit) for face in upright) for hit in hits[q]))]

    def _sure(self, small: np.ndarray, quarters: int, width: int) -> list[FaceBox]:
        """The faces the check is sure of in `small` (the image shrunk from `width` pixels) turned, in image pixels."""
        scale = small.shape[1] / width
        return [_unturned(b, quarters, small.shape[1], small.shape[0], scale)
                for b in self.check(turn(small, quarters)) if b.score >= self.sure]

    def close(self) -> None:
        for part in (self.detector, self.check):
            getattr(part, "close", lambda: None)()
