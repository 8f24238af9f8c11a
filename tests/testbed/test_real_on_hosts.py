"""Real Ollama 0.32.15 on a testbed host: installs from the mirror (checksum verified), and its own
client pulls a model by its ordinary name from the default registry (the testbed mirror answers for
registry.ollama.ai over HTTPS, with the 307 blob redirect real Ollama needs), then generates."""
import json
import re

import pytest

from ollama_deploy.gocompat import OLLAMA_VERSION
from testbed.layout import Testbed
from tests.testbed.probe import install_and_serve, remove

REAL = [h.name for h in Testbed.named().hosts if Testbed.named().ollama_kind(h.profile) == "real"]
UNIT = "real-probe"  # release in /opt/real-probe, not the deploy's prefix: this test must not pre-install for it
PREFIX = f"/opt/{UNIT}"
API = "127.0.0.1:11501"  # not Ollama's port: a deployed Ollama may already serve 11434 here


@pytest.mark.skipif(not REAL, reason="OLLAMA_TESTBED_OLLAMA puts the double on every profile")
@pytest.mark.parametrize("name", REAL)
def test_real_ollama_pulls_by_ordinary_name_and_generates(testbed, hosts, name):
    tb, _ = testbed
    h = hosts[name]
    try:
        out = install_and_serve(h, tb.release_base_url, "amd64", UNIT, API)
        assert out.rc == 0, out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1]) == {"version": OLLAMA_VERSION}
        assert f"ollama version is {OLLAMA_VERSION}" in h.check_output(f"OLLAMA_HOST={API} {PREFIX}/bin/ollama --version 2>&1")
        pull = h.run(f"OLLAMA_HOST={API} {PREFIX}/bin/ollama pull testbed/real-tiny")
        assert pull.rc == 0 and "success" in pull.stderr + pull.stdout, pull.stderr[-2000:]
        gen = json.loads(h.check_output(
            f"curl -fsS http://{API}/api/generate -d %s",
            json.dumps({"model": "testbed/real-tiny", "prompt": "Say hello", "stream": False,
                        "options": {"num_predict": 8}})))
        assert gen["done"] is True and gen["eval_count"] > 0 and gen["eval_duration"] > 0
        # grep -a: llama-server logs raw token bytes, which need not be valid UTF-8.
        started = h.check_output("journalctl -u real-probe --no-pager -o cat | grep -a 'starting llama-server'")
        assert f"{PREFIX}/lib/ollama/llama-server --model" in started  # the real engine ran, not a stand-in
        manifest = json.loads((tb.mirror_root / "v2/testbed/real-tiny/manifests/latest").read_text())
        weights = next(x["digest"] for x in manifest["layers"] if x["mediaType"].endswith("image.model"))
        ip = tb.host(name).ip
        access = [line for line in (tb.state_dir / "mirror-access.log").read_text().splitlines()
                  if f" {ip} GET /v2/testbed/real-tiny/blobs/{weights} " in line]
        assert any(line.endswith(" 307") for line in access), access  # the registry name redirects...
        assert any(re.search(r" 20[06]( |$)", line) for line in access), access  # ...the blob host serves
    finally:
        remove(h, UNIT)
