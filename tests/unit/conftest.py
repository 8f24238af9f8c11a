"""Fixtures shared by the unit tests: a static registry on 127.0.0.1 (tests/unit/registry.py)."""
from __future__ import annotations

import pytest

from ollama_deploy.control import fleetcache, modelinfo
from testbed.models import CATALOG, MIB, gguf_bytes, gguf_metadata, publish_models
from tests.unit.registry import BIG_TOKENS, Registry, publish_blob


def _fresh_caches():
    modelinfo.clear_cache()
    fleetcache.clear_cache()


@pytest.fixture(autouse=True)
def _own_model_info_cache(tmp_path, monkeypatch):
    """Each test its own on-disk metadata cache, so none sees what another (or an earlier run) read."""
    monkeypatch.setattr(modelinfo, "DISK_CACHE", tmp_path / "model-info")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    publish_models(root)
    # A model whose GGUF header (a big tokenizer vocabulary) is larger than the first 2 MiB range.
    meta = {**gguf_metadata(CATALOG[0]), "tokenizer.ggml.tokens": BIG_TOKENS}
    big = root / "big.gguf"
    big.write_bytes(gguf_bytes(meta, 8 * MIB, seed=b"bigheader"))
    publish_blob(root, "testbed", "bigheader", "latest", big)
    # A 256 MiB blob (sparse: no disk cost) to see that a server ignoring Range is not read to the end.
    huge = root / "huge.gguf"
    with open(huge, "wb") as f:
        f.write(gguf_bytes(gguf_metadata(CATALOG[1])))
        f.truncate(256 * MIB)
    publish_blob(root, "testbed", "huge", "latest", huge)
    return root


@pytest.fixture
def registry(root):
    _fresh_caches()
    r = Registry(root)
    yield r
    r.close()
    _fresh_caches()


@pytest.fixture
def plain_registry(root):
    """A server that ignores Range (always 200 with the whole body)."""
    _fresh_caches()
    r = Registry(root, honour_range=False)
    yield r
    r.close()
    _fresh_caches()
