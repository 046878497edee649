"""The rules of a running server, through Flask's test client: Host names, Origins, the token; the folder lock."""
from __future__ import annotations

import pytest

from app import cli
from app.config import load_config
from app.lock import FolderInUse, FolderLock
from app.web.security import Access, is_loopback, is_wildcard, protect

TOKEN = "s3cret-Token_1"
MISSING = "/api/jobs/" + "0" * 32


@pytest.mark.parametrize("host, loopback, wildcard", [
    ("127.0.0.1", True, False), ("127.5.6.7", True, False), ("::1", True, False), ("[::1]", True, False),
    ("localhost", True, False), ("LocalHost", True, False), ("0.0.0.0", False, True), ("::", False, True),
    ("", False, True), ("192.168.1.20", False, False), ("my-pc.lan", False, False), ("128.0.0.1", False, False),
])
def test_which_binds_are_loopback_and_wildcard(host, loopback, wildcard):
    assert (is_loopback(host), is_wildcard(host)) == (loopback, wildcard)


def test_host_names_a_loopback_server_answers_to():
    access = Access.for_bind("127.0.0.1", 5000, None)
    for host in ("127.0.0.1:5000", "localhost:5000", "LOCALHOST:5000", "[::1]:5000", "localhost.:5000", None):
        assert access.host_ok(host), host
    for host in ("127.0.0.1", "localhost:5001", "evil.example:5000", "127.0.0.1.evil.example:5000", "[::2]:5000"):
        assert not access.host_ok(host), host
    assert Access.for_bind("localhost", 80, None).host_ok("localhost")  # port 80 goes without saying
    assert Access.for_bind("::1", 8080, None).host_ok("[::1]:8080")


def test_host_names_of_other_binds():
    lan = Access.for_bind("192.168.1.20", 5000, TOKEN)
    assert lan.host_ok("192.168.1.20:5000") and not lan.host_ok("localhost:5000") and not lan.host_ok("evil:5000")
    assert Access.for_bind("0.0.0.0", 5000, TOKEN).host_ok("anything.lan:5000")


@pytest.mark.parametrize("origin, same", [
    (None, True), ("http://127.0.0.1:5000", True), ("HTTP://127.0.0.1:5000", True),
    ("http://localhost:5000", False), ("http://127.0.0.1:5001", False), ("https://127.0.0.1:5000", False),
    ("null", False), ("http://127.0.0.1:5000.evil.example", False), ("http://127.0.0.1:99999", False), ("", False),
])
def test_origins(origin, same):
    assert Access.for_bind("127.0.0.1", 5000, None).origin_ok(origin, "127.0.0.1:5000", "http") is same


def test_tokens():
    assert Access(None, None).token_ok(None)
    guarded = Access(None, TOKEN)
    assert guarded.token_ok(TOKEN) and not guarded.token_ok(None) and not guarded.token_ok(TOKEN + "x")
    assert not guarded.token_ok("") and not guarded.token_ok("s3cret")


@pytest.fixture
def guarded(app):
    protect(app, Access.for_bind("localhost", 80, TOKEN))  # the test client's Host is "localhost"
    return app.test_client()


def test_the_api_needs_the_token_and_the_page_does_not(guarded):
    page = guarded.get("/")
    assert page.status_code == 200 and b'data-token="required"' in page.data
    refused = guarded.get(MISSING)
    assert refused.status_code == 401 and "access token" in refused.get_json()["error"]
    assert guarded.post("/api/jobs").status_code == 401
    assert guarded.get(MISSING, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    assert guarded.get(MISSING, headers={"Authorization": f"bearer  {TOKEN} "}).status_code == 404
    assert guarded.get(MISSING, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert guarded.get("/api/access", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 204
    assert guarded.get("/api/access", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_cookie_stands_in_for_the_header_on_gets_only(guarded):
    guarded.set_cookie("faceguard-token-80", TOKEN.replace("-", "%2D"), path="/api/")  # as encodeURIComponent may
    assert guarded.get(MISSING).status_code == 404
    assert guarded.delete(MISSING).status_code == 401
    assert guarded.post("/api/jobs").status_code == 401
    guarded.set_cookie("faceguard-token-80", "wrong", path="/api/")
    assert guarded.get(MISSING).status_code == 401


def test_without_protect_an_app_answers_as_before(client):
    page = client.get("/", headers={"Host": "evil.example", "Origin": "http://evil.example"})
    assert page.status_code == 200 and b'data-token=""' in page.data


def test_token_from_the_environment(monkeypatch):
    monkeypatch.delenv("FACEGUARD_TOKEN", raising=False)
    assert load_config()["TOKEN"] is None
    monkeypatch.setenv("FACEGUARD_TOKEN", " abc-123 ")
    assert load_config()["TOKEN"] == "abc-123"
    monkeypatch.setenv("FACEGUARD_TOKEN", "")
    assert load_config()["TOKEN"] is None


def test_the_folder_lock(tmp_path):
    first, second = FolderLock(tmp_path / "jobs"), FolderLock(tmp_path / "jobs")
    first.acquire()
    with pytest.raises(FolderInUse, match=f"the data folder {tmp_path / 'jobs'} is already in use"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_faceguard_serve_is_its_own_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["serve", "--help"])
    assert exit_.value.code == 0 and "usage: faceguard serve [-h] [--host HOST] [--port PORT] [--debug]" \
        in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        cli.main(["serve", "--host", "0.0.0.0", "--debug"])
    assert exit_.value.code == 2 and "this machine only" in capsys.readouterr().err
