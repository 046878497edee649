"""Uploads become input files safely: names cleaned, members judged, limits enforced while streaming."""
from __future__ import annotations

import io
import stat
import zipfile

import numpy as np
import pytest

from app.errors import TooLarge
from app.ingest import Intake, NameBook, clean_name


def intake(tmp_path, **limits) -> Intake:
    settings = {"max_files": 100, "max_unzipped": 10**9, "max_ratio": 200, **limits}
    return Intake(tmp_path / "job", lambda i, name: tmp_path / "job" / "out" / f"{i}", **settings)


def zip_of(*infos: tuple[zipfile.ZipInfo | str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, payload in infos:
            zf.writestr(info, payload)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("raw, clean", [
    ("a.jpg", "a.jpg"), ("../../etc/x.jpg", "etc/x.jpg"), ("/abs/x.jpg", "abs/x.jpg"),
    ("C:\\photos\\合照.jpg", "photos/合照.jpg"), ("a/./b//c.jpg", "a/b/c.jpg"), ("", "unnamed"),
    ("bad\x00name\n.jpg", "badname.jpg"),
])
def test_clean_name(raw, clean):
    assert clean_name(raw) == clean


def test_name_book_keeps_case_collisions_distinct():
    book = NameBook()
    assert [book.claim(n) for n in ("a.jpg", "A.jpg", "a.jpg", "dir/a.jpg")] == \
        ["a.jpg", "A (2).jpg", "a (3).jpg", "dir/a.jpg"]


def test_symlink_nested_zip_and_non_images(tmp_path):
    link = zipfile.ZipInfo("link.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = zip_of((link, b"/etc/passwd"), ("inner.zip", b"PK\x03\x04"), ("readme.md", b"hi"),
                     (".DS_Store", b"\0"), ("p.jpg", b"jpegish"))
    taken = intake(tmp_path)
    taken.add_stream("all.zip", archive)
    got = {e.name: (e.state.value, e.error) for e in taken.entries}
    assert got["link.jpg"][0] == "failed" and "symbolic link" in got["link.jpg"][1]
    assert got["inner.zip"][0] == "failed" and "inside a zip" in got["inner.zip"][1]
    assert got["readme.md"][0] == got[".DS_Store"][0] == "skipped"
    assert got["p.jpg"] == ("pending", None) and taken.usable == 1
    assert not list((tmp_path / "job" / "inputs").glob("*.tmp"))


def test_zip_bomb_member_is_stopped_while_streaming(tmp_path):
    archive = zip_of(("bomb.jpg", b"\0" * 50_000_000), ("ok.jpg", b"x" * 100))
    taken = intake(tmp_path, max_ratio=100)
    taken.add_stream("b.zip", archive)
    bomb, ok = taken.entries
    assert bomb.state.value == "failed" and "zip bomb" in bomb.error
    assert ok.state.value == "pending"
    assert sum(p.stat().st_size for p in (tmp_path / "job").rglob("*")) < 5_000_000


def test_total_unzipped_budget(tmp_path):
    archive = zip_of(*[(f"{i}.jpg", np.random.default_rng(i).bytes(1_000_000)) for i in range(4)])
    taken = intake(tmp_path, max_unzipped=2_500_000)
    taken.add_stream("many.zip", archive)
    assert [e.state.value for e in taken.entries] == ["pending", "pending", "failed", "failed"]
    assert "more data than this server accepts" in taken.entries[2].error


def test_too_many_files(tmp_path):
    taken = intake(tmp_path, max_files=2)
    with pytest.raises(TooLarge, match="Too many files"):
        taken.add_stream("many.zip", zip_of(*[(f"{i}.jpg", b"x") for i in range(3)]))


def test_damaged_zip_is_reported(tmp_path):
    taken = intake(tmp_path)
    taken.add_stream("bad.zip", io.BytesIO(b"PK\x03\x04 not really"))
    assert taken.entries[0].name == "bad.zip" and "damaged" in taken.entries[0].error
