"""What a finished job leaves behind: report.json, and the result zip for the web app."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from app.jobs import FileState, Job

REPORT_NAME = "report.json"
RESULT_NAME = "result.zip"
# Already-compressed formats are stored as they are; the rest are deflated.
_STORED = {".jpg", ".jpeg", ".png", ".webp"}


def report_bytes(job: Job) -> bytes:
    """Serialise the job's report.json."""
    return json.dumps(job.report(), ensure_ascii=False, indent=2).encode("utf-8")


def write_report(job: Job, folder: Path) -> Path:
    """Write report.json into a folder (the CLI's output folder)."""
    path = folder / REPORT_NAME
    tmp = path.with_name(REPORT_NAME + ".part")
    tmp.write_bytes(report_bytes(job))
    os.replace(tmp, path)
    return path


def write_result_zip(job: Job) -> Path:
    """Stream every redacted image and report.json into the job's result zip."""
    path = job.directory / RESULT_NAME
    tmp = path.with_name(RESULT_NAME + ".part")
    report = report_bytes(job)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for entry in job.files:
                if entry.state is not FileState.DONE or entry.output is None:
                    continue
                kind = zipfile.ZIP_STORED if entry.output.suffix.lower() in _STORED else zipfile.ZIP_DEFLATED
                zf.write(entry.output, arcname=entry.name, compress_type=kind)
            zf.writestr(REPORT_NAME, report)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
