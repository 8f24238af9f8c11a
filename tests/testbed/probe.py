"""Install an Ollama release from the testbed mirror on a host, by hand (checksum verified), and serve it
as a transient unit on a port of its own, beside whatever the deploy installed."""
from ollama_deploy.gocompat import OLLAMA_VERSION

INSTALL = """set -eu
tmp=$(mktemp -d); cd "$tmp"
curl -fsS -O {base}/v{version}/ollama-linux-{arch}.tar.zst -O {base}/v{version}/sha256sum.txt
grep ' ./ollama-linux-{arch}.tar.zst$' sha256sum.txt | sha256sum -c --status
mkdir -p /opt/{unit} && tar --zstd -xf ollama-linux-{arch}.tar.zst -C /opt/{unit}
systemd-run --quiet --unit={unit} --setenv=HOME=/root --setenv=OLLAMA_MODELS=/var/tmp/{unit} \\
    --setenv=OLLAMA_HOST={api} /opt/{unit}/bin/ollama serve
for i in $(seq 100); do curl -fsS http://{api}/api/version && break; sleep 0.1; done
"""


def install_and_serve(host, base: str, arch: str, unit: str, api: str):
    """Run INSTALL on a testinfra host: the release goes to /opt/<unit>, its models to /var/tmp/<unit>."""
    return host.run(INSTALL.format(base=base, version=OLLAMA_VERSION, arch=arch, unit=unit, api=api))


def remove(host, unit: str) -> None:
    host.run(f"systemctl stop {unit}; systemctl reset-failed {unit}; rm -rf /opt/{unit} /var/tmp/{unit}")
