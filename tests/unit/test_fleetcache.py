"""ollama_deploy/control/fleetcache.py against a real static registry on 127.0.0.1 (fixtures in conftest.py): each
file is fetched once and verified once per run, a damaged cache file is fetched again, and an
air-gapped models directory is used in place with every digest checked."""
from __future__ import annotations

import os
import shutil

import pytest

from ollama_deploy.control import fleetcache
from ollama_deploy.control.fleetcache import FleetCacheError, cached_model, verified


def _gets(registry, kind: str) -> list[str]:
    return [p for p, _ in registry.httpd.log if f"/{kind}/" in p]


def test_a_model_is_fetched_once_and_later_calls_cost_nothing(registry, tmp_path):
    first = cached_model("testbed/small", registry.url, str(tmp_path))
    blobs = _gets(registry, "blobs")
    assert len(blobs) == len(set(blobs)) == len(first.blobs)  # each blob once, whole
    assert first.manifest_relpath == "manifests/registry.ollama.ai/testbed/small/latest"
    assert all(verified(path, name.split("-", 1)[1]) for name, path in first.blobs.items())
    requests_so_far = len(registry.httpd.log)
    assert cached_model("testbed/small", registry.url, str(tmp_path)) is first  # the other hosts of this run
    assert len(registry.httpd.log) == requests_so_far


def test_a_new_run_reuses_intact_files_and_refetches_a_damaged_one(registry, tmp_path):
    model = cached_model("testbed/tiny", registry.url, str(tmp_path))
    fleetcache.clear_cache()  # a new run
    with open(model.weights, "r+b") as f:
        f.seek(100)
        f.write(b"damage")
    again = cached_model("testbed/tiny", registry.url, str(tmp_path))
    damaged = f"/v2/testbed/tiny/blobs/{model.weights.name.replace('-', ':', 1)}"
    assert _gets(registry, "blobs").count(damaged) == 2
    assert verified(again.weights, again.weights.name.split("-", 1)[1])
    assert len(_gets(registry, "blobs")) == len(model.blobs) + 1  # only the damaged blob came again


def test_a_rerun_for_a_host_that_has_the_model_asks_the_registry_nothing(registry, tmp_path):
    model = cached_model("testbed/tiny", registry.url, str(tmp_path))
    digest = "sha256:" + fleetcache.sha256_of(model.manifest)
    fleetcache.clear_cache()  # a new run
    before = len(registry.httpd.log)
    kept = cached_model("testbed/tiny", registry.url, str(tmp_path), digest=digest)
    assert len(registry.httpd.log) == before and kept.weights == model.weights
    # A host with another copy (the tag moved), or none, still asks the registry.
    cached_model("testbed/tiny", registry.url, str(tmp_path), digest="sha256:" + "0" * 64)
    assert [p for p, _ in registry.httpd.log[before:] if "/manifests/" in p]


def test_a_file_changed_after_verification_is_checked_again(tmp_path):
    fleetcache.clear_cache()
    path = tmp_path / "blob"
    path.write_bytes(b"weights")
    digest = fleetcache.sha256_of(path)
    assert verified(path, digest)
    path.write_bytes(b"WEIGHTS")
    os.utime(path, ns=(1, 1))
    assert not verified(path, digest)


def test_an_air_gapped_directory_is_used_in_place(registry, tmp_path):
    connected = cached_model("testbed/tiny", registry.url, str(tmp_path / "connected"))
    airgap = tmp_path / "airgap"
    shutil.copytree(tmp_path / "connected" / "models", airgap)
    fleetcache.clear_cache()
    requests_so_far = len(registry.httpd.log)
    model = cached_model("testbed/tiny", "http://127.0.0.1:9", str(tmp_path / "unused"), str(airgap))
    assert len(registry.httpd.log) == requests_so_far
    assert model.manifest == airgap / connected.manifest_relpath
    assert set(model.blobs) == set(connected.blobs) and model.weights.parent == airgap / "blobs"
    assert model.info("testbed/tiny").block_count == connected.info("testbed/tiny").block_count


def test_an_air_gapped_directory_with_a_bad_blob_or_no_model_is_refused(registry, tmp_path):
    connected = cached_model("testbed/tiny", registry.url, str(tmp_path / "connected"))
    airgap = tmp_path / "connected" / "models"
    fleetcache.clear_cache()
    with pytest.raises(FleetCacheError, match=r"testbed/small is not in .* \(no manifests/registry.ollama.ai/testbed/small/latest\)"):  # noqa: E501 (the text as the program prints it)
        cached_model("testbed/small", registry.url, "unused", str(airgap))
    with open(connected.weights, "ab") as f:
        f.write(b"x")
    with pytest.raises(FleetCacheError, match=f"{connected.weights.name} is missing or does not match its digest"):
        cached_model("testbed/tiny", registry.url, "unused", str(airgap))


def test_an_interrupted_download_resumes_where_it_stopped(registry, tmp_path, caplog):
    whole = cached_model("testbed/tiny", registry.url, str(tmp_path / "first"))
    weights = whole.weights.read_bytes()
    cache = tmp_path / "second"
    partial = cache / "models" / "blobs" / f"{whole.weights.name}.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(weights[: len(weights) // 2])  # a run stopped half-way through this blob
    fleetcache.clear_cache()
    registry.httpd.log.clear()
    with caplog.at_level("INFO", logger="pyinfra"):
        resumed = cached_model("testbed/tiny", registry.url, str(cache))
    assert resumed.weights.read_bytes() == weights and not partial.exists()
    digest = whole.weights.name.replace("-", ":", 1)
    assert (f"/v2/testbed/tiny/blobs/{digest}", f"bytes={len(weights) // 2}-") in registry.httpd.log
    assert any("resuming" in r.getMessage() and digest in r.getMessage() for r in caplog.records)


def test_a_model_the_registry_lacks_is_not_found_rather_than_a_failed_cache(registry, tmp_path):
    from ollama_deploy.control.modelinfo import ModelNotFound

    with pytest.raises(ModelNotFound, match="testbed/no-such-model.*HTTP 404"):
        cached_model("testbed/no-such-model", registry.url, str(tmp_path))


def test_the_header_read_for_the_budget_is_where_the_whole_download_starts(registry, tmp_path):
    """Site registry mode: the control node reads the GGUF header at plan time and fetches the whole
    blob later to load it; no byte crosses twice."""
    import functools

    from ollama_deploy.control.modelinfo import fetch_model_info

    keep = functools.partial(fleetcache.blob_partial, str(tmp_path))
    info = fetch_model_info("testbed/bigheader", registry.url, keep_start=keep)
    model = cached_model("testbed/bigheader", registry.url, str(tmp_path))
    assert model.info("testbed/bigheader") == info
    weights = f"/v2/testbed/bigheader/blobs/{model.weights.name.replace('-', ':', 1)}"
    ranges = [r for p, r in registry.httpd.log if p == weights]
    spans = [tuple(int(n) for n in r.removeprefix("bytes=").split("-")) for r in ranges[:-1]]
    assert len(spans) >= 2 and spans[0] == (0, 2 * 2**20 - 1), ranges  # the header is longer than 2 MiB
    assert all(a[1] + 1 == b[0] for a, b in zip(spans, spans[1:])), ranges
    assert ranges[-1] == f"bytes={spans[-1][1] + 1}-", ranges  # the download resumed after the header's bytes
    assert verified(model.weights, model.weights.name.split("-", 1)[1])
