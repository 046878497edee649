"""The on-disk layout of a job: one folder per job, its parts, its creation and removal, the one atomic write."""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

JOB_ID = re.compile(r"[0-9a-f]{32}")  # secrets.token_hex(16): 128 random bits
_SUFFIX = re.compile(r"\.[a-z0-9]{1,5}")


@contextmanager
def atomic(path: Path, mode: str = "wb") -> Iterator[IO]:
    """Open a file to write so that it appears whole or not at all (written aside, then renamed)."""
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes so that the file appears whole or not at all."""
    with atomic(path) as handle:
        handle.write(data)


class JobFolder:
    """One job's folder: `inputs/` (originals until processed), `outputs/`, job.json, outcomes.jsonl, result.zip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.inputs, self.outputs = path / "inputs", path / "outputs"
        self.manifest, self.outcomes = path / "job.json", path / "outcomes.jsonl"
        self.result, self.report = path / "result.zip", path / "report.json"

    @property
    def id(self) -> str:
        return self.path.name

    def create(self) -> JobFolder:
        self.inputs.mkdir(parents=True, exist_ok=True)
        self.outputs.mkdir(exist_ok=True)
        return self

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def output_for(self, index: int, name: str) -> Path:
        """Where a file's result goes: by index (names are hostile), with the name's extension."""
        suffix = Path(name).suffix.lower()
        return self.outputs / (f"{index:06d}" + (suffix if _SUFFIX.fullmatch(suffix) else ""))


class JobFolders:
    """Every job folder under one data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)

    def of(self, job_id: str) -> JobFolder:
        return JobFolder(self.data_dir / job_id)

    def each(self) -> list[JobFolder]:
        """The folders named like jobs, in name order."""
        return [JobFolder(p) for p in sorted(self.data_dir.iterdir()) if p.is_dir() and JOB_ID.fullmatch(p.name)]
