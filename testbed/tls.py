"""A testbed CA and a server certificate for the default registry's name, made with openssl once per testbed.

Real Ollama pulls `testbed/tiny` from https://registry.ollama.ai, as it would on any host. The testbed
hosts resolve that name to the mirror (their /etc/hosts) and trust this CA (their trust store), so the
mirror can answer for the registry over HTTPS without any change to Ollama or the deploy. Site
registries get certificates from a site CA of their own, which no host trusts at boot.

Example:
    paths = ensure_registry_cert(tb.state_dir / "tls")   # {"ca": ..., "cert": ..., "key": ...}
"""
from __future__ import annotations

import subprocess
from pathlib import Path

REGISTRY_HOST = "registry.ollama.ai"  # types/model/name.go defaultHost
# The registry redirects blob GETs here (Ollama needs a redirect to another host name); plain HTTP on
# the mirror's port: blobs are checked against their sha256 digest, so TLS adds nothing to the test.
BLOB_HOST = "blobs.registry.testbed"


def ensure_registry_cert(tls_dir: Path) -> dict[str, Path]:
    ca = _ca(tls_dir, "ca", "ollama-deploy testbed CA")
    return ca | _server_cert(tls_dir, ca, "registry", REGISTRY_HOST, f"DNS:{REGISTRY_HOST},DNS:{BLOB_HOST}")


def ensure_site_ca(tls_dir: Path) -> dict[str, Path]:
    """The site's own CA, which signs the site registries' certificates. Unlike the testbed CA, no host
    trusts it at boot (a site CA is no public one): only what the deploy sets up trusts it."""
    return _ca(tls_dir, "site-ca", "ollama-deploy site CA")


def ensure_site_cert(tls_dir: Path, name: str, ip: str) -> dict[str, Path]:
    """A site registry host's certificate from the site CA, for its name and its address (its front
    redirects blob GETs from the name to the address, and Ollama checks both)."""
    return _server_cert(tls_dir, ensure_site_ca(tls_dir), name, name, f"DNS:{name},IP:{ip}")


def _ca(tls_dir: Path, stem: str, subject: str) -> dict[str, Path]:
    """A self-signed CA certificate and key (<stem>.crt, <stem>.key), made once."""
    paths = {"ca": tls_dir / f"{stem}.crt", "ca_key": tls_dir / f"{stem}.key"}
    if not all(p.exists() for p in paths.values()):
        tls_dir.mkdir(parents=True, exist_ok=True)
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", paths["ca_key"], "-out", paths["ca"], "-days", "3650", "-subj", f"/CN={subject}")
    return paths


def _server_cert(tls_dir: Path, ca: dict[str, Path], stem: str, cn: str, san: str) -> dict[str, Path]:
    """A server certificate and key (<stem>.crt, <stem>.key) signed by `ca` for the names in `san`, made once."""
    paths = {"cert": tls_dir / f"{stem}.crt", "key": tls_dir / f"{stem}.key"}
    if all(p.exists() for p in paths.values()):
        return paths
    csr, ext = tls_dir / f"{stem}.csr", tls_dir / f"{stem}.ext"
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", paths["key"], "-out", csr, "-subj", f"/CN={cn}")
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca["ca"], "-CAkey", ca["ca_key"], "-CAcreateserial",
             "-out", paths["cert"], "-days", "3650", "-extfile", ext)
    return paths


def _openssl(*args) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
