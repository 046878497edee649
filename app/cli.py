"""The `faceguard` command: redact faces in files, folders and zips into an output folder."""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from app.batch import BatchService
from app.config import load_config
from app.errors import FaceGuardError, TooLarge
from app.ingest import METADATA, ZIP_MAGIC, Intake, NameBook
from app.jobs import FileEntry, FileState, Job
from app.outcomes import Region
from app.pipeline.presets import PRESETS, problem
from app.pipeline.process import Options
from app.pipeline.redact import METHODS
from app.results import REPORT_NAME, write_report
from app.service import JobService

# What each INPUT adds: the folder under OUTDIR its outputs go to ("" for OUTDIR itself),
# and its files as (name in that folder, path on disk); a zip is one file, opened later.
Plan = list[tuple[str, list[tuple[str, Path]]]]

_EPILOG = """\
where the photos go:
  one INPUT       a folder's or a zip's contents go straight into OUTDIR, keeping
                  their relative paths; a single photo keeps its name
  several INPUTs  each folder goes into OUTDIR/<folder name>/, each zip into
                  OUTDIR/<zip name without .zip>/, each photo to OUTDIR/<its name>;
                  inputs that would share a name get " (2)", " (3)", ...

faceguard never writes over its inputs, leaves OUTDIR out when it lies inside an
INPUT folder, and refuses an OUTDIR that already holds a file it would replace (a
photo's name or report.json) unless --overwrite is given.

serving the web app instead:
  faceguard serve [--host 127.0.0.1] [--port 5000] [--debug]   (see faceguard serve --help)

exit codes:
  0  every photo was redacted
  1  some file failed or was skipped (not an image): the first few are named on
     stderr, every one in OUTDIR/report.json (a desktop's or archiver's own
     files, .DS_Store, Thumbs.db, __MACOSX/, are left out and listed there only)
  2  nothing was done (nothing is written): a missing INPUT, no files at all, an
     OUTDIR that would write over an input or replace files without --overwrite,
     a preset that cannot run on this machine
"""

# Messages worded for the web app, in the command's own words.
_SERVER_WORDS = (
    ("the results folder is read-only or missing. Check DATA_DIR.",
     "the output folder (-o) is read-only, or something in it is in the way."),
    ("Check DATA_DIR.", "Check the output folder (-o)."),
    ("run the job again", "run faceguard again"),
    ("this server accepts", "faceguard accepts"),
    ("and upload its contents", "and give faceguard its contents"),
    ("and upload the photo", "and give faceguard the photo"),
)
_SHOWN = 5  # failed or skipped files named in the summary


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="faceguard", description="Blur every face in photos, folders of photos and zips. "
                                      "Nothing leaves this machine.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image, folder or .zip")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR",
                        help="folder for the redacted photos and report.json")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace files already in OUTDIR (earlier results); inputs are never replaced")
    parser.add_argument("--method", choices=METHODS, default="blur", help="how faces are hidden (default: blur)")
    parser.add_argument("--boxes", action="store_true", help="draw an outline around each redacted region")
    parser.add_argument("--preset", choices=list(PRESETS), default=None,
                        help="how hard to look for faces (default: balanced). "
                             + " ".join(p.summary for p in PRESETS.values()))
    parser.add_argument("--reencode", action="store_true",
                        help="decode and encode JPEGs again, as other formats are (default: only the blocks "
                             "under the faces change; every other block's coefficients are copied as they are)")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (default: one per CPU)")
    parser.add_argument("--regions", type=Path, metavar="REPORT", default=None,
                        help="redact exactly the regions a report.json lists for each file (edit a run's report, "
                             "then run again); files it does not list are searched as usual")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="send every photo to the Dask cluster at ADDRESS (tcp://host:8786); "
                             "needs the cluster extra")
    return parser.parse_args(argv)


def _reword(message: str | None) -> str | None:
    """Reword a message written for the web app (DATA_DIR, uploads, jobs) for the command line."""
    for server, cli in _SERVER_WORDS:
        message = message.replace(server, cli) if message else message
    return message


def _is_zip(path: Path) -> bool:
    """Tell a zip by its first bytes, as the intake does."""
    with open(path, "rb") as handle:
        return handle.read(4) == ZIP_MAGIC


def _label(item: Path) -> str:
    """Name the folder an input's outputs go under when several inputs are given."""
    name = item.name if item.name not in ("", ".", "..") else (item.resolve().name or "input")
    return Path(name).stem if item.is_file() and _is_zip(item) else name


def _walk(folder: Path, out_dir: Path) -> list[tuple[str, Path]]:
    """List (name, path) for every file in a folder, recursively in name order, leaving out OUTDIR."""
    top, out = folder.resolve(), out_dir.resolve()
    skip = out.relative_to(top).parts if out != top and out.is_relative_to(top) else None
    if skip:
        print(f"faceguard: skipping {out_dir} inside {folder}: it is the output folder", file=sys.stderr)
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder)
        if skip is None or name.parts[:len(skip)] != skip:
            found.append((name.as_posix(), path))
    return found


def _check_paths(inputs: list[Path], out_dir: Path) -> None:
    """Refuse a missing input, an OUTDIR that is a file, or one that is an input folder."""
    for item in inputs:
        if not (item.is_dir() or item.is_file()):
            raise FaceGuardError(f"{item}: no such file or folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise FaceGuardError(f"{out_dir} is a file; -o takes a folder")
    for item in inputs:
        if item.is_dir() and item.resolve() == out_dir.resolve():
            raise FaceGuardError(f"the output folder {out_dir} is the input folder {item}; faceguard never "
                                 "writes over its inputs: choose another folder with -o")


def _plan(inputs: list[Path], out_dir: Path) -> Plan:
    """Check the paths, then list every file given under the folder its outputs go to."""
    _check_paths(inputs, out_dir)
    several, labels, plan = len(inputs) > 1, NameBook(), []
    for item in inputs:
        label = labels.claim(_label(item)) if several else ""
        if item.is_dir():
            plan.append((label, _walk(item, out_dir)))
        elif _is_zip(item):
            plan.append((label, [(item.name, item)]))
        else:
            plan.append(("", [(label or item.name, item)]))
    return plan


def _take(plan: Plan, work: Path, out_dir: Path, config: dict[str, Any]) -> list[FileEntry]:
    """Read every input into the work folder; return its files as one job's entries, numbered in order."""
    entries: list[FileEntry] = []
    for n, (prefix, files) in enumerate(plan):
        folder = out_dir / prefix
        intake = Intake(work / str(n), lambda index, name, folder=folder: folder / name,
                        max_files=config["MAX_FILES"] - len(entries),
                        max_unzipped=config["MAX_UNZIPPED_BYTES"], max_ratio=config["MAX_ZIP_RATIO"])
        try:
            for name, path in files:
                intake.add_path(name, path)
        except TooLarge as exc:
            raise FaceGuardError(f"more than {config['MAX_FILES']} files (FACEGUARD_MAX_FILES); "
                                 "run faceguard on fewer files at a time") from exc
        for entry in intake.entries:
            entry.index, entry.name = len(entries), f"{prefix}/{entry.name}" if prefix else entry.name
            entries.append(entry)
    return entries


def _fail(entry: FileEntry, reason: str) -> None:
    """Fail a file before it is processed: nothing will be written for it."""
    if entry.source is not None:
        entry.source.unlink(missing_ok=True)
    entry.state, entry.error, entry.code, entry.source, entry.output = FileState.FAILED, reason, "clash", None, None


def _fail_clashes(entries: list[FileEntry], out_dir: Path) -> None:
    """Fail each photo whose output would be a folder another output needs, or lie inside another's file."""
    files: dict[str, str] = {REPORT_NAME: "the report"}  # casefolded path in OUTDIR -> whose it is
    folders: dict[str, str] = {}
    for entry in entries:
        if entry.output is None:
            continue
        path = PurePosixPath(entry.output.relative_to(out_dir).as_posix())
        key, parents = str(path).casefold(), [str(p).casefold() for p in path.parents if str(p) != "."]
        holder = files.get(key) or folders.get(key) or next((files[p] for p in parents if p in files), None)
        if holder:
            _fail(entry, f"Not written: {path} in the output folder clashes with {holder} "
                         "(a file and a folder cannot share a name). Rename one of them.")
            continue
        files[key] = entry.name
        for parent in parents:
            folders.setdefault(parent, entry.name)


def _refuse_harm(entries: list[FileEntry], plan: Plan, out_dir: Path, overwrite: bool) -> None:
    """Refuse to write over an input, ever, or over a file already in OUTDIR without --overwrite."""
    targets = [e.output for e in entries if e.output is not None] + [out_dir / REPORT_NAME]
    inputs = {path.resolve() for _, files in plan for _, path in files}
    for target in targets:
        if target.resolve() in inputs:
            raise FaceGuardError(f"{target} is one of the inputs; faceguard never writes over its inputs: "
                                 "choose another folder with -o")
    existing = [t.relative_to(out_dir).as_posix() for t in targets if t.exists() or t.is_symlink()]
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise FaceGuardError(f"{out_dir} already holds files this run would replace ({shown}); "
                             "add --overwrite to replace them, or choose another folder with -o")


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


def _finish(job: Job, out_dir: Path) -> None:
    """Write report.json, its reasons in the command's words."""
    for entry in job.files:
        entry.error = _reword(entry.error)
    write_report(job, out_dir)


def _given_regions(report: Path | None) -> dict[str, list[Region]] | None:
    """The regions an edited report.json lists, per file name (None: detect as usual)."""
    if report is None:
        return None
    try:
        doc = json.loads(report.read_text(encoding="utf-8"))
        return {f["name"]: [_given_region(d) for d in f.get("detections", [])]
                for f in doc["files"] if f.get("state") == "done"}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FaceGuardError(f"{report}: not a report.json faceguard can read regions from ({exc})") from exc


def _given_region(d: dict) -> Region:
    """One region of an edited report: its box is four numbers, a positive width and height.

    A box in fractions of a pixel is grown outwards to whole pixels; one that reaches past the
    photo's edge is clipped to it when the photo is read.
    """
    box = d["box"]
    if not (isinstance(box, list) and len(box) == 4 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box)):
        raise ValueError(f"a box is [x, y, w, h], four numbers, not {box!r}")
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise ValueError(f"the box {box!r} is empty")
    x0, y0 = math.floor(x), math.floor(y)
    return Region(x0, y0, math.ceil(x + w) - x0, math.ceil(y + h) - y0, float(d.get("score", 1.0)),
                  str(d.get("engine", "manual")), int(d.get("frame", 0)), str(d.get("source", "manual")))


def _execute(job: Job, options: Options, config: dict[str, Any], out_dir: Path,
             given: dict[str, list[Region]] | None = None) -> dict[str, Any]:
    """Run the job with a progress bar; return its last snapshot."""
    batch = BatchService(config["WORKERS"], kind=config["EXECUTOR"], scheduler=config["SCHEDULER"])
    jobs = JobService(batch, options_for=lambda _job: options, publish=lambda j: _finish(j, out_dir), durable=False,
                      given_for=(lambda entry: given.get(entry.name)) if given is not None else None)
    bar = _ProgressBar()
    try:
        jobs.start(job)
        while True:
            snapshot = jobs.wait(job.id, timeout=0.2)
            bar.show(snapshot["processed"], snapshot["total"], snapshot["failed"])
            if snapshot["state"] in ("done", "failed"):
                return snapshot
    finally:
        bar.close()
        jobs.shutdown()


def _missed(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """The files that failed or were skipped, save a desktop's or archiver's own (`.DS_Store`, `__MACOSX/`)."""
    return [f for state in ("failed", "skipped") for f in snapshot["files"]
            if f["state"] == state and f.get("code") != METADATA]


def _summarise(snapshot: dict[str, Any], out_dir: Path) -> str:
    """Say how the run went, naming the first few files that failed or were skipped, and why."""
    report = out_dir / REPORT_NAME
    missed = _missed(snapshot)
    skipped = sum(f["state"] == "skipped" for f in missed)
    metadata = snapshot["skipped"] - skipped
    lines = [f"{snapshot['processed'] - snapshot['failed']} of {snapshot['total']} photos redacted, "
             f"{snapshot['faces']} faces, {snapshot['failed']} failed"
             + (f", {skipped} skipped" if skipped else "")
             + (f", {metadata} desktop or archive metadata file{'s' * (metadata != 1)} left out" if metadata else "")
             + f"; report: {report}"]
    if snapshot["error"]:
        lines[0] += f"; error: {_reword(snapshot['error'])}"
    lines += [f"  {f['state']}: {f['name']}: {_reword(f['error'])}" for f in missed[:_SHOWN]]
    if len(missed) > _SHOWN:
        lines.append(f"  ... and {len(missed) - _SHOWN} more failed or skipped, listed in {report}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Process every input into args.output; return the exit code."""
    config = load_config({**({"WORKERS": args.workers} if args.workers else {}),
                          **({"EXECUTOR": "dask", "SCHEDULER": args.scheduler} if args.scheduler else {})})
    preset = args.preset or config["DEFAULT_PRESET"]
    reason = problem(preset)
    if reason:  # before any work: never a weaker look in silence
        raise FaceGuardError(reason)
    out_dir: Path = args.output
    plan = _plan(args.inputs, out_dir)
    given = _given_regions(args.regions)
    options = Options.from_config(config, method=args.method, boxes=args.boxes, preset=preset, reencode=args.reencode)
    with tempfile.TemporaryDirectory(prefix="faceguard-") as work:
        entries = _take(plan, Path(work), out_dir, config)
        if not entries:
            raise FaceGuardError(f"no files to redact in {', '.join(str(p) for p in args.inputs)}")
        _fail_clashes(entries, out_dir)
        _refuse_harm(entries, plan, out_dir, args.overwrite)
        out_dir.mkdir(parents=True, exist_ok=True)  # only now: a refused run leaves nothing behind
        job = Job(id="cli", directory=Path(work), files=entries, options=options.describe())
        snapshot = _execute(job, options, config, out_dir, given)
    print(_summarise(snapshot, out_dir), file=sys.stderr)
    every_photo = snapshot["state"] == "done" and not _missed(snapshot)
    return 0 if every_photo else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `faceguard` console script; `faceguard serve ...` serves the web app."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # an input named "serve" is still ./serve
        from app.server import main as serve

        return serve(argv[1:], prog="faceguard serve")
    args = _parse(argv)
    try:
        return run(args)
    except FaceGuardError as exc:
        print(f"faceguard: {_reword(exc.message)}", file=sys.stderr)
        return 2
    except OSError as exc:  # an input that cannot be read, an OUTDIR that cannot be made
        print(f"faceguard: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
