"""Variants of the recall photos people really have: turned, tilted, grey, dark, grainy, faded, overexposed,
colour-cast, sepia, soft, small, lossy, huge, panoramic, turned every which way in one photo, close.

Each transform takes the ground truth ({name: (image, [[x, y, w, h], ...])}) and returns a new
one with the boxes moved to match; `montage` packs many photos into one large canvas at their
own size (faces keep their pixel size), as in a 48 MP photo or a 12000-px panorama.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from app.pipeline.resample import tilted_whole, turn, unturn_box

Sample = tuple[np.ndarray, list[list[float]]]
Set = dict[str, Sample]


def turned(quarters: int) -> Callable[[Set], Set]:
    """Turn every photo `quarters` quarter turns counter-clockwise, with no EXIF to say so."""
    def apply(samples: Set) -> Set:
        out = {}
        for name, (image, boxes) in samples.items():
            image = turn(image, quarters)
            height, width = image.shape[:2]
            # Turning back by the rest of a full turn maps the turned photo onto the original.
            out[name] = image, [list(unturn_box(tuple(b), 4 - quarters, width, height)) for b in boxes]
        return out
    return apply


def tilted(degrees: float) -> Callable[[Set], Set]:
    """Tilt every photo `degrees` counter-clockwise on a grey canvas grown to hold it (a slanted shot or scan).

    Each face's box keeps its size and moves with its centre: the face's middle, as tight as the
    upright box (the bounds of a tilted box would count the corners around the face).
    """
    def apply(samples: Set) -> Set:
        out = {}
        for name, (image, boxes) in samples.items():
            turned, back = tilted_whole(image, degrees)
            tilt = cv2.invertAffineTransform(back)
            moved = []
            for x, y, w, h in boxes:
                cx, cy = tilt @ np.array([x + w / 2, y + h / 2, 1.0])
                moved.append([float(cx - w / 2), float(cy - h / 2), w, h])
            out[name] = turned, moved
        return out
    return apply


def pixels(change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Set], Set]:
    """Change the pixels only; the boxes stay."""
    return lambda samples: {name: (change(image), boxes) for name, (image, boxes) in samples.items()}


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def dark(image: np.ndarray) -> np.ndarray:
    """Underexposed by about two stops, with the shadows crushed as a camera would."""
    return cv2.convertScaleAbs(image, alpha=0.25)


def noisy(image: np.ndarray) -> np.ndarray:
    """Grain of 25 grey levels in every channel: a small sensor at night with no noise reduction, a CCTV still."""
    rng = np.random.default_rng(1)
    return np.clip(image + rng.normal(0, 25, image.shape), 0, 255).astype(np.uint8)


def washed(image: np.ndarray) -> np.ndarray:
    """Low contrast with lifted blacks: fog, a faded print, a hazy scan."""
    return cv2.convertScaleAbs(image, alpha=0.3, beta=150)


def bright(image: np.ndarray) -> np.ndarray:
    """Overexposed by about a stop and a third, the highlights clipped."""
    return cv2.convertScaleAbs(image, alpha=2.5)


def cast(image: np.ndarray) -> np.ndarray:
    """A strong blue-green cast: underwater, or a white balance gone wrong (red 0.35x, green 0.7x)."""
    return cv2.transform(image, np.diag([1.0, 0.7, 0.35]))


def sepia(image: np.ndarray) -> np.ndarray:
    """An old print's brown monochrome."""
    return cv2.transform(image, np.array([[0.131, 0.534, 0.272], [0.168, 0.686, 0.349], [0.189, 0.769, 0.393]]))


def soft(image: np.ndarray) -> np.ndarray:
    """Out of focus or shaken a little: a Gaussian of 1.5 px."""
    return cv2.GaussianBlur(image, (0, 0), 1.5)


def jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def apply(image: np.ndarray) -> np.ndarray:
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(data, cv2.IMREAD_COLOR)
    return apply


def half(samples: Set) -> Set:
    """Every photo at half its size."""
    return {name: (cv2.resize(image, (max(1, image.shape[1] // 2), max(1, image.shape[0] // 2)),
                              interpolation=cv2.INTER_AREA), [[v / 2 for v in b] for b in boxes])
            for name, (image, boxes) in samples.items()}


def montage(width: int, height: int, label: str) -> Callable[[Set], Set]:
    """Pack the photos, at their own size, into as many width x height grey canvases as they need."""
    def apply(samples: Set) -> Set:
        out, canvas, boxes, x, y, row, count = {}, None, [], 0, 0, 0, 0

        def close() -> None:
            nonlocal canvas, boxes, count
            if canvas is not None:
                out[f"{label}{count:02d}"] = canvas, boxes
                count += 1
            canvas, boxes = None, []

        for image, faces in samples.values():
            h, w = image.shape[:2]
            if canvas is not None and x + w > width:
                x, y, row = 0, y + row + 16, 0
            if canvas is None or y + h > height:
                close()
                canvas, x, y, row = np.full((height, width, 3), 128, np.uint8), 0, 0, 0
            canvas[y:y + h, x:x + w] = image
            boxes += [[bx + x, by + y, bw, bh] for bx, by, bw, bh in faces]
            x, row = x + w + 16, max(row, h)
        close()
        return out
    return apply


def collage(width: int, height: int, label: str) -> Callable[[Set], Set]:
    """Turn the photos a quarter turn more each, in turn, and pack them into width x height canvases.

    A scanned album page or a collage: faces lying down and upside down beside upright ones, in one photo.
    """
    pack = montage(width, height, label)

    def apply(samples: Set) -> Set:
        return pack({name: turned(i % 4)({name: sample})[name] for i, (name, sample) in enumerate(samples.items())})
    return apply


def _faces_to_cut(samples: Set, least: float, only: set[tuple[str, int]] | None):
    """Each face at least `least` px tall (with `only`, just those named there as (photo, index)), with its photo."""
    for name, (image, faces) in samples.items():
        for i, face in enumerate(faces):
            if face[3] >= least and (only is None or (name, i) in only):
                yield f"{name}#{i}", image, face


def close_ups(samples: Set, least: float = 40.0, seed: int = 7, only: set[tuple[str, int]] | None = None) -> Set:
    """A close-up around every face at least `least` px tall: the face 1/8 to 1/2 of the crop's height.

    Only that face is scored (other faces in the crop are not listed: they may be cut). With
    `only`, just the faces named there as (photo, index).
    """
    rng = np.random.default_rng(seed)
    out = {}
    for key, image, (x, y, w, h) in _faces_to_cut(samples, least, only):
        height, width = image.shape[:2]
        side = min(height, width, int(h * rng.uniform(2, 8)))
        if side < h * 2:
            continue
        x0 = int(np.clip(x + w / 2 - side * rng.uniform(0.3, 0.7), 0, width - side))
        y0 = int(np.clip(y + h / 2 - side * rng.uniform(0.3, 0.7), 0, height - side))
        if x < x0 or y < y0 or x + w > x0 + side or y + h > y0 + side:
            continue
        out[key] = image[y0:y0 + side, x0:x0 + side].copy(), [[x - x0, y - y0, w, h]]
    return out


def tight_close_ups(samples: Set, only: set[tuple[str, int]] | None = None, least: float = 40.0, seed: int = 7,
                    side: int = 1200) -> Set:
    """A close-up filled by the face (0.6 to 0.9 of the crop's height) around every face at least `least` px tall.

    A passport photo, a profile picture, a selfie held close: each crop is enlarged to `side` pixels,
    as a phone's photo of a face that fills it would be. Only that face is scored; with `only`, just
    the faces named there as (photo, index).
    """
    rng = np.random.default_rng(seed)
    out = {}
    for key, image, (x, y, w, h) in _faces_to_cut(samples, least, only):
        height, width = image.shape[:2]
        crop = int(max(h / rng.uniform(0.6, 0.9), w * 1.05))
        x0 = int(round(x + w / 2 - crop * rng.uniform(0.45, 0.55)))
        y0 = int(round(y + h / 2 - crop * rng.uniform(0.45, 0.55)))
        x0, y0 = min(max(x0, int(x + w) - crop), int(x)), min(max(y0, int(y + h) - crop), int(y))
        if x0 < 0 or y0 < 0 or x0 + crop > width or y0 + crop > height:
            continue
        scale = side / crop
        out[key] = (cv2.resize(image[y0:y0 + crop, x0:x0 + crop], (side, side), interpolation=cv2.INTER_CUBIC),
                    [[(x - x0) * scale, (y - y0) * scale, w * scale, h * scale]])
    return out


TRANSFORMS: dict[str, Callable[[Set], Set]] = {
    "upright": lambda samples: samples,
    "turn90": turned(1),
    "turn180": turned(2),
    "turn270": turned(3),
    "tilt30": tilted(30),
    "tilt45": tilted(45),
    "grey": pixels(grey),
    "dark": pixels(dark),
    "half": half,
    "jpeg30": pixels(jpeg(30)),
    "noisy": pixels(noisy),
    "washed": pixels(washed),
    "bright": pixels(bright),
    "cast": pixels(cast),
    "sepia": pixels(sepia),
    "soft": pixels(soft),
    "48mp": montage(8000, 6000, "canvas48mp_"),
    "panorama": montage(12000, 1700, "panorama_"),
    "collage": collage(4000, 3000, "collage12mp_"),
}
