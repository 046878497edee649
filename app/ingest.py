"""Turn uploads (images, zips of images) into a job's input files, trusting nothing in them."""
from __future__ import annotations

import re
import shutil
import stat
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Self

from app.errors import TooLarge, is_disk_full
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
METADATA = "archive_metadata"  # the code of a file skipped as such
_METADATA_SKIP = ("Desktop or archive metadata, not a photo.", METADATA)


def is_metadata(name: str) -> bool:
    """Tell a desktop's or archiver's own file (`.DS_Store`, `__MACOSX/._a.jpg`, `Thumbs.db`) by its name."""
    return any(part in _JUNK_PARTS or part.startswith("._") for part in PurePosixPath(name.replace("\\", "/")).parts)


class MemberError(Exception):
    """A zip member that must not be extracted; the message says why, the code names the reason."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


# Every name must extract on Windows, macOS and Linux (the result zip, the CLI's output folder).
_FORBIDDEN = set('<>:"|?*')  # Windows refuses these; '/' and '\\' separate parts
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",  # Windows' devices; COM¹ too
             *(f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789¹²³")}
_PART_BYTES = 255  # one name, in UTF-8 bytes: ext4's limit, and within APFS's and NTFS's
_PATH_UNITS = 200  # a whole path, in UTF-16 units: leaves room in Windows' MAX_PATH (260) for where it lands
_FOLDER_UNITS = 32  # the folders of a path too long are cut to this first
_DRIVE = re.compile(r"[A-Za-z]:")


class CleanName(str):
    """A name made safe by clean_name, carrying the name as it was received."""

    raw: str

    def __new__(cls, name: str, raw: str) -> Self:
        made = super().__new__(cls, name)
        made.raw = raw
        return made


def clean_name(raw: str) -> CleanName:
    """Make a client-supplied path relative and POSIX, with parts every OS can create."""
    text = unicodedata.normalize("NFC", raw.replace("\\", "/"))
    parts = "".join(ch for ch in text if ch.isprintable()).split("/")
    if _DRIVE.fullmatch(parts[0].strip()):
        parts = parts[1:]
    parts = [part for part in map(_safe_part, parts) if part]
    return CleanName("/".join(_fit_path(parts)) or "unnamed", raw)


def _safe_part(part: str) -> str:
    """Drop what Windows refuses in a name: forbidden characters, trailing dots and spaces, device names."""
    part = "".join("_" if ch in _FORBIDDEN else ch for ch in part).strip().rstrip(". ")
    head, dot, tail = part.partition(".")
    if head.rstrip().upper() in _RESERVED:  # CON.jpg is the console, whatever its extension
        part = f"{head}_{dot}{tail}"
    return part


def _fit_path(parts: list[str]) -> list[str]:
    """Keep every part and the whole path within bounds: long folders are cut, then deep ones dropped."""
    if not parts:
        return []
    *folders, name = parts
    name = _fit(name)
    folders = [_fit(folder, folder=True) for folder in folders]
    if _units("/".join([*folders, name])) > _PATH_UNITS:
        folders = [_fit(folder, max_units=_FOLDER_UNITS, folder=True) for folder in folders]
    kept, room = [], _PATH_UNITS - _units(name)
    for folder in folders:
        room -= _units(folder) + 1
        if room < 0:
            break
        kept.append(folder)
    return [*kept, name]


def _fit(part: str, max_units: int = _PATH_UNITS, *, folder: bool = False, tag: str = "") -> str:
    """Return the part with `tag` before its extension (a folder's: at its end), its stem cut to fit."""
    stem, suffix = (part, "") if folder else _split(part)
    end = tag + suffix
    if len((stem + end).encode()) <= _PART_BYTES and _units(stem + end) <= max_units:
        return stem + end
    stem = _cut(stem, _PART_BYTES - len(end.encode()), max_units - _units(end))
    return _safe_part((stem.rstrip(". ") or "_") + end)  # a '_' for CON fits where a dot or space went


def _split(part: str) -> tuple[str, str]:
    """Split a name into stem and extension; an 'extension' of over 16 characters belongs to the stem."""
    suffix = PurePosixPath(part).suffix
    return (part[: -len(suffix)], suffix) if 0 < len(suffix) <= 16 else (part, "")


def _cut(text: str, max_bytes: int, max_units: int) -> str:
    """Return the longest start of `text`, in whole characters, within both limits."""
    size = units = 0
    for i, ch in enumerate(text):
        size, units = size + len(ch.encode()), units + (2 if ord(ch) > 0xFFFF else 1)
        if size > max_bytes or units > max_units:
            return text[:i]
    return text


def _units(text: str) -> int:
    """Count UTF-16 code units, as Windows measures a path."""
    return len(text.encode("utf-16-le")) // 2


def _key(path: str) -> str:
    """The form under which case-insensitive file systems (NTFS, APFS) compare names."""
    return unicodedata.normalize("NFC", path.casefold())


def _join(folder: str, part: str) -> str:
    return f"{folder}/{part}" if folder else part


class NameBook:
    """Hand out names that extract together: distinct ignoring case, and no file where a folder is."""

    def __init__(self) -> None:
        self._files: set[str] = set()
        self._folders: dict[str, str] = {}  # a folder as asked for (under its parent as given) -> as given

    def claim(self, name: str) -> str:
        """Return the name, or its first free variant: 'a (2).jpg' for a file, 'a (2)/' for a folder."""
        *folders, leaf = name.split("/")
        parent = ""
        for part in folders:
            parent = self._folder(parent, part)
        path = self._free(parent, leaf, folder=False)
        self._files.add(_key(path))
        return path

    def _folder(self, parent: str, part: str) -> str:
        """Place a folder: where an earlier one of its name went (in any case), else clear of every file."""
        asked = _key(_join(parent, part))
        if asked not in self._folders:
            given = self._free(parent, part, folder=True)
            self._folders[asked] = given
            self._folders.setdefault(_key(given), given)
        return self._folders[asked]

    def _free(self, parent: str, part: str, *, folder: bool) -> str:
        """Return the first of part, 'part (2)', 'part (3)'... under parent that nothing clashes with."""
        room = max(_PATH_UNITS - _units(parent) - 1, _FOLDER_UNITS)
        path, n = _join(parent, _fit(part, room, folder=folder)), 1
        while _key(path) in self._files or (not folder and _key(path) in self._folders):
            n += 1
            path = _join(parent, _fit(part, room, folder=folder, tag=f" ({n})"))
        return path


class Intake:
    """Collect a job's files into `inputs/`, and decide where each output goes.

    `output_for(index, name)` places the redacted file: the web app stores outputs by
    index (names are hostile), the CLI under the name in its output folder.
    """

    def __init__(self, inputs: Path, output_for: Callable[[int, str], Path], *,
                 max_files: int, max_unzipped: int, max_ratio: float) -> None:
        self.inputs = inputs  # where the originals wait until they are processed
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
        raw, name = name, clean_name(name)
        if is_metadata(raw):
            self._record(name, FileState.SKIPPED, *_METADATA_SKIP)
            return
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
                         "This zip archive is damaged and could not be opened.", "zip_damaged")
            return
        with zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                self._take_member(zf, info)

    def _take_member(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        raw = info.filename
        name = clean_name(raw)
        if is_metadata(raw):
            self._record(name, FileState.SKIPPED, *_METADATA_SKIP)
            return
        try:
            self._check_member(info, raw)
        except MemberError as exc:
            self._record(name, FileState.FAILED, str(exc), exc.code)
            return
        if Path(name).suffix.lower() == ".zip":
            self._record(name, FileState.FAILED,
                         "Zip archives inside a zip are not opened. Extract it and upload its contents.", "nested_zip")
            return
        if not is_image_name(name) and not self._looks_like_image(zf, info):
            self._record(name, FileState.SKIPPED, "Not an image file.", "not_image")
            return
        target = self.inputs / f"member-{len(self.entries)}.tmp"
        try:
            self._extract(zf, info, target)
        except MemberError as exc:
            target.unlink(missing_ok=True)
            self._record(name, FileState.FAILED, str(exc), exc.code)
            return
        self._accept(name, target)

    @staticmethod
    def _check_member(info: zipfile.ZipInfo, raw: str) -> None:
        """Refuse members that could escape the job or are not plain files."""
        posix = raw.replace("\\", "/")
        if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or ".." in posix.split("/"):
            raise MemberError("Unsafe path in the zip (absolute or with '..'); not extracted.", "unsafe_path")
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver recorded no type
        if kind and kind != stat.S_IFREG:
            what = "a symbolic link" if kind == stat.S_IFLNK else "not a regular file"
            raise MemberError(f"This zip member is {what}; not extracted.",
                              "link" if kind == stat.S_IFLNK else "not_regular")
        if info.flag_bits & 0x1:
            raise MemberError("This zip member is encrypted; extract it yourself and upload the photo.", "encrypted")

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
                                          "split it into smaller archives.", "zip_too_big")
                    if written > limit_by_ratio and written > _CHUNK:
                        raise MemberError("This zip member is compressed suspiciously well "
                                          "(a zip bomb?); not extracted.", "zip_bomb")
                    dst.write(chunk)
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
            if is_disk_full(exc):
                raise  # not this member's fault: the whole upload fails
            raise MemberError(f"This zip member could not be read ({exc}).", "member_unreadable") from exc
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
            self._record(name, FileState.SKIPPED, "Not an image file.", "not_image")
            spooled.unlink(missing_ok=True)
            return
        written = output_name(name, kind)  # HEIC and AVIF come out as JPEG: `.jpg`, the original name recorded
        entry = self._record(CleanName(written, getattr(name, "raw", name)) if written != name else name,
                             FileState.PENDING, None)
        source = self.inputs / f"{entry.index:06d}{EXTENSION.get(kind or '', '.img')}"
        spooled.replace(source)
        entry.source, entry.output = source, self._output_for(entry.index, entry.name)

    def _record(self, name: str, state: FileState, error: str | None, code: str | None = None) -> FileEntry:
        if len(self.entries) >= self._max_files:
            raise TooLarge(f"Too many files in one job (the limit is {self._max_files}). "
                           "Split the photos into several jobs.")
        given = self._names.claim(name)
        asked = unicodedata.normalize("NFC", name.raw if isinstance(name, CleanName) else name)
        entry = FileEntry(index=len(self.entries), name=given, original=asked if asked != given else None,
                          source=None, output=None, state=state, error=error, code=code)
        self.entries.append(entry)
        return entry
