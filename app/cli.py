"""The `faceguard` command: redact faces in files, folders and zips into an output folder."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from app.batch import BatchService
from app.config import load_config
from app.errors import FaceGuardError
from app.ingest import Intake
from app.jobs import Job, JobRegistry
from app.pipeline.presets import PRESETS, problem
from app.pipeline.process import Options
from app.pipeline.redact import METHODS
from app.results import write_report


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="faceguard", description="Blur every face in photos, folders of photos and zips. "
                                      "Nothing leaves this machine.")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image, folder or .zip")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR",
                        help="folder for the redacted photos and report.json")
    parser.add_argument("--method", choices=METHODS, default="blur", help="how faces are hidden (default: blur)")
    parser.add_argument("--boxes", action="store_true", help="draw an outline around each redacted region")
    parser.add_argument("--preset", choices=list(PRESETS), default=None,
                        help="how hard to look for faces (default: balanced). "
                             + " ".join(p.summary for p in PRESETS.values()))
    parser.add_argument("--workers", type=int, default=0, help="worker processes (default: one per CPU)")
    return parser.parse_args(argv)


def _walk(inputs: list[Path]):
    """Yield (name, path) for every file given, folders walked recursively in name order."""
    for item in inputs:
        if item.is_dir():
            for path in sorted(p for p in item.rglob("*") if p.is_file()):
                yield path.relative_to(item).as_posix(), path
        elif item.is_file():
            yield item.name, item
        else:
            raise FaceGuardError(f"{item}: no such file or folder")


class _ProgressBar:
    """Redraw one line on stderr as files finish."""

    def __init__(self) -> None:
        self._stream = sys.stderr
        self._tty = self._stream.isatty()
        self._last = -1

    def show(self, processed: int, total: int, failed: int) -> None:
        if processed == self._last:
            return
        self._last = processed
        width = 30
        filled = width * processed // max(total, 1)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {processed}/{total}" + (f", {failed} failed" if failed else "")
        if self._tty:
            self._stream.write("\r" + line)
        elif processed in (0, total) or processed % max(1, total // 10) == 0:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty:
            self._stream.write("\n")


def run(args: argparse.Namespace) -> int:
    """Process every input into args.output; return the exit code."""
    config = load_config({"WORKERS": args.workers} if args.workers else None)
    preset = args.preset or config["DEFAULT_PRESET"]
    reason = problem(preset)
    if reason:  # before any work: never a weaker look in silence
        raise FaceGuardError(reason)
    out_dir: Path = args.output
    out_dir.mkdir(parents=True, exist_ok=True)
    options = Options.from_config(config, method=args.method, boxes=args.boxes, preset=preset)
    registry = JobRegistry()
    batch = BatchService(registry, config["WORKERS"], kind=config["EXECUTOR"])
    with tempfile.TemporaryDirectory(prefix="faceguard-") as work:
        intake = Intake(Path(work), lambda index, name: out_dir / name, max_files=config["MAX_FILES"],
                        max_unzipped=config["MAX_UNZIPPED_BYTES"], max_ratio=config["MAX_ZIP_RATIO"])
        for name, path in _walk(args.inputs):
            intake.add_path(name, path)
        job = Job(id="cli", directory=Path(work), files=intake.entries, options=options.describe())
        registry.add(job)
        bar = _ProgressBar()
        batch.submit(job, options, lambda j: write_report(j, out_dir))
        while True:
            snapshot = registry.wait(job.id, timeout=0.2)
            bar.show(snapshot["processed"], snapshot["total"], snapshot["failed"])
            if snapshot["state"] in ("done", "failed"):
                break
        bar.close()
        batch.shutdown()
    ok = snapshot["state"] == "done" and snapshot["failed"] == 0
    summary = (f"{snapshot['processed'] - snapshot['failed']} of {snapshot['total']} photos redacted, "
               f"{snapshot['faces']} faces, {snapshot['failed']} failed"
               + (f", {snapshot['skipped']} skipped" if snapshot["skipped"] else "")
               + f"; report: {out_dir / 'report.json'}")
    if snapshot["error"]:
        summary += f"; error: {snapshot['error']}"
    print(summary, file=sys.stderr)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `faceguard` console script."""
    args = _parse(argv)
    try:
        return run(args)
    except FaceGuardError as exc:
        print(f"faceguard: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
