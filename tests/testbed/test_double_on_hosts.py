"""The Ollama test double installs on each host from the mirror (checksum verified) and answers."""
import json

import pytest

from ollama_deploy.gocompat import OLLAMA_VERSION
from testbed.layout import Testbed
from tests.testbed.probe import install_and_serve, remove

HOSTS = [h.name for h in Testbed.named().hosts]
ARCH = {h.name: "arm64" if h.profile == "dgx_spark" else "amd64" for h in Testbed.named().hosts}
UNIT = "double-probe"  # release in /opt/double-probe, not the deploy's prefix: this test must not pre-install for it
PREFIX = f"/opt/{UNIT}"
API = "127.0.0.1:11500"  # not Ollama's port: a deployed Ollama may already serve 11434 here


@pytest.mark.parametrize("name", HOSTS)
def test_double_installs_from_mirror_pulls_and_generates(testbed, hosts, name):
    tb, _ = testbed
    h = hosts[name]
    try:
        out = install_and_serve(h, tb.double_release_base_url, ARCH[name], UNIT, API)
        assert out.rc == 0, out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1]) == {"version": OLLAMA_VERSION}
        assert h.file(f"{PREFIX}/bin/ollama").mode & 0o111
        assert h.file(f"{PREFIX}/lib/ollama").is_directory
        pull = h.run(f"OLLAMA_HOST={API} {PREFIX}/bin/ollama pull testbed/tiny")
        assert pull.rc == 0 and "success" in pull.stderr + pull.stdout
        gen = json.loads(h.check_output(
            f"curl -fsS http://{API}/api/generate -d %s",
            json.dumps({"model": "testbed/tiny", "prompt": "Say hello", "stream": False})))
        assert gen["done"] is True and gen["response"].strip()
        assert gen["eval_count"] > 0 and gen["eval_duration"] > 0 and gen["load_duration"] > 0
        journal = h.check_output("journalctl -u double-probe --no-pager -o cat")
        assert 'msg="server config"' in journal and "OLLAMA_MODELS:/var/tmp/double-probe" in journal
        access = (tb.state_dir / "mirror-access.log").read_text()
        ip = tb.host(name).ip
        assert f"{ip} GET /double/releases/download/v{OLLAMA_VERSION}/ollama-linux-{ARCH[name]}.tar.zst 200" in access
    finally:
        remove(h, UNIT)
