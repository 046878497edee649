"""The recall measure: how much of each ground-truth face the redacted regions cover."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

COVERED = 0.7  # a face counts as covered when this share of its box is redacted
BANDS = (("<10", 0, 10), ("10-20", 10, 20), ("20-50", 20, 50), (">=50", 50, 10**9),
         (">=10", 10, 10**9), (">=20", 20, 10**9))


def union_mask(shape: tuple[int, int], regions: Iterable[Sequence[float]]) -> np.ndarray:
    """Rasterise the union of [x, y, w, h] regions into a boolean mask."""
    mask = np.zeros(shape, bool)
    for x, y, w, h in regions:
        x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
        mask[y0:max(y0, int(round(y + h))), x0:max(x0, int(round(x + w)))] = True
    return mask


def face_coverage(mask: np.ndarray, faces: Iterable[Sequence[float]]) -> list[tuple[float, float]]:
    """For every ground-truth face: (its height, the share of its box inside the mask)."""
    out = []
    for x, y, w, h in faces:
        x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
        x1, y1 = min(mask.shape[1], int(round(x + w))), min(mask.shape[0], int(round(y + h)))
        share = float(mask[y0:y1, x0:x1].mean()) if x1 > x0 and y1 > y0 else 0.0
        out.append((float(h), share))
    return out


def outside_share(mask: np.ndarray, faces: Iterable[Sequence[float]]) -> float:
    """Share of the image area redacted outside every ground-truth face."""
    return float((mask & ~union_mask(mask.shape, faces)).mean())


def recall_by_band(coverages: list[tuple[float, float]]) -> dict[str, tuple[int, int]]:
    """(covered, total) faces per height band."""
    table = {}
    for label, low, high in BANDS:
        band = [share for h, share in coverages if low <= h < high]
        table[label] = (sum(share >= COVERED for share in band), len(band))
    return table
