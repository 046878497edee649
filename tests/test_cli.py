"""The faceguard command on folders and zips: same pipeline, same names, same report; never harms its inputs."""
from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from app import cli
from app.batch import BatchService
from app.cli import main
from tests.helpers import encode, make_zip

SMALL = np.full((24, 32, 3), 128, np.uint8)


def faceguard(*args) -> int:
    """Run the command in this process, as `faceguard ARGS...`."""
    return main([str(a) for a in args])


def photo(path: Path) -> Path:
    """Write a small JPEG (or PNG) at path, making its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(SMALL, path.suffix))
    return path


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def report_of(out: Path) -> dict[str, str]:
    return {f["name"]: f["state"] for f in json.loads((out / "report.json").read_text())["files"]}


@pytest.fixture
def no_faces(monkeypatch):
    """Worker threads and a detector that finds nothing: for tests where detection is not the point."""
    monkeypatch.setenv("FACEGUARD_EXECUTOR", "thread")
    monkeypatch.setattr(cli, "BatchService",
                        functools.partial(BatchService, detector_factory=lambda options: lambda image: []))


def test_cli_on_a_folder_and_a_zip(tmp_path, astronaut, capsys):
    src = tmp_path / "in"
    (src / "trip").mkdir(parents=True)
    cv2.imwrite(str(src / "trip" / "合照.jpg"), astronaut)
    cv2.imwrite(str(src / "portrait.png"), astronaut)
    (src / "notes.txt").write_text("not a photo")
    (tmp_path / "more.zip").write_bytes(make_zip({"z/inside.jpg": encode(astronaut)}))
    out = tmp_path / "out"
    assert main([str(src), str(tmp_path / "more.zip"), "-o", str(out), "--method", "pixelate", "--workers", "2"]) == 1
    assert listing(out) == ["in/portrait.png", "in/trip/合照.jpg", "more/z/inside.jpg", "report.json"]
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "pixelate"
    assert {f["name"]: f["faces"] for f in report["files"] if f["state"] == "done"} == \
        {"in/portrait.png": 1, "in/trip/合照.jpg": 1, "more/z/inside.jpg": 1}
    err = capsys.readouterr().err
    assert "3 of 3 photos redacted, 3 faces, 0 failed, 1 skipped" in err and "3/3" in err
    assert "skipped: in/notes.txt: Not an image file." in err


@pytest.mark.slow  # the command in a process of its own, with worker processes
def test_cli_exit_code_and_no_output_for_a_failed_file(tmp_path, astronaut):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "good.jpg"), astronaut)
    (src / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "app.cli", str(src), "-o", str(out)],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "1 of 2 photos redacted, 1 faces, 1 failed" in result.stderr
    assert "  failed: bad.jpg: " in result.stderr
    assert (out / "good.jpg").is_file() and not (out / "bad.jpg").exists()
    assert report_of(out) == {"good.jpg": "done", "bad.jpg": "failed"}


@pytest.mark.parametrize("inputs, output, expected", [
    (["in"], "out", ["a.jpg", "report.json", "sub/b.png"]),
    (["in/a.jpg"], "out", ["a.jpg", "report.json"]),
    (["party.zip"], "out", ["p/c.jpg", "report.json"]),
])
def test_cli_one_input_puts_its_contents_straight_into_the_output(tmp_path, no_faces, inputs, output, expected):
    photo(tmp_path / "in" / "a.jpg")
    photo(tmp_path / "in" / "sub" / "b.png")
    (tmp_path / "party.zip").write_bytes(make_zip({"p/c.jpg": encode(SMALL)}))
    assert faceguard(*(tmp_path / i for i in inputs), "-o", tmp_path / output) == 0
    assert listing(tmp_path / output) == expected


def test_cli_several_inputs_keep_their_own_folder_names(tmp_path, no_faces):
    photo(tmp_path / "A" / "x.jpg")
    photo(tmp_path / "B" / "x.jpg")
    photo(tmp_path / "elsewhere" / "A" / "x.jpg")
    photo(tmp_path / "loose.jpg")
    (tmp_path / "party.zip").write_bytes(make_zip({"x.jpg": encode(SMALL), "sub/y.jpg": encode(SMALL)}))
    out = tmp_path / "out"
    assert faceguard(tmp_path / "A", tmp_path / "B", tmp_path / "elsewhere" / "A", tmp_path / "loose.jpg",
                     tmp_path / "party.zip", "-o", out) == 0
    assert listing(out) == ["A (2)/x.jpg", "A/x.jpg", "B/x.jpg", "loose.jpg", "party/sub/y.jpg", "party/x.jpg",
                            "report.json"]
    assert set(report_of(out)) == {"A/x.jpg", "B/x.jpg", "A (2)/x.jpg", "loose.jpg", "party/x.jpg", "party/sub/y.jpg"}


def test_cli_refuses_an_output_folder_that_is_an_input_folder(tmp_path, no_faces, capsys):
    src = photo(tmp_path / "in" / "a.jpg").parent
    before = (src / "a.jpg").read_bytes()
    assert faceguard(src, "-o", src, "--overwrite") == 2
    assert "is the input folder" in capsys.readouterr().err
    assert listing(src) == ["a.jpg"] and (src / "a.jpg").read_bytes() == before


@pytest.mark.parametrize("inputs, output", [
    (["out/a.jpg"], "out"),  # a redacted photo given again, into its own folder
    (["top/photos", "other"], "top"),  # several inputs: top/photos/a.jpg would be written over
    (["top"], "top/photos/.."),  # the same folder by another name
])
def test_cli_never_writes_over_an_input_file(tmp_path, no_faces, capsys, inputs, output):
    for name in ("out/a.jpg", "top/photos/a.jpg", "other/b.jpg"):
        photo(tmp_path / name)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert faceguard(*(tmp_path / i for i in inputs), "-o", tmp_path / output, "--overwrite") == 2
    assert "never writes over its inputs" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_cli_refuses_to_replace_earlier_results_unless_told(tmp_path, no_faces, capsys):
    src = photo(tmp_path / "in" / "a.jpg").parent
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(b"an earlier result")
    (out / "keep.txt").write_text("mine")
    assert faceguard(src, "-o", out) == 2
    err = capsys.readouterr().err
    assert "already holds files this run would replace (a.jpg)" in err and "--overwrite" in err
    assert listing(out) == ["a.jpg", "keep.txt"] and (out / "a.jpg").read_bytes() == b"an earlier result"
    (out / "a.jpg").unlink()
    (out / "report.json").write_text("{}")
    assert faceguard(src, "-o", out) == 2
    assert "(report.json)" in capsys.readouterr().err and (out / "report.json").read_text() == "{}"
    assert faceguard(src, "-o", out, "--overwrite") == 0
    assert listing(out) == ["a.jpg", "keep.txt", "report.json"]
    assert cv2.imread(str(out / "a.jpg")) is not None and report_of(out) == {"a.jpg": "done"}


def test_cli_skips_its_output_folder_inside_the_input(tmp_path, no_faces, capsys):
    src = photo(tmp_path / "in" / "a.jpg").parent
    out = src / "redacted"
    assert faceguard(src, "-o", out) == 0
    assert faceguard(src, "-o", out, "--overwrite") == 0  # a re-run
    assert "skipping" in capsys.readouterr().err
    assert listing(out) == ["a.jpg", "report.json"] and report_of(out) == {"a.jpg": "done"}


def test_cli_exit_code_1_when_a_file_is_skipped(tmp_path, no_faces, capsys):
    photo(tmp_path / "in" / "a.jpg")
    (tmp_path / "in" / "notes.txt").write_text("not a photo")
    assert faceguard(tmp_path / "in", "-o", tmp_path / "out") == 1
    assert "skipped: notes.txt: Not an image file." in capsys.readouterr().err
    assert report_of(tmp_path / "out") == {"a.jpg": "done", "notes.txt": "skipped"}


def test_cli_a_folder_from_a_mac_exits_0_with_its_metadata_listed_in_the_report(tmp_path, no_faces, capsys):
    photo(tmp_path / "in" / "a.jpg")
    (tmp_path / "in" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (tmp_path / "in" / "._a.jpg").write_bytes(b"\0\5\26\7")  # an AppleDouble file, as Finder copies leave
    (tmp_path / "in" / "trip.zip").write_bytes(make_zip({"trip/b.jpg": encode(np.full((64, 64, 3), 90, np.uint8)),
                                                          "__MACOSX/trip/._b.jpg": b"\0\5\26\7"}))
    assert faceguard(tmp_path / "in", "-o", tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "2 of 2 photos redacted" in err and "3 desktop or archive metadata files left out" in err
    assert "skipped" not in err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    left_out = {f["name"]: (f["state"], f["code"]) for f in report["files"] if f["state"] != "done"}
    assert left_out == {name: ("skipped", "archive_metadata")
                        for name in (".DS_Store", "._a.jpg", "__MACOSX/trip/._b.jpg")}, left_out
    (tmp_path / "in" / "notes.txt").write_text("not a photo")  # a file the user may have meant: said loudly
    assert faceguard(tmp_path / "in", "-o", tmp_path / "out2") == 1
    assert "skipped: notes.txt: Not an image file." in capsys.readouterr().err


@pytest.mark.parametrize("inputs, words", [
    (["nope"], "nope: no such file or folder"),
    (["in", "nope"], "nope: no such file or folder"),
    (["empty"], "no files to redact"),
    (["folders.zip"], "no files to redact"),
    (["in", "-o", "file.txt"], "is a file"),
])
def test_cli_usage_errors_exit_2_and_create_nothing(tmp_path, no_faces, capsys, inputs, words):
    photo(tmp_path / "in" / "a.jpg")
    (tmp_path / "empty").mkdir()
    (tmp_path / "folders.zip").write_bytes(make_zip({"only/a/folder/": b""}))
    (tmp_path / "file.txt").write_text("a file")
    args = [a if a.startswith("-") else tmp_path / a for a in inputs]
    out = [] if "-o" in inputs else ["-o", tmp_path / "out" / "deeper"]
    assert faceguard(*args, *out) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and (tmp_path / "file.txt").read_text() == "a file"


def test_cli_usage_error_messages(tmp_path, no_faces, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    assert faceguard(tmp_path / "nope", "-o", tmp_path / "out") == 2
    assert capsys.readouterr().err == f"faceguard: {tmp_path / 'nope'}: no such file or folder\n"
    assert faceguard(tmp_path / "empty", "-o", tmp_path / "out") == 2
    assert capsys.readouterr().err == f"faceguard: no files to redact in {tmp_path / 'empty'}\n"
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        photo(tmp_path / "in" / name)
    monkeypatch.setenv("FACEGUARD_MAX_FILES", "2")
    assert faceguard(tmp_path / "in", "-o", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "more than 2 files (FACEGUARD_MAX_FILES)" in err and "job" not in err
    assert not (tmp_path / "out").exists()


def test_cli_summary_names_the_first_five_failed_or_skipped(tmp_path, no_faces, capsys):
    src = photo(tmp_path / "in" / "good.jpg").parent
    for n in range(3):
        (src / f"bad{n}.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    for n in range(4):
        (src / f"note{n}.txt").write_text("not a photo")
    assert faceguard(src, "-o", tmp_path / "out") == 1
    lines = capsys.readouterr().err.splitlines()
    start = next(i for i, line in enumerate(lines) if "photos redacted" in line)
    assert lines[start].startswith("1 of 4 photos redacted, 0 faces, 3 failed, 4 skipped")
    named = lines[start + 1:]
    assert [line.split(":")[0].strip() for line in named[:5]] == ["failed"] * 3 + ["skipped"] * 2
    assert named[0].startswith("  failed: bad0.jpg: ") and len(named[0]) > len("  failed: bad0.jpg: ") + 10
    assert named[3] == "  skipped: note0.txt: Not an image file."
    assert named[5:] == [f"  ... and 2 more failed or skipped, listed in {tmp_path / 'out' / 'report.json'}"]


def test_cli_name_clashes_in_a_zip_are_renamed_or_failed_in_cli_words(tmp_path, no_faces, capsys):
    (tmp_path / "odd.zip").write_bytes(make_zip({"x.jpg": encode(SMALL), "x.jpg/y.jpg": encode(SMALL),
                                                 "report.json/z.jpg": encode(SMALL)}))
    out = tmp_path / "out"
    assert faceguard(tmp_path / "odd.zip", "-o", out) == 1
    err = capsys.readouterr().err
    # A file and a folder of one name: the folder is renamed as it arrives (the intake's names).
    assert "failed: report.json/z.jpg: Not written: report.json/z.jpg in the output folder clashes with the report" in err
    assert "DATA_DIR" not in err
    assert listing(out) == ["report.json", "x.jpg", "x.jpg (2)/y.jpg"]
    assert report_of(out) == {"x.jpg": "done", "x.jpg (2)/y.jpg": "done", "report.json/z.jpg": "failed"}


def test_cli_write_errors_speak_of_the_output_folder(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"

    def in_the_way(_options):  # another program puts a file where a folder of outputs goes
        def detect(image):
            (out / "trip").write_text("in the way")
            return []
        return detect

    monkeypatch.setenv("FACEGUARD_EXECUTOR", "thread")
    monkeypatch.setattr(cli, "BatchService", functools.partial(BatchService, detector_factory=in_the_way))
    photo(tmp_path / "in" / "trip" / "a.jpg")
    assert faceguard(tmp_path / "in", "-o", out) == 1
    err = capsys.readouterr().err
    report = (out / "report.json").read_text()
    assert "failed: trip/a.jpg: This photo could not be written: the output folder (-o)" in err
    assert "DATA_DIR" not in err and "DATA_DIR" not in report and "the output folder (-o)" in report


def test_cli_help_explains_names_overwrite_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "--overwrite" in text and "OUTDIR/<folder name>/" in text and "OUTDIR/<zip name without .zip>/" in text
    assert all(f"  {code}  " in text for code in "012")
