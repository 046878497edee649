"""The real server: waitress, one server per data folder, the token off loopback, foreign Origins and Hosts."""
from __future__ import annotations

import re
import subprocess

import pytest
import requests

from tests.helpers import (
    encode,
    free_port,
    server_command,
    server_env,
    start_server,
    stop_server,
    wait_done,
)

pytestmark = pytest.mark.slow  # real servers and browsers: the slow tier

FOREIGN = "http://evil.example"


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    """One server on 127.0.0.1 with no token, as `python run.py` starts it."""
    data = tmp_path_factory.mktemp("loopback") / "jobs"
    proc, base = start_server(data, WORKERS=1)
    yield proc, base
    stop_server(proc)


def _job(base: str, photo: bytes, **headers) -> requests.Response:
    return requests.post(base + "/api/jobs", files=[("images", ("p.jpg", photo, "image/jpeg"))],
                         data={"preset": "fast"}, headers=headers, timeout=60)


def test_waitress_serves(loopback):
    proc, base = loopback
    response = requests.get(base + "/", timeout=10)
    assert response.status_code == 200 and response.headers["Server"] == "waitress"
    log = proc.log.read_text()
    assert f"Serving with waitress on {base}" in log
    assert f"Face Privacy Guard: open {base}/ in your browser" in log
    assert requests.get(base + "/api/jobs/" + "0" * 32, timeout=10).status_code == 404, "no token on loopback"


def test_cross_site_origin_is_refused(loopback, astronaut):
    _, base = loopback
    photo = encode(astronaut)
    refused = _job(base, photo, Origin=FOREIGN)
    assert refused.status_code == 403 and "other sites" in refused.json()["error"]
    job = _job(base, photo, Origin=base).json()  # the page's own Origin passes
    status = requests.get(base + job["status_url"], headers={"Origin": FOREIGN}, timeout=10)
    assert status.status_code == 403 and "other sites" in status.json()["error"]
    other_port = base.rsplit(":", 1)[0] + ":1"
    for origin in ("null", other_port, base.replace("http:", "https:"), "http://localhost.evil.example"):
        assert requests.get(base + job["status_url"], headers={"Origin": origin}, timeout=10).status_code == 403
    assert wait_done(base, job)["state"] == "done"
    delete = requests.delete(base + job["status_url"], headers={"Origin": FOREIGN}, timeout=10)
    assert delete.status_code == 403 and requests.delete(base + job["status_url"], timeout=10).status_code == 204


def test_a_foreign_host_is_refused(loopback):
    _, base = loopback
    port = base.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{int(port) + 1}", "localhost"):
        response = requests.get(base + "/api/jobs/" + "0" * 32, headers={"Host": host}, timeout=10)
        assert response.status_code == 403 and "does not answer to the name" in response.json()["error"], host
        assert requests.get(base + "/", headers={"Host": host}, timeout=10).status_code == 403
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        assert requests.get(base + "/", headers={"Host": host}, timeout=10).status_code == 200, host


def test_every_address_asks_for_the_printed_token(tmp_path, astronaut):
    proc, base = start_server(tmp_path / "jobs", "--host", "0.0.0.0", WORKERS=1)
    try:
        log = proc.log.read_text()
        port = base.rsplit(":", 1)[1]
        token = re.search(rf"open http://0\.0\.0\.0:{port}/#token=([\w-]+) in your browser", log).group(1)
        assert len(token) >= 32
        page = requests.get(base + "/", timeout=10)  # the page loads, and says it will ask
        assert page.status_code == 200 and 'data-token="required"' in page.text
        photo = encode(astronaut)
        refused = _job(base, photo)
        assert refused.status_code == 401 and "access token" in refused.json()["error"]
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert _job(base, photo, Authorization="Bearer wrong-" + token).status_code == 401
        job = _job(base, photo, Authorization=f"Bearer {token}").json()
        assert requests.get(base + job["status_url"], timeout=10).status_code == 401
        bearer = {"Authorization": f"Bearer {token}"}
        snap = requests.get(base + job["status_url"], headers=bearer, timeout=10)
        assert snap.status_code == 200 and snap.json()["total"] == 1
        # The page's cookie stands in for the header where the browser fetches by itself: GET only.
        cookie = {f"faceguard-token-{port}": token}
        assert requests.get(base + job["status_url"], cookies=cookie, timeout=10).status_code == 200
        assert requests.delete(base + job["status_url"], cookies=cookie, timeout=10).status_code == 401
        # Bound to every address, it cannot know its names: any Host passes, the token guards.
        assert requests.get(base + "/api/access", headers={**bearer, "Host": "my-pc.lan:80"}, timeout=10).status_code == 204
        assert requests.get(base + "/api/access", headers={"Host": "my-pc.lan:80"}, timeout=10).status_code == 401
        assert requests.delete(base + job["status_url"], headers=bearer, timeout=10).status_code == 204
    finally:
        stop_server(proc)


def test_one_server_per_data_folder(tmp_path):
    data = tmp_path / "jobs"
    first, base = start_server(data, cli=True, WORKERS=1)  # `faceguard serve`
    second = subprocess.run(server_command("--port", str(free_port())), env=server_env(data, WORKERS=1),
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"the data folder {data.resolve()} is already in use by another server (process {first.pid})" \
        in second.stderr
    assert "Serving" not in second.stderr + second.stdout, "it must stop before binding"
    assert requests.get(base + "/", timeout=10).headers["Server"] == "waitress"
    first.kill()  # no chance to let go of the lock: the operating system does
    first.wait(30)
    again, _ = start_server(data, WORKERS=1)
    again.terminate()  # SIGTERM stops like Ctrl-C: workers stop, the app's shutdown runs, exit code 0
    assert again.wait(30) == 0
    assert f"stopped; unfinished files stay queued in {data.resolve()}" in again.log.read_text()


def test_debug_serves_with_werkzeug(tmp_path):
    proc, base = start_server(tmp_path / "jobs", "--debug", WORKERS=1, EXECUTOR="thread")
    try:
        assert requests.get(base + "/", timeout=10).headers["Server"].startswith("Werkzeug/")
        assert requests.get(base + "/", headers={"Host": "evil.example"}, timeout=10).status_code == 403
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    assert f"Face Privacy Guard: open {base}/ in your browser" in proc.log.read_text()
    assert "stopped; unfinished files stay queued" in proc.log.read_text()
