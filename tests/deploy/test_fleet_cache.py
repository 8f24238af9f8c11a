"""The fleet cache: each model and release artifact leaves the mirror once, whatever the number of
hosts; re-runs move nothing; a corrupted blob on one host is found and replaced."""
import json
import os
import re
import shutil

import pytest

from ollama_deploy.control import fleetcache
from ollama_deploy.control.fleetcache import cached_model
from testbed import core
from testbed.deployrun import run_deploy
from testbed.layout import Testbed
from tests.deploy.hosts import model_of, ssh


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
            if (m := re.search(r" GET (/v2/\S+/blobs/\S+|/(?:ollama|double)/releases/\S+\.tar\.zst) 2\d\d", line))]


def test_each_blob_leaves_the_mirror_once_and_hosts_list_the_models(fleet):
    tb, cache = fleet
    run = run_deploy(tb.inventory_path, *cache)
    assert run.rc == 0, run.stderr[-3000:]
    gets = _blob_gets(tb)
    assert {client for client, _ in gets} == {tb.gateway}  # only the control node downloaded
    paths = [path for _, path in gets]
    assert len(paths) == len(set(paths))  # each file once, for all 3 hosts
    # Each artifact once: real amd64 (the CPU host), the double's amd64 and arm64 (the GPU hosts).
    assert sum(p.endswith(".tar.zst") for p in paths) == 3
    for h in tb.hosts:
        listed = ssh(tb, h.name, "ollama list").stdout
        assert f"{model_of(tb, h.name)}:latest" in listed, h.name
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


def test_copies_left_by_a_killed_run_are_removed(fleet):
    tb, cache = fleet
    host = tb.hosts[1].name
    staging = "/usr/share/ollama/.ollama/models/.ollama-deploy-incoming"
    ssh(tb, host, f"mkdir -p {staging} && head -c 1048576 /dev/zero > {staging}/0")  # half a copy
    run = run_deploy(tb.inventory_path, *cache)
    assert run.rc == 0, run.stderr[-3000:]
    assert run.changed_ops() == [("Models | Seed models from the fleet cache", host)]
    assert ssh(tb, host, f"test -e {staging} && echo left || echo gone").stdout.strip() == "gone"


def _registry_gets(tb) -> int:
    return sum(" GET /v2/" in line for line in (tb.state_dir / "mirror-access.log").read_text().splitlines())


@pytest.fixture(scope="module")
def airgap(fleet, tmp_path_factory):
    """A copy of a connected machine's models dir (Ollama's layout), made from the mirror."""
    tb, _ = fleet
    connected = tmp_path_factory.mktemp("connected")
    for model in ("testbed/tiny", "testbed/small", "testbed/real-tiny"):
        cached_model(model, tb.mirror_url, str(connected))
    fleetcache.clear_cache()
    return connected / "models"


def test_air_gapped_models_come_from_a_local_directory_and_nothing_from_a_registry(fleet, airgap):
    tb, cache = fleet
    models = "/usr/share/ollama/.ollama/models"
    for h in tb.hosts:
        ssh(tb, h.name, f"rm -rf {models}/manifests {models}/blobs")
    before = _registry_gets(tb)
    offline = ["--data", f"ollama_models_local_dir={airgap}", "--data", "ollama_registry_url=http://127.0.0.1:9"]
    run = run_deploy(tb.inventory_path, *cache, *offline)
    assert run.rc == 0, run.stderr[-3000:]
    assert _registry_gets(tb) == before  # no manifest, no blob: not even a header read for the budget
    for h in tb.hosts:
        assert f"{model_of(tb, h.name)}:latest" in ssh(tb, h.name, "ollama list").stdout, h.name
    assert run_deploy(tb.inventory_path, *cache, *offline).changed_ops() == []


def test_an_air_gapped_directory_with_a_damaged_blob_is_refused_before_any_change(fleet, airgap, tmp_path):
    tb, cache = fleet
    damaged = tmp_path / "models"
    shutil.copytree(airgap, damaged)
    damaged_weights = []
    for model in ("tiny", "real-tiny"):  # every host has one of them
        manifest = json.loads((damaged / f"manifests/registry.ollama.ai/testbed/{model}/latest").read_text())
        weights = damaged / "blobs" / manifest["layers"][0]["digest"].replace(":", "-")
        with open(weights, "r+b") as f:
            f.write(b"damage")
        damaged_weights.append(weights)
    run = run_deploy(tb.inventory_path, *cache, "--data", f"ollama_models_local_dir={damaged}")
    assert run.rc != 0 and run.changed_ops(include_checks=True) == []
    lines = [line.strip() for line in run.stderr.splitlines() if line.strip().startswith("host ")]
    assert {line.split(":")[0] for line in lines} == {f"host {h.name}" for h in tb.hosts}
    assert all(f"key ollama_models_local_dir, value '{damaged}'" in line and
               any(f"{w} is missing or does not match its digest" in line for w in damaged_weights)
               for line in lines), lines


def test_a_release_that_fails_its_pinned_checksum_is_refused_before_any_change(fleet):
    tb, cache = fleet
    wrong = "0" * 64
    run = run_deploy(tb.inventory_path, *cache, "--data",
                     f'ollama_release_sha256={{"ollama-linux-amd64.tar.zst": "{wrong}"}}')
    assert run.rc != 0 and run.changed_ops(include_checks=True) == []
    lines = [line.strip() for line in run.stderr.splitlines() if line.strip().startswith("host ")]
    amd64 = {f"host {h.name}" for h in tb.hosts if h.profile != "dgx_spark"}  # the GB10 is arm64
    assert {line.split(":")[0] for line in lines} == amd64, run.stderr[-2000:]
    assert all("key ollama_release_base_url" in line and "sha256 mismatch" in line and f"expected {wrong}" in line
               for line in lines), lines
