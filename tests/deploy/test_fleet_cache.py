"""The fleet cache: each model and release artifact leaves the mirror once, whatever the number of
hosts; re-runs move nothing; a corrupted blob on one host is found and replaced."""
import os
import re

import pytest

from testbed import core
from testbed.deployrun import run_deploy
from testbed.layout import Testbed
from tests.deploy.hosts import ssh


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tb = Testbed.named("tbfleet", hosts=3)
    core.down(tb)
    core.up(tb)
    cache = tmp_path_factory.mktemp("fleet-cache")
    yield tb, ["--data", "ollama_fleet_cache=true", "--data", f"ollama_fleet_cache_dir={cache}"]
    if not os.environ.get("TESTBED_KEEP"):
        core.down(tb)


def _blob_gets(tb):
    """(client address, blob digest) for every blob or release download the mirror served."""
    lines = (tb.state_dir / "mirror-access.log").read_text().splitlines()
    return [(line.split()[1], m.group(1)) for line in lines
            if (m := re.search(r" GET (/v2/\S+/blobs/\S+|/ollama/releases/\S+\.tar\.zst) 2\d\d", line))]


def test_each_blob_leaves_the_mirror_once_and_hosts_list_the_models(fleet):
    tb, cache = fleet
    run = run_deploy(tb.inventory_path, *cache)
    assert run.rc == 0, run.stderr[-3000:]
    gets = _blob_gets(tb)
    assert {client for client, _ in gets} == {tb.gateway}  # only the control node downloaded
    paths = [path for _, path in gets]
    assert len(paths) == len(set(paths))  # each file once, for all 3 hosts
    assert sum(p.endswith(".tar.zst") for p in paths) == 2  # amd64 once (2 hosts) + arm64 once
    for h in tb.hosts:
        listed = ssh(tb, h.name, "ollama list").stdout
        assert "testbed/tiny:latest" in listed, h.name
    again = run_deploy(tb.inventory_path, *cache)
    assert again.rc == 0 and again.changed_ops() == []
    assert _blob_gets(tb) == gets  # the re-run fetched nothing


def test_a_corrupted_blob_is_detected_and_replaced(fleet):
    tb, cache = fleet
    host = tb.hosts[0].name
    blobs = "/usr/share/ollama/.ollama/models/blobs"
    victim = ssh(tb, host, f"ls -S {blobs} | head -1").stdout.strip()  # the model weights
    ssh(tb, host, f"printf corrupt | dd of={blobs}/{victim} bs=1 seek=4096 conv=notrunc 2>/dev/null")
    run = run_deploy(tb.inventory_path, *cache)
    assert run.rc == 0, run.stderr[-3000:]
    assert {h for _, h in run.changed_ops()} == {host}  # only the damaged host got a copy
    digest = ssh(tb, host, f"sha256sum {blobs}/{victim}").stdout.split()[0]
    assert victim == f"sha256-{digest}"
