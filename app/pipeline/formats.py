"""What a file is, judged by its first bytes, and how each format is named and written back."""
from __future__ import annotations

import re
from pathlib import Path

# Extensions a photo usually has; files are judged by their content, these only help the
# page's file picker and the name a converted photo gets.
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".apng", ".webp", ".bmp", ".dib", ".tif", ".tiff",
                    ".gif", ".heic", ".heif", ".hif", ".avif"}
# The formats the product reads, as `sniff` names them, and the extension a new name takes.
EXTENSION = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tiff", "GIF": ".gif",
             "HEIF": ".jpg", "AVIF": ".jpg"}
# Formats that can only be read: their photos are written as JPEG (several frames: MPO).
CONVERTED = {"HEIF", "AVIF"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}
# In a JPEG's entropy-coded data every FF byte is followed by 00 (stuffing) or a restart
# marker D0-D7; any other byte after FF starts the next marker segment (FF FF is fill).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def is_image_name(name: str) -> bool:
    """Tell whether a file name has an extension photos usually have."""
    return Path(name.strip()).suffix.lower() in IMAGE_EXTENSIONS


def sniff(head: bytes) -> str | None:
    """Name the image format of a file from its first 32 bytes; None when it is none the product reads."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
        return "BMP"
    if head[4:8] == b"ftyp":
        brands = {head[i:i + 4] for i in range(8, min(len(head), 32) - 3, 4)}
        if brands & _AVIF_BRANDS:
            return "AVIF"
        if brands & _HEIF_BRANDS:
            return "HEIF"
    return None


def sniff_file(path: Path) -> str | None:
    """Name the image format of a file on disk (see `sniff`)."""
    with open(path, "rb") as handle:
        return sniff(handle.read(32))


def output_name(name: str, kind: str | None) -> str:
    """The name a photo's result gets: its own, but `.jpg` for formats written as JPEG."""
    if kind not in CONVERTED:
        return name
    path = Path(name)
    stem = path.stem if path.suffix.lower() in IMAGE_EXTENSIONS else path.name
    return str(path.with_name(stem + EXTENSION[kind]))


def jpeg_end(data: bytes) -> int | None:
    """The offset just past a JPEG's end-of-image marker; None when the file ends before the picture does.

    Walks the marker segments and, after each start of scan, skips the entropy-coded data,
    so bytes after the image (a motion photo's video, a second MPO picture) are never taken
    for part of it, and a file cut off anywhere is told apart from a whole one.
    """
    at, size = 2, len(data)
    while at + 2 <= size:
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker == 0xD9:
            return at + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers with no length
            at += 2
            continue
        if at + 4 > size:
            return None
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
        if marker == 0xDA:
            found = _NEXT_MARKER.search(data, at)
            if found is None:
                return None
            at = found.start()
    return None
