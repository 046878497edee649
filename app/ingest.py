"""Turn uploads (images, zips of images) into a job's input files, trusting nothing in them."""
from __future__ import annotations

import shutil
import stat
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from app.errors import TooLarge
from app.jobs import FileEntry, FileState
from app.pipeline.formats import (
    EXTENSION,
    is_image_name,
    output_name,
    sniff,
    sniff_file,
)

ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1024 * 1024
# Files that archivers and desktops leave behind; never worth a line of alarm.
_JUNK_PARTS = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}


class MemberError(Exception):
    """A zip member that must not be extracted; the message says why."""


def clean_name(raw: str) -> str:
    """Normalise a client-supplied path to a relative POSIX path with no '.', '..' or empty parts."""
    text = unicodedata.normalize("NFC", raw.replace("\\", "/"))
    text = "".join(ch for ch in text if ch.isprintable())
    parts = [p.strip() for p in text.split("/")]
    parts = [p for p in parts if p and p not in (".", "..")]
    return "/".join(parts) or "unnamed"


class NameBook:
    """Hand out distinct names; two names that differ only in case are distinct too."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, name: str) -> str:
        candidate, n = name, 1
        path = PurePosixPath(name)
        while candidate.casefold() in self._taken:
            n += 1
            candidate = str(path.with_name(f"{path.stem} ({n}){path.suffix}"))
        self._taken.add(candidate.casefold())
        return candidate


class Intake:
    """Collect a job's files into `inputs/`, and decide where each output goes.

    `output_for(index, name)` places the redacted file: the web app stores outputs by
    index (names are hostile), the CLI under the name in its output folder.
    """

    def __init__(self, directory: Path, output_for: Callable[[int, str], Path], *,
                 max_files: int, max_unzipped: int, max_ratio: float) -> None:
        self.inputs = directory / "inputs"
        self.inputs.mkdir(parents=True, exist_ok=True)
        self.entries: list[FileEntry] = []
        self._output_for = output_for
        self._names = NameBook()
        self._max_files = max_files
        self._unzip_budget = max_unzipped
        self._max_ratio = max_ratio

    @property
    def usable(self) -> int:
        return sum(1 for e in self.entries if e.state is FileState.PENDING)

    def add_stream(self, name: str, stream: BinaryIO) -> None:
        """Take one uploaded file: a zip (judged by its first bytes) or an image."""
        name = clean_name(name)
        spool = self.inputs / f"upload-{len(self.entries)}.tmp"
        with open(spool, "wb") as handle:
            shutil.copyfileobj(stream, handle, _CHUNK)
        try:
            with open(spool, "rb") as handle:
                is_zip = handle.read(4) == ZIP_MAGIC
            if is_zip:
                self.add_zip(spool, label=name)
            else:
                self._accept(name, spool)
        finally:
            spool.unlink(missing_ok=True)

    def add_path(self, name: str, path: Path) -> None:
        """Take one file from the local disk (the CLI)."""
        with open(path, "rb") as handle:
            self.add_stream(name, handle)

    def add_zip(self, archive: Path, label: str) -> None:
        """Take every member of a zip, each accepted, skipped or failed on its own."""
        try:
            zf = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError):
            self._record(label, FileState.FAILED,
                         "This zip archive is damaged and could not be opened.")
            return
        with zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                self._take_member(zf, info)

    def _take_member(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        raw = info.filename
        name = clean_name(raw)
        parts = PurePosixPath(raw.replace("\\", "/")).parts
        if any(part in _JUNK_PARTS or part.startswith("._") for part in parts):
            self._record(name, FileState.SKIPPED, "Archive metadata, not a photo.")
            return
        try:
            self._check_member(info, raw)
        except MemberError as exc:
            self._record(name, FileState.FAILED, str(exc))
            return
        if Path(raw).suffix.lower() == ".zip":
            self._record(name, FileState.FAILED,
                         "Zip archives inside a zip are not opened. Extract it and upload its contents.")
            return
        if not is_image_name(raw) and not self._looks_like_image(zf, info):
            self._record(name, FileState.SKIPPED, "Not an image file.")
            return
        target = self.inputs / f"member-{len(self.entries)}.tmp"
        try:
            self._extract(zf, info, target)
        except MemberError as exc:
            target.unlink(missing_ok=True)
            self._record(name, FileState.FAILED, str(exc))
            return
        self._accept(name, target)

    @staticmethod
    def _check_member(info: zipfile.ZipInfo, raw: str) -> None:
        """Refuse members that could escape the job or are not plain files."""
        posix = raw.replace("\\", "/")
        if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or ".." in posix.split("/"):
            raise MemberError("Unsafe path in the zip (absolute or with '..'); not extracted.")
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver recorded no type
        if kind and kind != stat.S_IFREG:
            what = "a symbolic link" if kind == stat.S_IFLNK else "not a regular file"
            raise MemberError(f"This zip member is {what}; not extracted.")
        if info.flag_bits & 0x1:
            raise MemberError("This zip member is encrypted; extract it yourself and upload the photo.")

    def _extract(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
        """Copy a member out in chunks, enforcing the byte budget and ratio as it streams."""
        written = 0
        limit_by_ratio = max(info.compress_size, 1) * self._max_ratio
        try:
            with zf.open(info) as src, open(target, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > self._unzip_budget:
                        raise MemberError("The zip unpacks to more data than this server accepts; "
                                          "split it into smaller archives.")
                    if written > limit_by_ratio and written > _CHUNK:
                        raise MemberError("This zip member is compressed suspiciously well "
                                          "(a zip bomb?); not extracted.")
                    dst.write(chunk)
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
            raise MemberError(f"This zip member could not be read ({exc}).") from exc
        self._unzip_budget -= written

    @staticmethod
    def _looks_like_image(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
        """Judge a member without an image's extension by its first bytes (a JPEG named `IMG_0001`)."""
        try:
            with zf.open(info) as member:
                return sniff(member.read(32)) is not None
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError):
            return False

    def _accept(self, name: str, spooled: Path) -> None:
        """Queue a file judged by its content; one with an image's extension but no image in it fails later."""
        kind = sniff_file(spooled)
        if kind is None and not is_image_name(name):
            self._record(name, FileState.SKIPPED, "Not an image file.")
            spooled.unlink(missing_ok=True)
            return
        entry = self._record(output_name(name, kind), FileState.PENDING, None)
        source = self.inputs / f"{entry.index:06d}{EXTENSION.get(kind or '', '.img')}"
        spooled.replace(source)
        entry.source, entry.output = source, self._output_for(entry.index, entry.name)

    def _record(self, name: str, state: FileState, error: str | None) -> FileEntry:
        if len(self.entries) >= self._max_files:
            raise TooLarge(f"Too many files in one job (the limit is {self._max_files}). "
                           "Split the photos into several jobs.")
        entry = FileEntry(index=len(self.entries), name=self._names.claim(name),
                          source=None, output=None, state=state, error=error)
        self.entries.append(entry)
        return entry
