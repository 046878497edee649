"""A JPEG's marker segments: the frame and tables read from the file itself, and the few segments written back."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

# The natural (row-major) index of each coefficient in zigzag order, as DQT stores them.
ZIGZAG = np.array([0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
                   20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58,
                   59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63])
_STANDALONE = {0x01, *range(0xD0, 0xD9)}  # TEM, RST0-7, SOI: markers without a length
_DCT_FRAMES = {0xC0, 0xC1, 0xC2}  # baseline, extended and progressive DCT with Huffman coding
_AC_SYMBOLS = 162  # every symbol an AC table can hold: the standard tables list them all


class MarkerError(ValueError):
    """The file's marker segments are not what a DCT JPEG holds."""


@dataclass(frozen=True)
class Component:
    ident: int
    h: int  # sampling factors
    v: int
    table: int  # the quantisation table's slot


@dataclass
class Frame:
    """What the first scan of a JPEG needs: its frame header and the tables defined before it."""

    marker: int = 0  # SOFn
    precision: int = 8
    width: int = 0
    height: int = 0
    components: list[Component] = field(default_factory=list)
    tables: dict[int, np.ndarray] = field(default_factory=dict)  # slot -> 8x8 in natural order
    optimised: bool = False  # a Huffman table lists fewer symbols than the standard ones

    @property
    def progressive(self) -> bool:
        return self.marker == 0xC2

    def quantisation(self, component: int) -> np.ndarray:
        """The 8x8 quantisation table (natural order) of one component."""
        slot = self.components[component].table
        if slot not in self.tables:
            raise MarkerError(f"component {component} names quantisation table {slot}, which is not defined")
        return self.tables[slot]


def segments(data: bytes) -> list[tuple[int, bytes]]:
    """The marker segments from SOI up to the first SOS (included), as (marker, payload)."""
    if data[:2] != b"\xff\xd8":
        raise MarkerError("no SOI marker")
    found, at = [], 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise MarkerError(f"no marker at byte {at}")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        if marker == 0xD9:
            break
        length = int.from_bytes(data[at + 2:at + 4], "big")
        if length < 2 or at + 2 + length > len(data):
            raise MarkerError(f"segment 0x{marker:02X} runs past the end of the file")
        found.append((marker, data[at + 4:at + 2 + length]))
        if marker == 0xDA:
            return found
        at += 2 + length
    raise MarkerError("no scan (SOS) in the file")


def _tables(payload: bytes, into: dict[int, np.ndarray]) -> None:
    at = 0
    while at < len(payload):
        wide, slot = payload[at] >> 4, payload[at] & 15
        size = 128 if wide else 64
        raw = payload[at + 1:at + 1 + size]
        if len(raw) != size or wide > 1:
            raise MarkerError("a DQT segment is cut short")
        values = np.frombuffer(raw, ">u2" if wide else np.uint8).astype(np.float32)
        table = np.empty(64, np.float32)
        table[ZIGZAG] = values
        if not table.all():
            raise MarkerError("a quantisation table holds a zero")
        into[slot] = table.reshape(8, 8)
        at += 1 + size


def _huffman_is_optimised(payload: bytes) -> bool:
    at, optimised = 0, False
    while at + 17 <= len(payload):
        symbols = sum(payload[at + 1:at + 17])
        optimised |= payload[at] >> 4 == 1 and symbols < _AC_SYMBOLS
        at += 17 + symbols
    return optimised


def read_frame(data: bytes) -> Frame:
    """Read the frame header, quantisation tables and Huffman coding of a JPEG, up to its first scan."""
    frame = Frame()
    for marker, payload in segments(data):
        if marker == 0xDB:
            _tables(payload, frame.tables)
        elif marker == 0xC4:
            frame.optimised |= _huffman_is_optimised(payload)
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if len(payload) < 6 or len(payload) < 6 + 3 * payload[5]:
                raise MarkerError("the frame header is cut short")
            frame.marker, frame.precision = marker, payload[0]
            frame.height, frame.width = struct.unpack(">HH", payload[1:5])
            frame.components = [Component(payload[i], payload[i + 1] >> 4, payload[i + 1] & 15, payload[i + 2])
                                for i in range(6, 6 + 3 * payload[5], 3)]
    if frame.marker not in _DCT_FRAMES:
        raise MarkerError(f"frame type SOF{frame.marker - 0xC0} is not Huffman-coded DCT" if frame.marker
                          else "no frame header")
    if any(not 1 <= c.h <= 4 or not 1 <= c.v <= 4 for c in frame.components):
        raise MarkerError("a component has sampling factors outside 1-4")
    return frame


def with_segments(data: bytes, segment_bytes: bytes) -> bytes:
    """Insert whole marker segments right after SOI, or after the JFIF APP0 that must come first."""
    start = 2 + (2 + int.from_bytes(data[4:6], "big") if data[2:4] == b"\xff\xe0" else 0)
    return data[:start] + segment_bytes + data[start:]


def orientation_exif(orientation: int) -> bytes:
    """An APP1 EXIF segment holding the Orientation tag (0x0112) alone, and nothing else."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + ifd
    return b"\xff\xe1" + struct.pack(">H", 2 + len(payload)) + payload
