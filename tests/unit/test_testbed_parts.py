"""Testbed pieces that need no root: mirror discovery, naming, the mirror server."""
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from testbed.layout import Testbed, TestbedError
from testbed.rootfs import apt_mirror


def test_apt_mirror_from_deb822_skips_security_and_disabled(tmp_path):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "a.sources").write_text(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://main.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n")
    assert apt_mirror(tmp_path) == "http://main.example/debian"


def test_apt_mirror_from_one_line_format(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb http://sec.example/debian-security bookworm-security main\n"
        "deb [arch=amd64] http://one.example/debian bookworm main\n")
    assert apt_mirror(tmp_path) == "http://one.example/debian"


def test_apt_mirror_missing_is_a_clear_error(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(TestbedError, match="no Debian mirror"):
        apt_mirror(tmp_path)


def test_names_fit_linux_interface_limits_and_cover_profiles():
    tb = Testbed.named("abcdefgh", hosts=200)
    assert max(len(tb.bridge), *(len(h.veth) for h in tb.hosts)) <= 15
    assert len({h.ip for h in tb.hosts}) == 200
    three = Testbed.named("tb", hosts=3)
    assert [h.profile for h in three.hosts] == ["cpu_xeon", "dual_gpu", "dgx_spark"]
    assert [h.name for h in Testbed.named("tb", hosts=4).hosts][-1] == "cpu-xeon-2"
    assert three.subnet != Testbed.named("other").subnet


@pytest.mark.parametrize("bad", ["TB", "1tb", "toolongname", "a-b"])
def test_bad_testbed_names_are_refused(bad):
    with pytest.raises(TestbedError, match=bad):
        Testbed.named(bad)


@pytest.fixture
def mirror(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "blob").write_bytes(bytes(range(256)) * 4)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "access.log"
    proc = subprocess.Popen([sys.executable, "-m", "testbed.mirror", "--root", str(root), "--bind", "127.0.0.1",
                             "--port", str(port), "--access-log", str(log)])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", log
    proc.terminate()
    proc.wait()


def test_mirror_serves_ranges_for_resumed_downloads_and_logs(mirror):
    url, log = mirror
    whole = urllib.request.urlopen(f"{url}/blob").read()
    req = urllib.request.Request(f"{url}/blob", headers={"Range": "bytes=1000-"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 206 and r.headers["Content-Range"] == "bytes 1000-1023/1024"
        assert r.read() == whole[1000:]
    lines = log.read_text().splitlines()
    assert [line.split()[2:] for line in lines] == [["GET", "/blob", "200"], ["GET", "/blob", "206", "bytes=1000-1023"]]
