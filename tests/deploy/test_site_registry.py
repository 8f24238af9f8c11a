"""The site registry: Debian's docker-registry behind its own nginx front on a testbed host; the
control node loads each model into it once and real Ollama 0.32.15 pulls from it by the 307 its
downloader needs, finding the model under its ordinary name; a rerun fetches and changes nothing."""
import os
import re

import pytest

from ollama_deploy.tasks.install import SITE_CA, SITE_CA_DIR, TRUST_STORE_SITE_CA
from testbed import core, tls
from testbed.deployrun import run_deploy
from testbed.layout import Testbed
from tests.deploy.hosts import model_of, ssh

FRONT_LOG = "/var/log/ollama-site-registry-front/access.log"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tb = Testbed.named("tbsite", hosts=1, site_registries=1)  # one real-Ollama host, one registry
    core.down(tb)
    core.up(tb)
    cache = tmp_path_factory.mktemp("site-cache")
    yield tb, ["--data", f"ollama_fleet_cache_dir={cache}"]
    if not os.environ.get("TESTBED_KEEP"):
        core.down(tb)


@pytest.fixture(scope="module")
def converged(site):
    tb, data = site
    run = run_deploy(tb.inventory_path, *data)
    assert run.rc == 0, run.stderr[-3000:]
    return run


def _mirror_blob_gets(tb):
    """(client, blob path, first byte, last byte) of each blob the mirror served."""
    lines = (tb.state_dir / "mirror-access.log").read_text().splitlines()
    gets = []
    for line in lines:
        m = re.search(r" GET (/v2/\S+/blobs/\S+) (200|206)(?: bytes=(\d+)-(\d+))?", line)
        if m:
            first, last = (int(m.group(3)), int(m.group(4))) if m.group(2) == "206" else \
                (0, (tb.mirror_root / m.group(1).lstrip("/")).stat().st_size - 1)
            gets.append((line.split()[1], m.group(1), first, last))
    return gets


def _front_log(tb):
    """(client, method, path, status, user agent) for each request the registry's front answered."""
    text = ssh(tb, tb.registry_hosts[0].name, f"cat {FRONT_LOG}").stdout
    return re.findall(r'^(\S+) \S+ \S+ \[[^]]+\] "(\S+) (\S+) [^"]*" (\d{3}) \S+ "[^"]*" "([^"]*)"', text, re.M)


def test_hosts_pull_by_ordinary_name_through_the_redirect(site, converged):
    tb, _ = site
    host, registry = tb.hosts[0], tb.registry_hosts[0]
    model = model_of(tb, host.name)
    listed = ssh(tb, host.name, "ollama list").stdout
    assert f"{model}:latest" in listed and registry.name not in listed, listed
    requests = _front_log(tb)
    by_ollama = [r for r in requests if r[0] == host.ip and r[1] == "GET" and "/blobs/" in r[2]
                 and not r[4].startswith("curl/")]  # curl fetched the release (the next test)
    digests = {r[2] for r in by_ollama}
    assert digests, requests
    for path in digests:  # each blob: a 307 to the address, then the download from there
        statuses = [(r[3], r[4].split("/")[0]) for r in by_ollama if r[2] == path]
        assert ("307", "ollama") in statuses and any(s in ("200", "206") for s, _ in statuses), (path, statuses)
    writes = [r for r in requests if r[1] in ("POST", "PUT", "PATCH")]
    assert writes and {r[0] for r in writes} == {tb.gateway}  # only the control node loaded it
    # The outside registry (the mirror) served each byte of each blob once, to the control node only
    # (the memory budget's read of the GGUF header is where the control node's download starts).
    gets = _mirror_blob_gets(tb)
    assert {client for client, *_ in gets} == {tb.gateway}
    for path in {path for _, path, *_ in gets}:
        spans = sorted((first, last) for _, p, first, last in gets if p == path)
        size = (tb.mirror_root / path.lstrip("/")).stat().st_size
        assert spans[0][0] == 0 and spans[-1][1] == size - 1, (path, spans)
        assert all(a[1] + 1 == b[0] for a, b in zip(spans, spans[1:])), (path, spans)  # no gap, no overlap


def test_the_release_artifact_comes_from_the_site_too(site, converged):
    tb, _ = site
    host = tb.hosts[0]
    installed = ssh(tb, host.name, "cat /usr/local/lib/ollama/.ollama-deploy-release").stdout.strip()
    path = f"/v2/ollama-deploy/releases/blobs/sha256:{installed}"
    fetched = [(r[3], r[4].split("/")[0]) for r in _front_log(tb) if r[0] == host.ip and r[2] == path]
    assert ("307", "curl") in fetched and ("200", "curl") in fetched, fetched
    lines = (tb.state_dir / "mirror-access.log").read_text().splitlines()
    from_outside = {line.split()[1] for line in lines if re.search(r" GET \S+\.tar\.zst ", line)}
    assert from_outside == {tb.gateway}, from_outside  # fetched once, by the control node


def test_rerun_changes_nothing_and_fetches_nothing(site, converged):
    tb, data = site
    mirror, front = _mirror_blob_gets(tb), _front_log(tb)
    again = run_deploy(tb.inventory_path, *data)
    assert again.rc == 0 and again.changed_ops() == [], again.changed_ops()
    assert _mirror_blob_gets(tb) == mirror
    new = _front_log(tb)[len(front):]
    # Only the registry host's own check asked anything: no load, no pull.
    assert new and {r[0] for r in new} == {"127.0.0.1"}, new


def test_the_site_ca_is_trusted_by_ollama_and_the_download_alone(site, converged):
    """The pull and the release download above went over TLS to a registry whose CA no host trusted
    at boot; the host's own trust store still does not trust it."""
    tb, _ = site
    host = tb.hosts[0].name
    env = ssh(tb, host, "systemctl show -p Environment --value ollama").stdout
    assert f"SSL_CERT_DIR=/etc/ssl/certs:/etc/pki/tls/certs:{SITE_CA_DIR}" in env.split(), env
    plain = ssh(tb, host, f"curl -sS -o /dev/null {tb.site_registry_url}/v2/")
    assert plain.returncode == 60, plain.stderr  # curl: the peer's certificate cannot be authenticated
    assert ssh(tb, host, f"curl -fsS --cacert {SITE_CA} -o /dev/null {tb.site_registry_url}/v2/").returncode == 0
    bundle = ssh(tb, host, "cat /etc/ssl/certs/ca-certificates.crt").stdout
    site_ca = tls.ensure_site_ca(tb.state_dir / "tls")["ca"].read_text()
    assert site_ca.strip().splitlines()[1] not in bundle


def test_a_site_ca_in_the_trust_store_from_an_earlier_version_is_taken_out(site, converged):
    tb, data = site
    host = tb.hosts[0].name
    ssh(tb, host, f"cp {SITE_CA} {TRUST_STORE_SITE_CA} && update-ca-certificates >/dev/null")
    run = run_deploy(tb.inventory_path, *data)
    assert run.rc == 0, run.stderr[-3000:]
    assert [name for name, _ in run.changed_ops()] == [
        "Install Ollama | Site CA out of the host's trust store (earlier versions put it there)",
        "Install Ollama | Trust store without the site CA"], run.changed_ops()
    plain = ssh(tb, host, f"test ! -e {TRUST_STORE_SITE_CA} && curl -sS -o /dev/null {tb.site_registry_url}/v2/")
    assert plain.returncode == 60, plain.stderr


def test_only_the_control_node_may_write(site, converged):
    tb, _ = site
    registry = tb.registry_hosts[0].name
    url = f"{tb.site_registry_url}/v2/x/y/blobs/uploads/"
    status = ssh(tb, tb.hosts[0].name, f"curl -s --cacert {SITE_CA} -o /dev/null -w '%{{http_code}}' -X POST {url}").stdout
    assert status == "403", status
    assert ssh(tb, registry, "ss -Hltn 'sport = :5000'").stdout.split()[3] == "127.0.0.1:5000"
    assert ssh(tb, registry, "ss -Hltn 'sport = :80'").stdout == ""  # Debian's default nginx site is off


@pytest.mark.parametrize("unit", ["docker-registry", "ollama-site-registry-front"])
def test_registry_units_are_sandboxed(site, converged, unit):
    tb, _ = site
    out = ssh(tb, tb.registry_hosts[0].name, f"systemctl is-active {unit} && systemd-analyze security {unit}").stdout
    exposure = float(re.search(r"Overall exposure level for \S+: (\d+\.\d)", out).group(1))
    assert exposure <= 1.1, out[-2000:]


def test_plain_http_without_an_allowed_network_is_refused_before_any_change(site, converged):
    tb, data = site
    host = tb.hosts[0].name
    url = tb.site_registry_url.replace("https://", "http://")
    before = ssh(tb, host, "systemctl show -p MainPID --value ollama; stat -c %Y /etc/systemd/system/ollama.service").stdout
    run = run_deploy(tb.inventory_path, *data, "--data", f"ollama_site_registry={url}")
    assert run.rc != 0
    line = next(x for x in run.stderr.splitlines() if "ollama_site_registry" in x)
    assert f"host {host}: key ollama_site_registry, value {url!r}: plain HTTP" in line, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert ssh(tb, host, "systemctl show -p MainPID --value ollama; "
                         "stat -c %Y /etc/systemd/system/ollama.service").stdout == before
