"""Every name the product hands out extracts on Windows, macOS and Linux, and renames are recorded."""
from __future__ import annotations

import io
import json
import random
import unicodedata

import numpy as np
import pytest

from app.folder import JobFolders
from app.ingest import Intake, NameBook, clean_name
from app.jobs import FileEntry, Job
from app.store import Journal
from tests.helpers import encode, finish, make_zip, post_job, result_zip

# Written out here, not imported: the rules as Windows documents them, checked independently of the code.
DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789¹²³"}


def key(name: str) -> str:
    return unicodedata.normalize("NFC", name.casefold())


def problems(names: list[str]) -> list[str]:
    """Everything that would stop these names from being extracted together on Windows, macOS or Linux."""
    found = []
    for name in names:
        for part in name.split("/"):
            if part in ("", ".", ".."):
                found.append(f"{name!r}: empty, '.' or '..' part")
            if any(ch in '<>:"|?*\\' or ord(ch) < 32 or ord(ch) == 127 for ch in part):
                found.append(f"{name!r}: a character Windows refuses")
            if part.endswith((" ", ".")):
                found.append(f"{name!r}: a part ends with a dot or space")
            if part.split(".")[0].rstrip(" ").upper() in DEVICES:
                found.append(f"{name!r}: a Windows device name")
            if len(part.encode()) > 255:
                found.append(f"{name!r}: a part over 255 bytes")
        if len(name.encode("utf-16-le")) // 2 > 200:
            found.append(f"{name!r}: the path is over 200 characters")
    files = [key(n) for n in names]
    if len(set(files)) != len(files):
        found.append("two files with the same name, ignoring case")
    folders = {key("/".join(n.split("/")[:i])) for n in names for i in range(1, n.count("/") + 1)}
    found += [f"{f!r} is a file and a folder" for f in folders & set(files)]
    return found


LONG_CJK = "很长的名字-" * 40 + ".jpg"  # 644 bytes
HOSTILE = [
    "CON.jpg", "aux.jpg", "nul.png", "COM1.jpg", "lpt9.JPG", "LPT9", "Con .tar.gz", "COM¹.jpg", "CONOUT$.png",
    "con/inside.jpg", "x/AUX/y.jpg", 'q<u>e:s"t|i?o*n.jpg', "ctl\x01\x1f\x7f.jpg", "trail./dot .jpg.",
    "d.jpg ", "e.jpg. . ", " f.jpg", "...", "dots.../g.jpg", LONG_CJK, "x" * 300 + ".jpeg", "😀" * 100 + ".png",
    "/".join(["深" * 30] * 12) + "/deep.jpg", "/".join([f"level{i:02d}" for i in range(40)]) + "/deep.jpg",
]


@pytest.mark.parametrize("raw, clean", [
    ("CON.jpg", "CON_.jpg"), ("aux.jpg", "aux_.jpg"), ("nul.png", "nul_.png"), ("COM1.jpg", "COM1_.jpg"),
    ("LPT9", "LPT9_"), ("con/a.jpg", "con_/a.jpg"), ("Con .tar.gz", "Con _.tar.gz"), ("COM¹.jpg", "COM¹_.jpg"),
    ("console.jpg", "console.jpg"), ("COM10.jpg", "COM10.jpg"), ("a.con", "a.con"),
    ('a<b>c:d"e|f?g*.jpg', "a_b_c_d_e_f_g_.jpg"), ("a.jpg ", "a.jpg"), ("a.jpg.", "a.jpg"),
    ("dir. /a.jpg", "dir/a.jpg"), ("...", "unnamed"), ("C:\\photos\\合照.jpg", "photos/合照.jpg"),
])
def test_clean_name_makes_windows_safe_parts(raw, clean):
    assert clean_name(raw) == clean
    assert clean_name(raw).raw == raw


def test_clean_name_keeps_the_extension_of_long_names_and_the_path_short():
    for raw in HOSTILE:
        name = clean_name(raw)
        assert not problems([name]), (raw, problems([name]))
    assert clean_name(LONG_CJK).endswith("的.jpg") and clean_name(LONG_CJK).startswith("很长的名字-很长")
    assert clean_name("x" * 300 + ".jpeg") == "x" * 195 + ".jpeg"  # 200 with the extension
    assert clean_name("/".join(["CON" + " " * 40 + "x"] * 9) + "/a.jpg").startswith("CON_/")  # cut, then fixed
    deep = clean_name("/".join(f"level{i:02d}" for i in range(40)) + "/deep.jpg")
    assert deep.startswith("level00/level01/") and deep.endswith("/deep.jpg")  # deep folders go, the top stays
    long_folders = clean_name("/".join(["d" * 100] * 3) + "/a.jpg")
    assert long_folders == "/".join(["d" * 32] * 3) + "/a.jpg"  # each long folder is cut to 32 first


def test_name_book_keeps_case_collisions_distinct():
    book = NameBook()
    assert [book.claim(n) for n in ("a.jpg", "A.jpg", "a.jpg", "dir/a.jpg")] == \
        ["a.jpg", "A (2).jpg", "a (3).jpg", "dir/a.jpg"]


def test_name_book_never_puts_a_file_where_a_folder_is():
    book = NameBook()
    file_first = [book.claim(n) for n in ("x/a.jpg", "x/a.jpg/b.jpg", "x/A.JPG/c.jpg")]
    folder_first = [book.claim(n) for n in ("y/A.jpg/b.jpg", "y/a.jpg", "y/a.jpg/c.jpg", "Y/d.jpg")]
    assert file_first == ["x/a.jpg", "x/a.jpg (2)/b.jpg", "x/a.jpg (2)/c.jpg"]  # one folder, renamed once
    assert folder_first == ["y/A.jpg/b.jpg", "y/a (2).jpg", "y/A.jpg/c.jpg", "y/d.jpg"]  # folders keep one spelling
    assert not problems(file_first + folder_first)


def test_name_book_numbers_long_names_within_the_limits():
    book = NameBook()
    name = clean_name(LONG_CJK)
    names = [book.claim(name) for _ in range(12)]
    assert names[11].endswith(" (12).jpg") and not problems(names)


def test_random_hostile_names_all_extract_together():
    rng = random.Random(7)
    alphabet = ["a", "A", ".", " ", "/", "\\", ":", "*", "\x00", "\t", "é", "e\u0301", "合", "😀", "CON", "nul",
                "com1", "LPT¹", ".jpg", ".JPG", "..", "x" * 60, "深" * 40]
    book, names = NameBook(), []
    for _ in range(2000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        names.append(book.claim(clean_name(raw)))
    assert not problems(names)


def test_an_extension_hidden_by_a_trailing_space_still_counts(tmp_path):
    intake = Intake(tmp_path / "job", lambda i, name: tmp_path / "out" / name,
                    max_files=10, max_unzipped=10**9, max_ratio=200)
    jpg = encode(np.zeros((8, 8, 3), np.uint8))
    intake.add_stream("z.zip", io.BytesIO(make_zip({"a.jpg ": jpg, "b.JPG.": jpg, "c.jpg": jpg, "CON.jpg": jpg})))
    got = [(e.name, e.original, e.state.value) for e in intake.entries]
    assert got == [("a.jpg", "a.jpg ", "pending"), ("b.JPG", "b.JPG.", "pending"), ("c.jpg", None, "pending"),
                   ("CON_.jpg", "CON.jpg", "pending")]


def test_a_name_only_normalised_to_nfc_records_no_original(tmp_path):
    intake = Intake(tmp_path / "job", lambda i, name: tmp_path / "out" / name,
                    max_files=10, max_unzipped=10**9, max_ratio=200)
    intake.add_stream("cafe\u0301.txt", io.BytesIO(b"notes"))  # macOS hands out decomposed (NFD) names
    intake.add_stream("cafe\u0301.txt", io.BytesIO(b"notes"))
    first, second = intake.entries
    assert (first.name, first.original) == ("caf\u00e9.txt", None)
    assert (second.name, second.original) == ("caf\u00e9 (2).txt", "caf\u00e9.txt")


def test_original_names_survive_a_restart(tmp_path):
    folders = JobFolders(tmp_path)
    journal = Journal(folders)
    folders.of("j").create()
    files = [FileEntry(0, "CON_.jpg", None, None, original="CON.jpg"), FileEntry(1, "b.jpg", None, None)]
    journal.save(Job("j", tmp_path / "j", files, {}))
    loaded = journal.load(folders.of("j"))
    assert [(f.name, f.original) for f in loaded.files] == [("CON_.jpg", "CON.jpg"), ("b.jpg", None)]
    assert [f.summary().get("original_name") for f in loaded.files] == ["CON.jpg", None]
    assert "original_name" not in loaded.files[1].report()


def test_result_zip_names_extract_everywhere(make_app, tmp_path):
    app = make_app({"DATA_DIR": str(tmp_path / "jobs"), "WORKERS": 2, "EXECUTOR": "thread",
                      "DETECTOR_FACTORY": lambda _options: (lambda image: [])})
    client = app.test_client()
    jpg, png = encode(np.full((16, 16, 3), 90, np.uint8)), encode(np.full((16, 16, 3), 90, np.uint8), ".png")
    members = {raw: png if raw.endswith(".png") else jpg for raw in HOSTILE}
    members.update({"x/a.jpg": jpg, "x/a.jpg/b.jpg": jpg, "y/A.jpg/b.jpg": jpg, "y/a.jpg": jpg, "a.jpg": jpg})
    uploads = [("hostile.zip", make_zip(members)), ("u.jpg ", jpg), ("CON.jpg", jpg), ("A.JPG", jpg)]
    snap = finish(app, post_job(client, uploads))
    zf = result_zip(client, snap["id"])
    written = [n for n in zf.namelist() if n != "report.json"]
    assert not problems(written), problems(written)
    report = json.loads(zf.read("report.json"))
    assert not problems([f["name"] for f in report["files"]])  # what the CLI would write, skipped ones too
    given = {f.get("original_name", f["name"]): f for f in report["files"][:-3]}  # the zip's members
    expected = {"CON.jpg": "CON_.jpg", "aux.jpg": "aux_.jpg", "nul.png": "nul_.png", "COM1.jpg": "COM1_.jpg",
                "LPT9": "LPT9_", "con/inside.jpg": "con_/inside.jpg", "d.jpg ": "d.jpg", "x/a.jpg": "x/a.jpg",
                "x/a.jpg/b.jpg": "x/a.jpg (2)/b.jpg", "y/A.jpg/b.jpg": "y/A.jpg/b.jpg", "y/a.jpg": "y/a (2).jpg"}
    assert {raw: given[raw]["name"] for raw in expected} == expected
    assert given["d.jpg "]["state"] == given[LONG_CJK]["state"] == "done"  # not skipped as 'not an image'
    assert [(f["name"], f.get("original_name")) for f in report["files"][-3:]] == \
        [("u.jpg", "u.jpg "), ("CON_ (2).jpg", "CON.jpg"), ("A (2).JPG", "A.JPG")]  # the uploads
    renamed = [f for f in report["files"] if "original_name" in f]
    assert all(f["original_name"] != f["name"] for f in renamed) and "original_name" not in given["x/a.jpg"]
    assert [f.get("original_name") for f in snap["files"]] == [f.get("original_name") for f in report["files"]]
    # Judged by content: LPT9, 'Con .tar.gz' and '...' hold JPEGs, so they are photos too.
    assert (snap["failed"], snap["skipped"], snap["processed"]) == (0, 0, len(report["files"]))
    app.extensions["faceguard"].shutdown()
