"""A hostile corpus made in code: each case gets a clear answer, nothing leaks, the server stays up."""
from __future__ import annotations

import io
import json
import logging
import re
import stat
import zipfile

import cv2
import numpy as np
from PIL import Image, PngImagePlugin

from tests.helpers import encode, finish, make_zip, post_job, result_zip


def only_job_folders(data_dir) -> None:
    """Nothing may appear in the data folder but job folders."""
    assert all(re.fullmatch(r"[0-9a-f]{32}", p.name) and p.is_dir() for p in data_dir.iterdir())


def states(snapshot) -> dict[str, tuple[str, str | None]]:
    return {f["name"]: (f["state"], f["error"]) for f in snapshot["files"]}


def test_bad_files_fail_by_content_and_the_rest_finish(app, client, astronaut, tmp_path):
    jpeg = encode(astronaut)
    big = Image.new("1", (12000, 12000))  # 144 megapixels in a few kilobytes
    buf = io.BytesIO()
    big.save(buf, "PNG")
    corpus = [
        ("ok.jpg", jpeg),
        ("empty.jpg", b""),
        ("truncated.jpg", jpeg[: len(jpeg) // 2]),
        ("random.jpg", np.random.default_rng(1).bytes(5000)),
        ("text.png", b"just some text, not a picture"),
        ("bomb.png", buf.getvalue()),
        ("png-named.jpg", encode(astronaut, ".png")),  # wrong extension, real image: judged by content
        ("polyglot.jpg", jpeg + make_zip({"secret.txt": b"hidden payload"})),
    ]
    snap = finish(app, post_job(client, corpus, preset="fast"))
    got = states(snap)
    assert snap["state"] == "done" and snap["total"] == len(corpus)
    assert got["ok.jpg"] == got["png-named.jpg"] == got["polyglot.jpg"] == ("done", None)
    assert "not a readable image" in got["empty.jpg"][1]
    assert "truncated" in got["truncated.jpg"][1]
    assert "not a readable image" in got["random.jpg"][1] and "not a readable image" in got["text.png"][1]
    assert "megapixels" in got["bomb.png"][1]
    zf = result_zip(client, snap["id"])
    assert sorted(zf.namelist()) == ["ok.jpg", "png-named.jpg", "polyglot.jpg", "report.json"]
    assert zf.read("png-named.jpg")[:4] == b"\x89PNG"  # written in its own format, whatever the name says
    assert b"hidden payload" not in zf.read("polyglot.jpg") and b"PK" not in zf.read("polyglot.jpg")[-200:]
    report = json.loads(zf.read("report.json"))
    assert {f["name"] for f in report["files"]} == {name for name, _ in corpus}
    only_job_folders(tmp_path / "jobs")
    assert client.get("/").status_code == 200


def test_png_text_chunks_and_exif_do_not_survive(app, client, astronaut):
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Parent")
    info.add_text("GPS", "51.5007,-0.1246")
    buf = io.BytesIO()
    Image.fromarray(cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGB)).save(buf, "PNG", pnginfo=info)
    assert b"Jane Parent" in buf.getvalue()
    snap = finish(app, post_job(client, [("family.png", buf.getvalue())], preset="fast"))
    out = result_zip(client, snap["id"]).read("family.png")
    assert b"Jane Parent" not in out and b"tEXt" not in out and b"iTXt" not in out and b"eXIf" not in out


def mark_encrypted(archive: bytes, name: str) -> bytes:
    """Set the 'encrypted' flag of one member, in its local header and its central directory entry."""
    data = bytearray(archive)
    info = zipfile.ZipFile(io.BytesIO(archive)).getinfo(name)
    data[info.header_offset + 6] |= 0x1
    central = data.find(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(name)] != name.encode():
        central = data.find(b"PK\x01\x02", central + 4)
    data[central + 8] |= 0x1
    assert zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(name).flag_bits & 0x1
    return bytes(data)


def test_zip_members_that_are_not_plain_files(app, client, astronaut, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("fine.jpg", encode(astronaut))
        link = zipfile.ZipInfo("link.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        device = zipfile.ZipInfo("device.jpg")
        device.external_attr = (stat.S_IFCHR | 0o666) << 16
        zf.writestr(device, "")
        zf.writestr("secret.jpg", b"\0" * 100)
        zf.writestr("../../escape.jpg", encode(astronaut))
        zf.writestr("inner.zip", make_zip({"x.jpg": encode(astronaut)}))
        zf.writestr("__MACOSX/._fine.jpg", b"\0\5\26\7")
        zf.writestr(".DS_Store", b"\0\0\0\1Bud1")
        zf.writestr("notes.txt", b"hello")
    snap = finish(app, post_job(client, [("hostile.zip", mark_encrypted(buf.getvalue(), "secret.jpg"))],
                                preset="fast"))
    got = states(snap)
    assert got["fine.jpg"] == ("done", None)
    assert "symbolic link" in got["link.jpg"][1] and "not a regular file" in got["device.jpg"][1]
    assert "encrypted" in got["secret.jpg"][1] and "Unsafe path" in got["escape.jpg"][1]
    assert "inside a zip" in got["inner.zip"][1]
    assert [got[n][0] for n in ("__MACOSX/._fine.jpg", ".DS_Store", "notes.txt")] == ["skipped"] * 3
    assert (snap["failed"], snap["skipped"]) == (5, 3)
    assert not list(tmp_path.rglob("escape.jpg")) and not list(tmp_path.rglob("passwd"))
    only_job_folders(tmp_path / "jobs")


def test_names_stay_distinct(app, client, astronaut):
    jpg = encode(cv2.resize(astronaut, (64, 64)))
    long_name = "很长的名字-" * 40 + ".jpg"  # 644 bytes: too long for every file system, so it is cut
    archive = make_zip({"班级/合照.jpg": jpg, "班级/合照.JPG": jpg, f"deep/{long_name}": jpg, "a.jpg": jpg})
    snap = finish(app, post_job(client, [("z.zip", archive), ("a.jpg", jpg), ("A.jpg", jpg), ("a.jpg", jpg)],
                                preset="fast"))
    names = sorted(result_zip(client, snap["id"]).namelist())
    cut = next(n for n in names if n.startswith("deep/"))
    assert len(cut.encode()) - len("deep/") <= 255 and long_name.startswith(cut[len("deep/"):-len(".jpg")])
    assert names == sorted(["班级/合照.jpg", "班级/合照 (2).JPG", cut, "a.jpg", "a (2).jpg",
                            "A (3).jpg", "a (4).jpg", "report.json"])
    assert {f["name"]: f.get("original_name") for f in snap["files"]}[cut] == f"deep/{long_name}"
    assert len({n.casefold() for n in names}) == len(names)


def test_too_many_files_is_refused_before_any_work(make_app, tmp_path, astronaut):
    app = make_app({"DATA_DIR": str(tmp_path), "MAX_FILES": 3, "EXECUTOR": "thread"})
    archive = make_zip({f"{i}.jpg": encode(astronaut) for i in range(5)})
    response = post_job(app.test_client(), [("many.zip", archive)])
    assert response.status_code == 413 and "limit is 3" in response.get_json()["error"]
    assert list(tmp_path.iterdir()) == []
    app.extensions["faceguard"].shutdown()


def test_job_ids_are_unguessable_and_not_listed(app, client, astronaut):
    ids = {post_job(client, [("a.jpg", encode(astronaut))], preset="fast").get_json()["id"] for _ in range(5)}
    assert len(ids) == 5 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)  # 128 random bits
    listing = client.get("/api/jobs")
    assert listing.status_code == 405 and "error" in listing.get_json()
    for path in ("/api/jobs/../../etc/passwd", "/api/jobs/%2e%2e", "/api/jobs/" + "a" * 32 + "/result"):
        response = client.get(path)
        assert response.status_code == 404 and "error" in response.get_json()
    for job_id in ids:
        app.extensions["faceguard"].wait(job_id, 60)


def test_logs_name_files_but_carry_no_image_data(app, client, astronaut, caplog):
    with caplog.at_level(logging.INFO):
        finish(app, post_job(client, [("kaputt.jpg", b"\xff\xd8\xff" + b"\x00" * 5000)], preset="fast"))
    messages = [r.getMessage() for r in caplog.records]
    assert any("kaputt.jpg" in m and "not a readable image" in m for m in messages)
    assert all(len(m) < 500 and "\x00" not in m for m in messages)
