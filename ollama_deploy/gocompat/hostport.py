"""OLLAMA_HOST as envconfig.Host reads it, with Go's net.SplitHostPort, JoinHostPort and ParseIP.

Example:
    ollama_host("0.0.0.0").port   # '11434'
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from ollama_deploy.gocompat.envconfig import ollama_var
from ollama_deploy.gocompat.strconv import go_parse_int, go_trim_space


def go_parse_ip(s: str) -> str | None:
    """net.ParseIP(s).String(), or None when Go would return nil.

    >>> go_parse_ip("::1"), go_parse_ip("::ffff:10.0.0.1"), go_parse_ip("010.0.0.1")
    ('::1', '10.0.0.1', None)
    """
    if "%" in s:  # ParseIP does not accept zones
        return None
    try:
        if ":" in s:
            ip6 = ipaddress.IPv6Address(s)
            if ip6.ipv4_mapped is not None:
                return str(ip6.ipv4_mapped)
            return str(ip6)
        return str(ipaddress.IPv4Address(s))
    except ValueError:
        return None


def go_split_host_port(hostport: str) -> tuple[str, str]:
    """net.SplitHostPort; raises ValueError with Go's reason.

    >>> go_split_host_port("[::1]:11434"), go_split_host_port(":8080")
    (('::1', '11434'), ('', '8080'))
    """
    def err(why: str) -> ValueError:
        return ValueError(f"address {hostport}: {why}")

    i = hostport.rfind(":")
    if i < 0:
        raise err("missing port in address")
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise err("missing ']' in address")
        if end + 1 == len(hostport):
            raise err("missing port in address")
        if end + 1 != i:
            if hostport[end + 1] == ":":
                raise err("too many colons in address")
            raise err("missing port in address")
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            raise err("too many colons in address")
    if "[" in hostport[j:]:
        raise err("unexpected '[' in address")
    if "]" in hostport[k:]:
        raise err("unexpected ']' in address")
    return host, hostport[i + 1 :]


def go_join_host_port(host: str, port: str) -> str:
    """net.JoinHostPort: brackets hosts that contain a colon.

    >>> go_join_host_port("::1", "11434")
    '[::1]:11434'
    """
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


class OllamaHost(NamedTuple):
    """Everything envconfig.Host() works out from OLLAMA_HOST."""

    scheme: str
    host: str  # without brackets; "" means all interfaces
    port: str  # kept as the string Go keeps (e.g. "0080" stays "0080")
    path: str
    port_invalid: bool  # Ollama logged "invalid port, using default"

    @property
    def hostport(self) -> str:
        """What the server passes to net.Listen."""
        return go_join_host_port(self.host, self.port)

    @property
    def url(self) -> str:
        """url.URL.String(): the value shown in the ``server config`` line."""
        u = f"{self.scheme}://{self.hostport}"
        if self.path:
            u += "/" + self.path
        return u


def ollama_host(raw: str | None) -> OllamaHost:
    """envconfig.Host with all its details.

    >>> ollama_host("").url, ollama_host("0.0.0.0").url, ollama_host("https://x").url
    ('http://127.0.0.1:11434', 'http://0.0.0.0:11434', 'https://x:443')
    """
    default_port = "11434"
    s = go_trim_space(ollama_var(raw))
    if "://" in s:
        scheme, hostport = s.split("://", 1)
        if scheme == "http":
            default_port = "80"
        elif scheme == "https":
            default_port = "443"
    else:
        scheme, hostport = "http", s
        if s == "ollama.com":
            scheme, hostport = "https", "ollama.com:443"
    hostport, _, path = hostport.partition("/")
    try:
        host, port = go_split_host_port(hostport)
    except ValueError:
        host, port = "127.0.0.1", default_port
        ip = go_parse_ip(hostport.strip("[]"))
        if ip is not None:
            host = ip
        elif hostport != "":
            host = hostport
    invalid = False
    try:
        n = go_parse_int(port, 32)
        if n > 65535 or n < 0:
            invalid = True
    except ValueError:
        invalid = True
    if invalid:
        port = default_port
    return OllamaHost(scheme, host, port, path, invalid)


def parse_ollama_host(raw: str | None) -> tuple[str, str, str]:
    """envconfig.Host as ``(scheme, host, port)``; port is a string, as in Go.

    >>> parse_ollama_host(None)
    ('http', '127.0.0.1', '11434')
    >>> parse_ollama_host("0.0.0.0"), parse_ollama_host(":8080")
    (('http', '0.0.0.0', '11434'), ('http', '', '8080'))
    >>> parse_ollama_host("http://x:1"), parse_ollama_host("[::1]:11434")
    (('http', 'x', '1'), ('http', '::1', '11434'))
    >>> parse_ollama_host("https://example.com"), parse_ollama_host("http://example.com")
    (('https', 'example.com', '443'), ('http', 'example.com', '80'))
    """
    h = ollama_host(raw)
    return h.scheme, h.host, h.port


def connectable_host(raw: str | None) -> OllamaHost:
    """envconfig.ConnectableHost: 0.0.0.0 -> 127.0.0.1 and :: -> ::1 (client side).

    >>> connectable_host("0.0.0.0:9000").hostport
    '127.0.0.1:9000'
    """
    h = ollama_host(raw)
    ip = go_parse_ip(h.host) if h.host else None
    if ip is not None and ipaddress.ip_address(ip).is_unspecified:
        h = h._replace(host="127.0.0.1" if ":" not in ip else "::1")
    return h
