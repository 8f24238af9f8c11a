"""Site registry settings: TLS or an explicitly allowed network, checked before any host changes."""
import pytest

from ollama_deploy.lib.settings import SettingsError, misnamed_keys, resolve
from ollama_deploy.lib.site_registry_settings import resolve_site_registry

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def cert(tmp_path):
    path = tmp_path / "site.crt"
    path.write_text(CERT)
    return str(path)


def problems(data):
    with pytest.raises(SettingsError) as e:
        resolve(data)
    return str(e.value)


def test_https_registry_with_a_site_ca_resolves(cert):
    s = resolve({"ollama_site_registry": "https://models.site:5443", "ollama_site_ca_file": cert})
    assert s.ollama_site_registry == "https://models.site:5443"


def test_plain_http_is_refused_outside_the_allowed_networks():
    message = problems({"ollama_site_registry": "http://127.0.0.1:5080",
                        "ollama_site_registry_http_networks": ["10.0.0.0/8"]})
    assert "key ollama_site_registry, value 'http://127.0.0.1:5080'" in message
    assert "127.0.0.1 is in no network" in message


def test_plain_http_is_allowed_on_an_allowed_network():
    s = resolve({"ollama_site_registry": "http://127.0.0.1:5080",
                 "ollama_site_registry_http_networks": ["127.0.0.0/8"]})
    assert s.ollama_site_registry_http_networks == ["127.0.0.0/8"]


@pytest.mark.parametrize("url", ["ftp://models.site", "https://models.site/v2/", "https://"])
def test_a_registry_url_is_scheme_name_and_port_only(url):
    assert "use https://name[:port]" in problems({"ollama_site_registry": url})


def test_site_registry_and_fleet_cache_are_exclusive():
    assert "either from the site registry or from the fleet cache" in problems(
        {"ollama_site_registry": "https://models.site", "ollama_fleet_cache": True})


def test_a_site_ca_that_is_no_certificate_is_named(tmp_path):
    key = tmp_path / "site.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    assert f"key ollama_site_ca_file, value '{key}': not a PEM certificate" in problems(
        {"ollama_site_ca_file": str(key)})
    assert "cannot be read on the control node" in problems({"ollama_site_ca_file": str(tmp_path / "none")})


def test_site_registry_host_keys_are_not_taken_for_misspelt_ollama_keys():
    assert misnamed_keys({"site_registry_port": 5443}) == []
    assert len(misnamed_keys({"site_registry_port": 5443, "keep_alive": "5m"})) == 1


def test_registry_host_defaults_to_its_inventory_name_over_tls(cert):
    s = resolve_site_registry({"site_registry_cert_file": cert, "site_registry_key_file": cert}, "site-registry-1")
    assert s.url == "https://site-registry-1:5443"


@pytest.mark.parametrize("data, why", [
    ({}, "needs site_registry_http_networks"),
    ({"site_registry_cert_file": "x"}, "give it together with site_registry_key_file"),
    ({"site_registry_http_networks": ["10.0.0.0/8"], "site_registry_port": 5000}, "other than 5000"),
    ({"site_registry_http_networks": ["10.0.0.0/8"], "site_registry_prot": 1}, "key site_registry_prot"),
])
def test_registry_host_settings_fail_with_one_line_naming_the_key(data, why):
    with pytest.raises(SettingsError) as e:
        resolve_site_registry(data, "site-registry-1")
    assert why in str(e.value)
    assert "\n" not in str(e.value).strip()


def test_plain_http_registry_host_url():
    s = resolve_site_registry({"site_registry_http_networks": ["10.0.0.0/8"]}, "models")
    assert s.url == "http://models:5443"
