"""Recall of every preset, through the product's own pipeline, on photos with ground-truth faces.

    python -m benchmarks.recall ../shared/data/faces [--presets fast,balanced,thorough]

FOLDER holds gt/ (images and annotations.json: {file: [[x, y, w, h], ...]}) and, optionally,
nofaces/ (photos without faces: every region there is a false positive). Subsets are the
file-name prefixes before the first '_' (wider, wider416, dlib, ...).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2

from app.config import load_config
from app.pipeline.imageio import is_image_name
from app.pipeline.presets import PRESETS, build_detector, resolve
from app.pipeline.process import Options, process_image
from benchmarks.coverage import (
    BANDS,
    face_coverage,
    outside_share,
    recall_by_band,
    union_mask,
)


def run_preset(preset: str, images: list[Path], config: dict) -> tuple[dict[str, list], float]:
    """Redact every image with the preset; return the regions per image and ms per image."""
    detector = build_detector(preset, config["DETECTION_THRESHOLD"])
    options = Options.from_config(config, method="blur", boxes=False, preset=preset)
    regions, started = {}, time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        for i, path in enumerate(images):
            result = process_image(path, Path(out) / f"{i}{path.suffix}", detector, options)
            regions[path.as_posix()] = [r.box() for r in result.regions]
    return regions, 1000 * (time.perf_counter() - started) / max(len(images), 1)


def score(regions: dict[str, list], truth: dict[str, list], gt_dir: Path, nofaces: list[Path]) -> dict:
    """Coverage recall per subset and band, false positives, area redacted outside faces."""
    coverages, outside = defaultdict(list), defaultdict(list)
    for name, faces in truth.items():
        path = gt_dir / name
        height, width = cv2.imread(str(path)).shape[:2]
        mask = union_mask((height, width), regions[path.as_posix()])
        subset = name.split("_")[0]
        for key in (subset, "all"):
            coverages[key] += face_coverage(mask, faces)
            outside[key].append(outside_share(mask, faces))
    return {"recall": {k: recall_by_band(v) for k, v in coverages.items()},
            "outside": {k: sum(v) / len(v) for k, v in outside.items()},
            "fp_regions": sum(len(regions[p.as_posix()]) for p in nofaces),
            "fp_photos": sum(bool(regions[p.as_posix()]) for p in nofaces), "nofaces": len(nofaces)}


def print_table(preset: str, result: dict, ms: float) -> None:
    bands = [label for label, _, _ in BANDS]
    print(f"\n== preset {preset}: {ms:.0f} ms per image (decode + detect + redact + encode, one thread)")
    print(f"{'subset':10s} " + " ".join(f"{b:>15s}" for b in bands) + f" {'outside':>8s}")
    for subset in sorted(result["recall"], key=lambda s: (s == "all", s)):
        cells = []
        for band in bands:
            hit, total = result["recall"][subset][band]
            cells.append(f"{100 * hit / total:5.1f}% {hit:4d}/{total:<4d}" if total else f"{'-':>15s}")
        print(f"{subset:10s} " + " ".join(f"{c:>15s}" for c in cells) + f" {100 * result['outside'][subset]:7.2f}%")
    print(f"no-face photos: {result['fp_regions']} regions on {result['fp_photos']} of {result['nofaces']} photos "
          f"({10 * result['fp_regions'] / max(result['nofaces'], 1):.1f} per 10 photos)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="folder with gt/annotations.json (and nofaces/)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets to measure")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    gt_dir = args.folder / "gt"
    truth = json.loads((gt_dir / "annotations.json").read_text())
    nofaces = sorted(p for p in (args.folder / "nofaces").glob("*") if is_image_name(p.name))
    images = [gt_dir / name for name in truth] + nofaces
    config = load_config()
    print(f"{len(truth)} photos with {sum(map(len, truth.values()))} faces, {len(nofaces)} without faces; "
          f"a face is covered when >= 70% of its box is redacted")
    figures = {}
    for preset in args.presets.split(","):
        ran, note = resolve(preset)
        if note:
            print(f"\n{note}")
        regions, ms = run_preset(ran.name, images, config)
        figures[preset] = {**score(regions, truth, gt_dir, nofaces), "ms_per_image": ms}
        print_table(preset, figures[preset], ms)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
